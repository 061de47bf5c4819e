"""The single-agent store: commands through a local WAL into the MVCC state machine.

One Trio task (``run``) owns the state machine and the log.  Writers hand it
commands through a memory channel and wait; it takes every command queued so
far, appends them all with one fsync (group commit: N concurrent writers pay
for one fsync, not N), applies them in order, wakes the writers with their
results and fans the events out to watchers.  A write is acknowledged only
after its record is on disk, so kill -9 at any moment loses nothing that was
acknowledged, and replay gives the same revisions (``apply`` is pure).

Reads (get, range, watch registration) are plain method calls on the owner's
thread: Trio runs one task at a time, so they see a consistent state, and
every acknowledged write is already applied.

On Raft servers RaftStore (raftstore.py) takes its place: the API depends only on
``txn`` and the reads and watches of MVCCReads.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import trio

from nodeagent.store.base import MVCCReads, Watch, apply_command, check_values
from nodeagent.store.errors import StoreClosedError, StoreError, TxnRejectedError
from nodeagent.store.mvcc import MVCC, Event, Txn, TxnResult, check_txn_size
from nodeagent.store.wal import WAL

__all__ = ["LocalStore", "Watch"]

log = logging.getLogger("nodeagent.store")


@dataclass
class _Pending:
    txn: Txn
    data: bytes
    done: trio.Event = field(default_factory=trio.Event)
    result: TxnResult | None = None
    error: BaseException | None = None


class LocalStore(MVCCReads):
    def __init__(self, data_dir: str, *, fsync: bool = True, snapshot_every: int = 10_000,
                 history_revisions: int = 100_000, max_batch: int = 1024,
                 watch_buffer: int = 1024) -> None:
        self.data_dir = data_dir
        self.mvcc = MVCC(history_revisions=history_revisions)
        self.wal = WAL(data_dir, fsync=fsync)
        self.snapshot_every = snapshot_every
        self.max_batch = max_batch
        self.watch_buffer = watch_buffer
        self._send, self._recv = trio.open_memory_channel[_Pending](math.inf)
        self._watches: set[Watch] = set()
        self._applied_index = 0
        self._snapshot_index = 0
        self._running = False
        self.ready = trio.Event()

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Recover from disk, then serve writes until cancelled."""
        rec = await trio.to_thread.run_sync(self.wal.recover)
        if rec.snapshot is not None:
            self.mvcc.restore(rec.snapshot)
        self._snapshot_index = self._applied_index = rec.snapshot_index
        for index, data in rec.records:
            apply_command(self.mvcc, data)
            self._applied_index = index
        log.info("store recovered dir=%s snapshot_index=%d replayed=%d revision=%d "
                 "torn_tail_bytes=%d", self.data_dir, rec.snapshot_index, len(rec.records),
                 self.mvcc.revision, rec.truncated_bytes)
        self._running = True
        self.ready.set()
        task_status.started()
        try:
            await self._serve_writes()
        finally:
            self._running = False
            self._close_watches()
            self._fail_queued()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.wal.close)

    def _fail_queued(self) -> None:
        while True:
            try:
                p = self._recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            p.error = StoreClosedError("store stopped before the write was durable")
            p.done.set()

    async def _serve_writes(self) -> None:
        while True:
            batch = [await self._recv.receive()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._recv.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                # Shielded: a write that reached the disk must also be applied and answered.
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self.wal.append, [p.data for p in batch])
            except OSError as exc:
                log.error("wal append failed: %s", exc)
                for p in batch:
                    p.error = exc
                    p.done.set()
                raise
            all_events: list[Event] = []
            for p in batch:
                p.result, events = self.mvcc.apply(p.txn)
                all_events.extend(events)
                p.done.set()
            self._applied_index += len(batch)
            self._publish(all_events)
            if self._applied_index - self._snapshot_index >= self.snapshot_every:
                await self._snapshot()

    async def _snapshot(self) -> None:
        state = self.mvcc.snapshot()
        index = self._applied_index
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.wal.save_snapshot, index, state)
        self._snapshot_index = index
        log.info("store snapshot index=%d revision=%d bytes=%d", index, self.mvcc.revision,
                 len(state))

    # --- writes --------------------------------------------------------------------------

    async def txn(self, txn: Txn) -> TxnResult:
        """Commit one transaction durably.  Raises StoreClosedError if the store stopped,
        TxnTooLargeError for one over MAX_TXN_BYTES, TxnRejectedError for an object that is
        not JSON (base.check_values)."""
        if not self._running:
            raise StoreClosedError("store is not running")
        data = txn.encode()
        check_txn_size(data)
        try:
            check_values(txn)
        except StoreError as exc:
            raise TxnRejectedError(f"the store could not apply the write: {exc}") from exc
        p = _Pending(txn, data)
        self._send.send_nowait(p)
        # Not cancellable half-way: once queued, the write happens; wait for its answer.
        with trio.CancelScope(shield=True):
            await p.done.wait()
        if p.error is not None:
            raise StoreClosedError(str(p.error)) from p.error
        assert p.result is not None
        return p.result
