"""Raft between servers over mutual TLS, tried as an attacker on loopback would: three
real RaftNodes with certificates of one cluster CA replicate; a client without a
certificate, with another CA's, or with a certificate of this cluster that names no
Raft server does not get a message in; and a Raft server's own certificate cannot speak
for another server -- the forged AppendEntries that once made a leader follow a server
that does not exist (and commit the forger's write) is dropped, and the leader leads on
in its term."""

from __future__ import annotations

import random
from pathlib import Path

import trio
from test_raft_node import KV, free_ports
from waiting import until_async

from nodeagent import pki
from nodeagent.clusterpki import SERVER_GROUP, raft_peer, raft_user
from nodeagent.framing import frame
from nodeagent.raft.codec import encode
from nodeagent.raft.core import Config
from nodeagent.raft.messages import Entry, EntryKind, Message, MessageType
from nodeagent.raft.node import NotLeader, RaftNode, Timeout
from nodeagent.raft.storage import RaftStorage
from nodeagent.raft.transport import PeerTls


def _certs(tmp: Path, ids: tuple[int, ...]) -> tuple[pki.Issued, dict[int, Path]]:
    ca = pki.make_ca()
    pki.save(ca, tmp / "ca.crt", tmp / "ca.key")
    dirs = {}
    for i in ids:
        d = dirs[i] = tmp / f"pki{i}"
        d.mkdir()
        pki.save(pki.issue_peer(ca, raft_user(i), (SERVER_GROUP,), ["127.0.0.1"]),
                 d / "raft.crt", d / "raft.key")
    return ca, dirs


def _tls(tmp: Path, d: Path) -> PeerTls:
    server = pki.server_context(d / "raft.crt", d / "raft.key", tmp / "ca.crt")
    client = pki.client_context(tmp / "ca.crt", d / "raft.crt", d / "raft.key")
    return PeerTls(server=lambda: server, client=lambda: client, identify=raft_peer)


async def _tls_stream(port: int, ctx) -> trio.SSLStream:
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx,
                            server_hostname="127.0.0.1")
    await stream.do_handshake()
    return stream


async def _refused(port: int, ctx) -> bool:
    """The server closes the connection (at the handshake or right after it) without
    taking anything."""
    try:
        stream = await _tls_stream(port, ctx)
        with trio.fail_after(5):
            await stream.send_all(frame(b"x"))
            return await stream.receive_some(10) == b""
    except (trio.BrokenResourceError, OSError):
        return True


async def test_servers_speak_mutual_tls_and_no_one_else_gets_a_message_in(tmp_path) -> None:
    ids = (1, 2, 3)
    ca, dirs = _certs(tmp_path, ids)
    addrs = {i: ("127.0.0.1", p) for i, p in zip(ids, free_ports(3), strict=True)}
    nodes: dict[int, RaftNode] = {}
    async with trio.open_nursery() as nursery:
        for i in ids:
            kv = KV()
            nodes[i] = RaftNode(Config(id=i), RaftStorage(tmp_path / f"n{i}"), listen=addrs[i],
                                peers={p: a for p, a in addrs.items() if p != i}, voters=ids,
                                apply=kv.apply, snapshot=kv.snapshot, restore=kv.restore,
                                tick_s=0.02, rng=random.Random(i), tls=_tls(tmp_path, dirs[i]))
            await nursery.start(nodes[i].run)
        await until_async(lambda: any(n.is_leader for n in nodes.values()), 20, "a leader")
        leader = next(n for n in nodes.values() if n.is_leader)
        with trio.fail_after(20):
            while True:
                try:
                    await leader.propose(b"over tls", timeout_s=2)
                    break
                except (NotLeader, Timeout):
                    await trio.sleep(0.05)
        port = addrs[leader.config.id][1]
        raft = leader.raft
        assert raft is not None
        term = raft.term
        transport = leader.transport

        # No certificate, another CA's, this cluster's but no Raft server's.
        bare = pki.client_context(tmp_path / "ca.crt")
        other = pki.make_ca()
        pki.save(pki.issue_peer(other, raft_user(2), (SERVER_GROUP,), ["127.0.0.1"]),
                 tmp_path / "o.crt", tmp_path / "o.key")
        foreign = pki.client_context(tmp_path / "ca.crt", tmp_path / "o.crt", tmp_path / "o.key")
        pki.save(pki.issue_client(ca, "system:node:worker", ("system:nodes",)),
                 tmp_path / "n.crt", tmp_path / "n.key")
        node_cert = pki.client_context(tmp_path / "ca.crt", tmp_path / "n.crt",
                                       tmp_path / "n.key")
        refused_before = transport.refused
        for ctx in (bare, foreign, node_cert):
            assert await _refused(port, ctx)
        await until_async(lambda: transport.refused >= refused_before + 3, 5, "3 refusals")

        # Server 2's certificate, speaking as server 9 in a higher term.
        follower = next(i for i in ids if i != leader.config.id)
        as_follower = pki.client_context(tmp_path / "ca.crt", dirs[follower] / "raft.crt",
                                         dirs[follower] / "raft.key")
        stream = await _tls_stream(port, as_follower)
        forged = [Message(MessageType.APPEND, 9, leader.config.id, term + 5, log_term=term,
                          index=raft.log.last_index(), commit=0,
                          entries=(Entry(term + 5, raft.log.last_index() + 1,
                                         EntryKind.NORMAL, b"the forger's write"),)),
                  Message(MessageType.HEARTBEAT, 9, leader.config.id, term + 5)]
        await stream.send_all(b"".join(frame(encode(m)) for m in forged))
        await until_async(lambda: transport.forged >= 2, 5, "2 forged messages dropped")
        await stream.aclose()
        await trio.sleep(0.3)
        assert leader.is_leader and raft.term == term and raft.leader == leader.config.id
        assert all(e.data != b"the forger's write" for e in raft.log.entries)
        nursery.cancel_scope.cancel()


async def test_a_sender_does_not_talk_to_another_server_at_its_peers_address(tmp_path,
                                                                           caplog) -> None:
    """Server 1 is told server 7 is at an address where server 3 listens: it does not
    keep the connection (server 3's certificate names server 3), and says why."""
    from nodeagent.raft.transport import Transport
    _ca, dirs = _certs(tmp_path, (1, 3))
    p1, p3 = free_ports(2)
    got: list[Message] = []
    one = Transport(1, ("127.0.0.1", p1), {7: ("127.0.0.1", p3)}, lambda m: None,
                    tls=_tls(tmp_path, dirs[1]))
    three = Transport(3, ("127.0.0.1", p3), {}, got.append, tls=_tls(tmp_path, dirs[3]))
    async with trio.open_nursery() as nursery:
        await nursery.start(three.run)
        await nursery.start(one.run)
        for _ in range(5):
            one.send(Message(MessageType.HEARTBEAT, 1, 7, 1))
            await trio.sleep(0.1)
        assert got == []
        assert f"127.0.0.1:{p3} is server 3, not server 7" in caplog.text
        nursery.cancel_scope.cancel()
