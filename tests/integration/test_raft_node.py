"""Three Raft servers in one process over real TCP on loopback with real files and
fsync: writes through any server (followers forward), a leader killed and replaced,
the old leader restarted from its disk catching up (by snapshot when behind the
compacted log), linearizable read barriers, leadership transfer."""

from __future__ import annotations

import random
import socket

import trio

from nodeagent.raft.core import Config
from nodeagent.raft.messages import ConfChange
from nodeagent.raft.node import NotLeader, RaftNode, Timeout
from nodeagent.raft.storage import RaftStorage


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class KV:
    """The state machine: an append-only list of writes, with its snapshot."""

    def __init__(self) -> None:
        self.items: list[bytes] = []

    def apply(self, data: bytes) -> None:
        self.items.append(data)

    def snapshot(self) -> bytes:
        return b"\n".join(self.items)

    def restore(self, data: bytes) -> None:
        self.items = data.split(b"\n") if data else []


class Cluster:
    def __init__(self, tmp, n: int = 3) -> None:
        self.tmp, self.ids = tmp, tuple(range(1, n + 1))
        self.addrs = {i: ("127.0.0.1", p) for i, p in zip(self.ids, free_ports(n), strict=True)}
        self.nodes: dict[int, RaftNode] = {}
        self.kvs: dict[int, KV] = {}
        self.scopes: dict[int, trio.CancelScope] = {}

    async def start(self, nursery: trio.Nursery, i: int) -> None:
        kv = self.kvs[i] = KV()
        node = RaftNode(Config(id=i, election_ticks=10), RaftStorage(self.tmp / f"n{i}"),
                        listen=self.addrs[i], peers={p: a for p, a in self.addrs.items() if p != i},
                        voters=self.ids, apply=kv.apply, snapshot=kv.snapshot,
                        restore=kv.restore, tick_s=0.02, snapshot_entries=50,
                        rng=random.Random(i))
        self.nodes[i] = node
        scope = self.scopes[i] = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await node.run(task_status=task_status)
        await nursery.start(run)

    def kill(self, i: int) -> None:
        self.scopes[i].cancel()
        self.nodes[i].storage.close()
        del self.nodes[i]

    async def leader(self) -> RaftNode:
        with trio.fail_after(10):
            while True:
                leaders = [n for n in self.nodes.values() if n.is_leader]
                if len(leaders) == 1:
                    return leaders[0]
                await trio.sleep(0.02)

    async def write(self, via: int, payload: bytes) -> None:
        with trio.fail_after(20):
            while True:
                try:
                    await self.nodes[via].propose(payload, timeout_s=2)
                    return
                except (NotLeader, Timeout):
                    await trio.sleep(0.05)


async def test_three_servers_replicate_fail_over_and_catch_up(tmp_path):
    c = Cluster(tmp_path)
    async with trio.open_nursery() as nursery:
        for i in c.ids:
            await c.start(nursery, i)
        leader = await c.leader()
        for n in range(30):  # through every server: followers forward to the leader
            await c.write(c.ids[n % 3], f"a{n}".encode())
        await trio.sleep(0.3)
        assert all(kv.items == [f"a{n}".encode() for n in range(30)] for kv in c.kvs.values())
        # The leader dies (its task and its sockets): another takes over, writes go on.
        old = leader.config.id
        c.kill(old)
        new = await c.leader()
        assert new.config.id != old
        for n in range(80):  # past snapshot_entries: the log is compacted meanwhile
            await c.write(new.config.id, f"b{n}".encode())
        # A read barrier on a follower sees every write acknowledged before it.
        follower = next(i for i in c.nodes if i != new.config.id)
        await c.nodes[follower].read_barrier()
        assert c.kvs[follower].items[-1] == b"b79"
        # The old leader comes back from its disk and catches up (by snapshot).
        await c.start(nursery, old)
        with trio.fail_after(10):
            while len(c.kvs[old].items) < 110:  # noqa: ASYNC110 (polling a plain list)
                await trio.sleep(0.05)
        assert c.kvs[old].items == c.kvs[new.config.id].items
        assert c.nodes[old].raft.log.snapshot_index > 0
        # Leadership moves on request.
        target = old
        new.transfer_leadership(target)
        with trio.fail_after(5):
            while not c.nodes[target].is_leader:
                await c.nodes[target].wait_changed()
        await c.write(target, b"after transfer")
        nursery.cancel_scope.cancel()
    for node in list(c.nodes.values()):
        node.storage.close()


async def test_a_write_to_a_leader_not_reachable_yet_waits_for_its_address(tmp_path):
    """A server that knows who leads but not where (a new server, before bootstrap or
    gossip told it the others' addresses) keeps its write until it can send it, instead
    of losing it to the transport and timing out."""
    addrs = {i: ("127.0.0.1", p) for i, p in zip((1, 2), free_ports(2), strict=True)}
    kvs = {1: KV(), 2: KV()}
    async with trio.open_nursery() as nursery:
        nodes = {}
        for i, voters, peers in ((1, (1,), {2: addrs[2]}), (2, (), {})):
            nodes[i] = RaftNode(Config(id=i, election_ticks=10), RaftStorage(tmp_path / f"n{i}"),
                                listen=addrs[i], peers=peers, voters=voters, apply=kvs[i].apply,
                                snapshot=kvs[i].snapshot, restore=kvs[i].restore, tick_s=0.02,
                                rng=random.Random(i))
            await nursery.start(nodes[i].run)
        with trio.fail_after(10):
            while not nodes[1].is_leader:
                await nodes[1].wait_changed()
        nodes[1].change_membership(ConfChange("add_learner", 2, f"127.0.0.1:{addrs[2][1]}"))
        with trio.fail_after(10):  # server 2 hears from the leader: it knows who leads
            while nodes[2].leader != 1:
                await nodes[2].wait_changed()
        assert 1 not in nodes[2].transport.peers  # ... but not where

        async def later() -> None:
            await trio.sleep(0.5)
            nodes[2].set_peers({1: addrs[1]})  # what bootstrap or gossip would tell it
        nursery.start_soon(later)
        await nodes[2].propose(b"kept", timeout_s=5)  # raised Timeout before
        assert b"kept" in kvs[1].items
        nursery.cancel_scope.cancel()
