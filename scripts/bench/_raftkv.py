"""A key-value server on nodeagent's Raft, for scripts/bench/raft.py (not a product part).

    python _raftkv.py --id 1 --dir D --raft 127.0.0.1:P1 --peers 2=127.0.0.1:P2,3=... \
        --client 127.0.0.1:C [--tick-ms 100] [--election-ticks 10] [--fsync] [--tls DIR]

With ``--tls DIR`` (ca.crt, raft-<id>.crt/.key) Raft is mutual TLS as the agent runs it
(each message bound to the server its certificate names) and clients must show a
certificate of that CA too.

Clients speak length-framed msgpack: ``["put", key, value]`` -> ``["ok"]`` or
``["err", message, leader id]`` (not the leader: ask that one); ``["status"]`` ->
``["status", is leader, leader id]``.  Writes go through
Raft (only on the leader, as the bench sends them); the state machine is a dict.
"""

from __future__ import annotations

import argparse
import logging
import random
import ssl
import sys
from pathlib import Path

import msgpack
import trio

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from nodeagent import pki  # noqa: E402
from nodeagent.clusterpki import raft_peer  # noqa: E402
from nodeagent.framing import frame, read_frames  # noqa: E402
from nodeagent.raft.core import Config  # noqa: E402
from nodeagent.raft.node import NotLeader, RaftNode, Timeout  # noqa: E402
from nodeagent.raft.storage import RaftStorage  # noqa: E402
from nodeagent.raft.transport import PeerTls  # noqa: E402


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class KV:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def apply(self, payload: bytes) -> None:
        key, value = msgpack.unpackb(payload)
        self.data[key] = value

    def snapshot(self) -> bytes:
        return msgpack.packb(self.data, use_bin_type=True)

    def restore(self, data: bytes) -> None:
        self.data = msgpack.unpackb(data, raw=True, strict_map_key=False)


async def serve_clients(node: RaftNode, listen: tuple[str, int],
                        tls: ssl.SSLContext | None) -> None:
    async def handle(stream: trio.abc.Stream) -> None:
        try:
            await serve_one(stream)
        except trio.BrokenResourceError:
            pass  # a client gone without closing its TLS: only its connection ends

    async def serve_one(stream: trio.abc.Stream) -> None:
        async with stream:
            async for data in read_frames(stream, 1 << 20):
                req = msgpack.unpackb(data)
                if req[0] == "status":
                    reply = ["status", node.is_leader, node.leader]
                else:
                    try:
                        await node.propose(msgpack.packb([req[1], req[2]]),
                                           timeout_s=req[3] if len(req) > 3 else 3.0)
                        reply = ["ok"]
                    except (NotLeader, Timeout) as exc:
                        reply = ["err", str(exc), node.leader]
                await stream.send_all(frame(msgpack.packb(reply)))

    if tls is not None:
        await trio.serve_ssl_over_tcp(handle, listen[1], tls, host=listen[0])
    else:
        await trio.serve_tcp(handle, listen[1], host=listen[0])


def peer_tls(directory: str, ident: int) -> tuple[PeerTls, ssl.SSLContext]:
    """Raft's mutual TLS and the clients' listener context, from DIR's files."""
    d = Path(directory)
    cert, key, ca = d / f"raft-{ident}.crt", d / f"raft-{ident}.key", d / "ca.crt"
    server, client = pki.server_context(cert, key, ca), pki.client_context(ca, cert, key)
    return PeerTls(lambda: server, lambda: client, raft_peer), pki.server_context(cert, key, ca)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--id", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--raft", type=address, required=True)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--client", type=address, required=True)
    ap.add_argument("--tick-ms", type=float, default=100)
    ap.add_argument("--election-ticks", type=int, default=10)
    ap.add_argument("--snapshot-entries", type=int, default=10_000)
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--tls", help="a directory with ca.crt and raft-<id>.crt/.key")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    peers = {int(k): address(v) for k, v in (p.split("=") for p in a.peers.split(","))}
    kv = KV()
    tls, client_tls = peer_tls(a.tls, a.id) if a.tls else (None, None)
    node = RaftNode(Config(id=a.id, election_ticks=a.election_ticks),
                    RaftStorage(a.dir, fsync=not a.no_fsync), listen=a.raft, peers=peers,
                    voters=tuple(sorted([a.id, *peers])), apply=kv.apply,
                    snapshot=kv.snapshot, restore=kv.restore, tick_s=a.tick_ms / 1000,
                    snapshot_entries=a.snapshot_entries, rng=random.Random(), tls=tls)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        nursery.start_soon(serve_clients, node, a.client, client_tls)
        print("ready", flush=True)


if __name__ == "__main__":
    trio.run(main)
