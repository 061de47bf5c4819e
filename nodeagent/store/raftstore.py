"""The store replicated with Raft: every server applies the same transactions in log order.

A write is a proposal to the Raft node (forwarded to the leader by a follower);
every server applies the committed transaction to its MVCC state machine, which
is deterministic, so revisions agree everywhere, and the proposer gets back the
result its own server computed (read-your-writes on the server it asked).
Snapshots of the MVCC state ride on Raft's snapshots.  ``read_barrier`` makes
the next read linearizable (ReadIndex); plain reads are served from the local
state, like etcd's serializable reads.
"""

from __future__ import annotations

import logging
import os
import random

import trio

from nodeagent.raft.core import Config
from nodeagent.raft.node import EntryTooLarge, NotLeader, RaftNode, Timeout
from nodeagent.raft.storage import RaftStorage
from nodeagent.raft.transport import PeerTls
from nodeagent.store.base import MVCCReads, Watch, apply_command
from nodeagent.store.errors import StoreUnavailableError, TxnRejectedError, TxnTooLargeError
from nodeagent.store.mvcc import MVCC, Txn, TxnResult, check_txn_size

__all__ = ["MAX_HEARD", "RaftStore"]

MAX_HEARD = 64  # API URLs of servers heard of and not yet asked (bootstrap_expect)

log = logging.getLogger("nodeagent.store")


class RaftStore(MVCCReads):
    def __init__(self, data_dir: str, *, node_id: int, listen: tuple[str, int],
                 peers: dict[int, tuple[str, int]], voters: tuple[int, ...], fsync: bool = True,
                 snapshot_every: int = 10_000, history_revisions: int = 100_000,
                 watch_buffer: int = 1024, tick_s: float = 0.1, election_ticks: int = 10,
                 write_timeout_s: float = 5.0, rng: random.Random | None = None,
                 tls: PeerTls | None = None) -> None:
        self.data_dir = data_dir
        self.mvcc = MVCC(history_revisions=history_revisions)
        self.watch_buffer = watch_buffer
        self._watches: set[Watch] = set()
        self.write_timeout_s = write_timeout_s
        self.node = RaftNode(Config(id=node_id, election_ticks=election_ticks),
                             RaftStorage(os.path.join(data_dir, "raft"), fsync=fsync),
                             listen=listen, peers=peers, voters=voters, apply=self._apply,
                             snapshot=self.mvcc.snapshot, restore=self._restore, tick_s=tick_s,
                             snapshot_entries=snapshot_every, rng=rng, tls=tls)
        self.ready = trio.Event()
        # Servers found while finding the others (bootstrap_expect): id -> (Raft address,
        # API URL), each one having answered a hello itself (raftbootstrap); /raft shows
        # them, so servers that know one seed find all.  ``heard`` holds the API URLs that
        # others named, to ask: capped, since anyone can name one (a hello, a gossip packet).
        self.discovered: dict[int, tuple[str, str]] = {}
        self.heard: dict[str, None] = {}

    def hear_of(self, api_url: str) -> None:
        """Remember a server's API URL to ask during bootstrap (at most MAX_HEARD)."""
        if api_url not in self.heard and len(self.heard) < MAX_HEARD:
            self.heard[api_url] = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.node.run)
                log.info("store (raft) recovered dir=%s node=%d revision=%d", self.data_dir,
                         self.node.config.id, self.mvcc.revision)
                self.ready.set()
                task_status.started()
        finally:
            self._close_watches()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self.node.storage.close)

    def _apply(self, payload: bytes) -> TxnResult | TxnRejectedError:
        result, events = apply_command(self.mvcc, payload)
        self._publish(events)
        return result

    def _restore(self, state: bytes) -> None:
        """A snapshot (at start, or from the leader): watchers cannot follow a jump, so
        their streams end and they resume from their last revision, as after an overflow."""
        self.mvcc.restore(state)  # in place: the node holds our snapshot method
        for w in list(self._watches):
            w.overflowed = True
            w.close()

    async def txn(self, txn: Txn) -> TxnResult:
        """Commit one transaction through Raft.  Raises StoreUnavailableError when no
        leader takes it (retry) or no answer came in time (it may have been applied),
        TxnTooLargeError for one over MAX_TXN_BYTES, TxnRejectedError for one that did
        not decode when applied."""
        data = txn.encode()
        check_txn_size(data)
        try:
            result = await self.node.propose(data, timeout_s=self.write_timeout_s)
        except EntryTooLarge as exc:
            raise TxnTooLargeError(str(exc)) from exc
        except NotLeader as exc:
            raise StoreUnavailableError(f"no leader took the write: {exc}") from exc
        except Timeout as exc:
            raise StoreUnavailableError(f"the write timed out: {exc}") from exc
        if result is None:  # applied before a snapshot this server restored: no result kept
            raise StoreUnavailableError("the write was applied, its result is not known")
        if isinstance(result, TxnRejectedError):
            raise result
        return result

    async def read_barrier(self) -> None:
        """Return once local reads see every write committed before the call."""
        try:
            await self.node.read_barrier(timeout_s=self.write_timeout_s)
        except (NotLeader, Timeout) as exc:
            raise StoreUnavailableError(f"no linearizable read: {exc}") from exc
