"""A committed command that cannot be applied is a failed result, the same on every
server, never an exception out of the apply loop: a garbage Raft entry or an object that
is not JSON once stopped every server, and stopped it again at every restart.  And a bad
object already in the store (written by an older version) is skipped by lists and
watches and the controllers go on."""

from __future__ import annotations

import random

import pytest
import trio
from test_raft_node import free_ports
from test_raft_store import put

from nodeagent.api.objects import ObjectStore
from nodeagent.objects.kinds import PODS
from nodeagent.store import LocalStore
from nodeagent.store.errors import TxnRejectedError
from nodeagent.store.mvcc import MVCC, Op, OpKind, Txn
from nodeagent.store.raftstore import RaftStore
from nodeagent.store.wal import WAL


def _servers(tmp_path, addrs):
    ids = tuple(addrs)
    return {i: RaftStore(str(tmp_path / f"s{i}"), node_id=i, listen=addrs[i],
                         peers={p: a for p, a in addrs.items() if p != i}, voters=ids,
                         tick_s=0.02, rng=random.Random(i)) for i in ids}


async def test_undecodable_entries_fail_alike_everywhere_and_survive_restarts(tmp_path) -> None:
    addrs = {i: ("127.0.0.1", p) for i, p in zip((1, 2, 3), free_ports(3), strict=True)}
    stores = _servers(tmp_path, addrs)
    scopes = {i: trio.CancelScope() for i in stores}
    async with trio.open_nursery() as nursery:
        async def run(i: int, task_status=trio.TASK_STATUS_IGNORED) -> None:
            with scopes[i]:
                await stores[i].run(task_status=task_status)
        for i in stores:
            await nursery.start(run, i)
        await put(stores[1], "/k/first", b"1")
        leader = next(i for i in stores if stores[i].node.is_leader)
        # Bytes that are no transaction at all, straight into the log.
        result = await stores[leader].node.propose(b"\xc1 not msgpack")
        assert isinstance(result, TxnRejectedError)
        # A transaction that decodes, putting an object that is not JSON.
        with pytest.raises(TxnRejectedError, match="not JSON"):
            await stores[2].txn(Txn((), (Op(OpKind.PUT, "/registry/pods/default/p", b"\xff{"),)))
        last = await put(stores[3], "/k/after", b"2")
        for s in stores.values():
            await s.read_barrier()
            assert s.revision == last.revision and s.get("/registry/pods/default/p") is None
        # Every server restarts from its own log, replays the bad entries, and goes on.
        for i in stores:
            scopes[i].cancel()
        await trio.sleep(0.1)
        stores = _servers(tmp_path, addrs)
        scopes = {i: trio.CancelScope() for i in stores}
        for i in stores:
            await nursery.start(run, i)
        more = await put(stores[2], "/k/more", b"3")
        assert more.revision == last.revision + 1
        nursery.cancel_scope.cancel()


async def test_lists_watches_and_gets_skip_an_object_that_does_not_decode(tmp_path) -> None:
    # A store written by an older version: a snapshot that holds a pod that is not JSON.
    old = MVCC()
    good = b'{"metadata":{"name":"good","namespace":"default"},"spec":{}}'
    old.apply(Txn((), (Op(OpKind.PUT, "/registry/pods/default/bad", b"\x00garbage"),
                       Op(OpKind.PUT, "/registry/pods/default/good", good))))
    wal = WAL(tmp_path, fsync=False)
    wal.recover()
    wal.save_snapshot(0, old.snapshot())
    wal.close()
    async with trio.open_nursery() as nursery:
        store = LocalStore(str(tmp_path), fsync=False)
        await nursery.start(store.run)
        objects = ObjectStore(store)
        listed = objects.list(PODS, "default")
        assert [p["metadata"]["name"] for p in listed["items"]] == ["good"]
        raw = objects.list(PODS, None, raw=True)
        assert len(raw["items"]) == 1
        with pytest.raises(Exception, match="does not decode"):
            objects.get(PODS, "default", "bad")
        # A watch from before the bad object's revision streams the good one only.
        from nodeagent.api.objects import FieldSelector
        from nodeagent.api.watch import EventEncoder, initial_lines
        from nodeagent.objects.selectors import parse_selector
        items, _, _ = store.range(PODS.prefix("default"))
        lines = initial_lines(items, parse_selector(""), FieldSelector.parse(""), EventEncoder())
        assert b"".join(lines).count(b'"type":"ADDED"') == 1
        nursery.cancel_scope.cancel()
