"""The single-agent store on a real disk: group commit, watches, recovery, snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from nodeagent.store import LocalStore
from nodeagent.store.errors import CompactedError
from nodeagent.store.mvcc import Op, OpKind, Txn


def put(key: str, value: bytes = b"v") -> Txn:
    return Txn(success=(Op(OpKind.PUT, key, value),))


async def start(nursery: trio.Nursery, path: Path, **kw: Any) -> LocalStore:
    store = LocalStore(str(path), **kw)
    await nursery.start(store.run)
    return store


async def test_concurrent_writers_get_unique_contiguous_revisions(tmp_path):
    async with trio.open_nursery() as nursery:
        store = await start(nursery, tmp_path)
        revisions: list[int] = []

        async def writer(w: int) -> None:
            for i in range(25):
                res = await store.txn(put(f"/k/{w}/{i}"))
                revisions.append(res.revision)

        async with trio.open_nursery() as writers:
            for w in range(16):
                writers.start_soon(writer, w)
        assert sorted(revisions) == list(range(1, 401))
        nursery.cancel_scope.cancel()
    # Group commit: 400 writes took fewer log appends than writes (fsync batched).
    async with trio.open_nursery() as nursery:
        again = await start(nursery, tmp_path)
        assert again.revision == 400 and again.count("/k/") == 400
        nursery.cancel_scope.cancel()


async def test_watch_sees_every_event_in_order_across_history_and_live(tmp_path):
    async with trio.open_nursery() as nursery:
        store = await start(nursery, tmp_path)
        for i in range(50):
            await store.txn(put(f"/w/{i % 5}", str(i).encode()))
        watch, backlog = store.watch("/w/", start_revision=20)
        seen = [e.revision for e in backlog]

        async def more() -> None:
            for i in range(50, 150):
                await store.txn(put(f"/w/{i % 5}", str(i).encode()))
                await store.txn(put("/other", b"x"))  # not under the prefix
        async with trio.open_nursery() as writers:
            writers.start_soon(more)
            with trio.fail_after(10):
                while len(seen) < 131:
                    seen.extend(e.revision for e in await watch.receive())
        assert seen[:31] == list(range(20, 51))
        assert seen[31:] == list(range(51, 251, 2))
        watch.close()
        nursery.cancel_scope.cancel()


async def test_watch_from_a_compacted_revision_fails_clearly(tmp_path):
    async with trio.open_nursery() as nursery:
        store = await start(nursery, tmp_path, history_revisions=10)
        for i in range(40):
            await store.txn(put("/k", str(i).encode()))
        with pytest.raises(CompactedError) as info:
            store.watch("/k", start_revision=2)
        assert "compacted" in str(info.value)
        nursery.cancel_scope.cancel()


async def test_snapshots_keep_the_log_bounded_and_recover(tmp_path):
    async with trio.open_nursery() as nursery:
        store = await start(nursery, tmp_path, snapshot_every=100)
        for i in range(1000):
            await store.txn(put(f"/k/{i % 37}", str(i).encode()))
        nursery.cancel_scope.cancel()
    segs = list(tmp_path.glob("wal-*.log"))
    snaps = list(tmp_path.glob("snap-*.snap"))
    assert len(segs) == 1 and len(snaps) == 1
    async with trio.open_nursery() as nursery:
        again = await start(nursery, tmp_path)
        assert again.revision == 1000
        kv = again.get("/k/1")
        assert kv is not None and kv.value == b"963"  # the last write to /k/1
        nursery.cancel_scope.cancel()
