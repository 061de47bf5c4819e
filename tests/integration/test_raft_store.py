"""The store replicated with Raft (three servers in one process, real TCP on loopback,
real files): the same revisions everywhere, transaction results back to the server
that asked (a failed compare included), watches on a follower, writes going on after
the leader dies, and the API's object store working on top of it."""

from __future__ import annotations

import random

import trio
from test_raft_node import free_ports

from nodeagent.store.errors import StoreUnavailableError
from nodeagent.store.mvcc import Compare, Op, OpKind, Txn
from nodeagent.store.raftstore import RaftStore


async def put(store: RaftStore, key: str, value: bytes, **compare: int):
    cmp = tuple(Compare(key, "mod", "=", v) for v in compare.values())
    with trio.fail_after(20):
        while True:
            try:
                return await store.txn(Txn(cmp, (Op(OpKind.PUT, key, value),)))
            except StoreUnavailableError:
                await trio.sleep(0.05)


async def test_three_raft_stores_agree_and_survive_their_leader(tmp_path):
    ids = (1, 2, 3)
    addrs = {i: ("127.0.0.1", p) for i, p in zip(ids, free_ports(3), strict=True)}
    stores = {i: RaftStore(str(tmp_path / f"s{i}"), node_id=i, listen=addrs[i],
                           peers={p: a for p, a in addrs.items() if p != i}, voters=ids,
                           tick_s=0.02, snapshot_every=40, rng=random.Random(i))
              for i in ids}
    scopes = {i: trio.CancelScope() for i in ids}
    async with trio.open_nursery() as nursery:
        for i in ids:
            async def run(i: int = i, task_status=trio.TASK_STATUS_IGNORED) -> None:
                with scopes[i]:
                    await stores[i].run(task_status=task_status)
            await nursery.start(run)
        watch, _ = stores[3].watch("/k/", 0)
        first = await put(stores[2], "/k/a", b"1")  # through a follower or the leader
        assert first.succeeded
        stale = await put(stores[1], "/k/a", b"2", mod=first.revision - 1)
        assert not stale.succeeded  # the compare failed: the result says so
        await stores[3].read_barrier()
        assert {i: s.revision for i, s in stores.items()} == {i: first.revision for i in ids}
        assert stores[3].get("/k/a").value == b"1"
        with trio.fail_after(5):
            events = await watch.receive()
        assert [e.kv.key for e in events] == ["/k/a"]
        # The leader dies; writes go on through the others (and compaction by snapshot).
        leader = next(i for i in ids if stores[i].node.is_leader)
        scopes[leader].cancel()
        survivor = next(i for i in ids if i != leader)
        for n in range(60):
            await put(stores[survivor], f"/k/{n}", b"x")
        others = [i for i in ids if i != leader]
        await stores[others[0]].read_barrier()
        await stores[others[1]].read_barrier()
        assert stores[others[0]].revision == stores[others[1]].revision
        assert stores[others[0]].range("/k/")[0] == stores[others[1]].range("/k/")[0]
        nursery.cancel_scope.cancel()
