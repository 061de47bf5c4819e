"""The Trio driver of one Raft server: the core, its disk, its transport, its state machine.

One task owns the core (STYLE: no locks): everything reaches it through one memory
channel -- messages from the transport, ticks, proposals, reads -- and after each
batch it handles the core's Ready in order: save (in a thread: fsync), send, apply,
answer, advance.  While a save runs, new proposals queue up, so the next Ready
carries them all and one fsync commits many writes (group commit).

Proposals carry a 16-byte request id in front of the payload.  A proposal can reach
the log twice (a forwarded proposal duplicated, a client retrying after a leader
change), so the state machine applies each request id once (thesis §6.3); the ids
applied recently travel in snapshots with the state, so every server decides the
same way.  ``propose`` returns once the write is applied here; ``read_barrier``
once this server has applied everything committed when it was called (ReadIndex),
which makes a read that follows it linearizable.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio

from nodeagent.raft.core import Config, Raft
from nodeagent.raft.log import RaftLog
from nodeagent.raft.messages import (
    ConfChange,
    Entry,
    EntryKind,
    Message,
    MessageType,
    Ready,
    Role,
    SnapshotMeta,
)
from nodeagent.raft.storage import RaftStorage
from nodeagent.raft.transport import PeerTls, Transport

__all__ = ["EntryTooLarge", "NotLeader", "RaftNode", "Timeout"]

log = logging.getLogger("nodeagent.raft")
REQUEST_ID_BYTES = 16
RECENT_IDS = 100_000  # request ids remembered for exactly-once apply


class NotLeader(Exception):
    """The request was not taken (no leader known, or leadership moving): retry, maybe at
    ``leader``."""

    def __init__(self, leader: int) -> None:
        super().__init__(f"not taken; the leader is {leader or 'not known'}")
        self.leader = leader


class EntryTooLarge(ValueError):
    """A proposal over the core's ``max_entry_bytes``: refused before it reaches the log,
    since no follower could receive it."""


class Timeout(Exception):
    """No answer in time: the write may or may not have been applied (a leader changed
    while it was in flight); a retry is safe only for writes with preconditions."""


@dataclass
class _Waiter:
    done: trio.Event = field(default_factory=trio.Event)
    error: Exception | None = None
    index: int = 0  # reads: the index to have applied
    result: Any = None  # writes: what the state machine's apply returned


def pack_snapshot(state: bytes, recent: list[bytes] | None = None,
                  peers: dict[int, tuple[str, int]] | None = None) -> bytes:
    """What a Raft snapshot carries: the state machine's snapshot, the ids of recently
    applied requests (duplicates are answered, not applied twice) and the peers'
    addresses."""
    return msgpack.packb([recent or [], state,
                          {str(k): f"{h}:{p}" for k, (h, p) in (peers or {}).items()}],
                         use_bin_type=True)


class RaftNode:
    def __init__(self, config: Config, storage: RaftStorage, *, listen: tuple[str, int],
                 peers: dict[int, tuple[str, int]], voters: tuple[int, ...],
                 apply: Callable[[bytes], Any], snapshot: Callable[[], bytes],
                 restore: Callable[[bytes], None], tick_s: float = 0.1,
                 snapshot_entries: int = 10_000, rng: random.Random | None = None,
                 tls: PeerTls | None = None) -> None:
        self.config, self.storage = config, storage
        self.voters = voters
        self.apply_fn, self.snapshot_fn, self.restore_fn = apply, snapshot, restore
        self.tick_s, self.snapshot_entries = tick_s, snapshot_entries
        self.rng = rng or random.Random()
        self.transport = Transport(config.id, listen, peers, self._deliver, tls=tls)
        largest_append = config.max_entry_bytes + config.max_append_bytes + 64 * 1024
        if largest_append > self.transport.max_frame:
            raise ValueError(f"max_entry_bytes + max_append_bytes ({largest_append} with "
                             f"headers) is over the transport's frame cap "
                             f"({self.transport.max_frame})")
        self._send, self._recv = trio.open_memory_channel[tuple](10_000)
        self.raft: Raft | None = None
        # request id -> what applying it returned (None once restored from a snapshot)
        self.recent: OrderedDict[bytes, Any] = OrderedDict()
        self.writes: dict[bytes, _Waiter] = {}
        self.reads: dict[bytes, _Waiter] = {}
        self.applied_reads: list[_Waiter] = []  # confirmed, waiting for apply
        # Requests that found no leader (an election, a server just started): tried again
        # each tick until one is known or their caller gave up.
        self.parked: list[tuple] = []
        self.leader = 0
        self.role = Role.FOLLOWER
        self.changed = trio.Event()  # replaced on each leadership change
        self._id_prefix, self._id_count = os.urandom(8), itertools.count()

    # --- the API ----------------------------------------------------------------------------

    async def propose(self, payload: bytes, timeout_s: float = 5.0) -> Any:
        """Replicate and apply ``payload``; returns what applying it returned, once applied
        here.  Raises NotLeader (not taken: retry), Timeout (outcome unknown) or
        EntryTooLarge."""
        if len(payload) + REQUEST_ID_BYTES > self.config.max_entry_bytes:
            raise EntryTooLarge(f"a {len(payload)}-byte write is over the limit "
                                f"({self.config.max_entry_bytes - REQUEST_ID_BYTES} bytes)")
        req = self._request_id()
        return (await self._wait(self.writes, req, ("propose", req + payload), timeout_s)).result

    async def read_barrier(self, timeout_s: float = 5.0) -> None:
        """Return once a read here would see every write committed before the call.
        Raises NotLeader or Timeout."""
        ctx = self._request_id()
        await self._wait(self.reads, ctx, ("read", ctx), timeout_s)

    def _request_id(self) -> bytes:
        """Unique across servers and restarts: 8 random bytes drawn at start, then a count
        (uuid4 per request cost a getrandom(2) call each, a quarter of a write's syscalls)."""
        return self._id_prefix + next(self._id_count).to_bytes(8, "big")

    async def _wait(self, table: dict[bytes, _Waiter], key: bytes, item: tuple,
                    timeout_s: float) -> _Waiter:
        waiter = table[key] = _Waiter()
        self._send.send_nowait(item)
        try:
            with trio.move_on_after(timeout_s):
                await waiter.done.wait()
        finally:
            table.pop(key, None)
        if waiter.error is not None:
            raise waiter.error
        if not waiter.done.is_set():
            raise Timeout(f"no answer in {timeout_s:g}s (leader {self.leader or 'unknown'})")
        return waiter

    def transfer_leadership(self, to: int) -> None:
        self._send.send_nowait(("transfer", to))

    def change_membership(self, change: ConfChange) -> None:
        self._send.send_nowait(("conf", change))

    def bootstrap(self, voters: dict[int, tuple[str, int]]) -> None:
        """The first membership (bootstrap_expect), with the other voters' addresses."""
        self._send.send_nowait(("bootstrap", voters))

    def set_peers(self, peers: dict[int, tuple[str, int]]) -> None:
        self._send.send_nowait(("peers", peers))

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    async def wait_changed(self) -> None:
        await self.changed.wait()

    # --- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        loaded = await trio.to_thread.run_sync(self.storage.load)
        voters, learners = self.voters, tuple[int, ...]()
        applied = 0
        if loaded.snapshot is not None:
            meta, data = loaded.snapshot
            voters, learners, applied = meta.voters, meta.learners, meta.index
            self._restore(data)
        raft_log = RaftLog(loaded.entries,
                           snapshot_index=loaded.snapshot[0].index if loaded.snapshot else 0,
                           snapshot_term=loaded.snapshot[0].term if loaded.snapshot else 0,
                           applied=applied)
        self.raft = Raft(self.config, voters, learners=learners, rng=self.rng,
                         hard_state=loaded.hard_state, log=raft_log, snapshot=loaded.snapshot)
        if loaded.truncated_bytes:
            log.warning("raft: cut a torn tail of %d bytes from the log", loaded.truncated_bytes)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.transport.run)
            nursery.start_soon(self._ticker)
            task_status.started()
            await self._loop()

    def _deliver(self, m: Message) -> None:
        try:
            self._send.send_nowait(("msg", m))
        except trio.WouldBlock:
            pass  # overloaded: Raft copes with a lost message

    async def _ticker(self) -> None:
        while True:
            await trio.sleep(self.tick_s)
            self._send.send_nowait(("tick",))

    async def _loop(self) -> None:
        raft = self.raft
        assert raft is not None
        while True:
            self._handle(await self._recv.receive())
            while True:
                try:
                    self._handle(self._recv.receive_nowait())
                except trio.WouldBlock:
                    break
            while raft.has_ready():
                await self._process(raft.ready())

    def _handle(self, item: tuple) -> None:
        raft = self.raft
        assert raft is not None
        kind = item[0]
        if kind == "msg":
            raft.step(item[1])
        elif kind == "tick":
            raft.tick()
            self._promote_caught_up()
            self._retry_parked()
        elif kind in ("propose", "read") and raft.role is not Role.LEADER and raft.leader \
                and raft.leader not in self.transport.peers:
            self.parked.append(item)  # a leader we cannot reach yet (bootstrap): keep it
        elif kind == "propose":
            raft.propose(item[1])
        elif kind == "read":
            if not raft.read_index(item[1]):
                self.parked.append(item)
        elif kind == "transfer":
            raft.transfer_leadership(item[1])
        elif kind == "conf":
            raft.change_membership(item[1])
        elif kind in ("bootstrap", "peers"):
            for peer, address in item[1].items():
                if peer != self.config.id:
                    self.transport.set_peer(peer, address)
            if kind == "bootstrap" and raft.bootstrap(
                    set(item[1]), {p: f"{h}:{port}" for p, (h, port) in item[1].items()}):
                log.info("raft: bootstrapped with voters %s", sorted(item[1]))

    def _retry_parked(self) -> None:
        """Requests that found no leader go again once one is known (each tick, and at
        once when a leader appears: waiting for the tick added up to a tick to failover)."""
        raft = self.raft
        assert raft is not None
        if self.parked and raft.leader and not raft.transferee:
            parked, self.parked = self.parked, []
            for again in parked:
                if again[1][:REQUEST_ID_BYTES] in self.writes or again[1] in self.reads:
                    self._handle(again)

    def _fail(self, waiter: _Waiter | None) -> None:
        if waiter is not None:
            waiter.error = NotLeader(self.leader)
            waiter.done.set()

    # --- one Ready --------------------------------------------------------------------------

    async def _process(self, rd: Ready) -> None:
        raft = self.raft
        assert raft is not None
        # A leader's appends and heartbeats go out before its own save (thesis §10.2.1):
        # they promise nothing about its disk, and its own entries count towards a commit
        # only once saved (advance).  Every other message waits for the save.
        early = raft.role is Role.LEADER
        later = []
        for m in rd.messages:
            if early and m.type in (MessageType.APPEND, MessageType.HEARTBEAT,
                                    MessageType.SNAPSHOT):
                self.transport.send(m)
            else:
                later.append(m)
        if rd.snapshot is not None:  # from the leader: it replaces our state
            meta, data = rd.snapshot
            self._restore(data)
            await trio.to_thread.run_sync(self.storage.save_snapshot, meta, data,
                                          list(raft.log.entries))
            await trio.to_thread.run_sync(self.storage.save, rd.hard_state, [])
        elif self.storage.fsync_enabled:
            await trio.to_thread.run_sync(self.storage.save, rd.hard_state, rd.entries)
        else:  # a write(2) to the page cache: cheaper than the hop to a thread and back
            self.storage.save(rd.hard_state, rd.entries)
        for m in later:
            self.transport.send(m)
        for e in rd.committed:
            if e.kind is EntryKind.NORMAL:
                self._apply(e)
            elif e.kind is EntryKind.CONF:
                self._learn_address(e.data)
        for rs in rd.read_states:
            waiter = self.reads.get(rs.context)
            if waiter is not None:
                waiter.index = rs.index
                self.applied_reads.append(waiter)
        for data in rd.dropped:
            if data[:REQUEST_ID_BYTES] in self.writes:
                self.parked.append(("propose", data))  # no leader yet: try again soon
            else:
                self._fail(self.reads.get(data))
        raft.advance(rd)
        applied = raft.log.applied
        still = []
        for waiter in self.applied_reads:
            if waiter.index <= applied:
                waiter.done.set()
            else:
                still.append(waiter)
        self.applied_reads = still
        if rd.soft_state is not None:
            self._leadership(rd.soft_state.leader, rd.soft_state.role)
            self._retry_parked()
        if applied - raft.log.snapshot_index >= self.snapshot_entries:
            await self._snapshot()

    def _apply(self, e: Entry) -> None:
        req, payload = e.data[:REQUEST_ID_BYTES], e.data[REQUEST_ID_BYTES:]
        if req not in self.recent:  # thesis §6.3: each request applied once
            self.recent[req] = self.apply_fn(payload)
            if len(self.recent) > RECENT_IDS:
                self.recent.popitem(last=False)
        waiter = self.writes.get(req)
        if waiter is not None:
            waiter.result = self.recent[req]
            waiter.done.set()

    def _learn_address(self, data: bytes) -> None:
        """A committed membership change: a new server's address goes to the transport
        (the addresses travel in snapshots too)."""
        try:
            change = ConfChange.decode(data)
        except ValueError:
            return
        if change.op in ("add_learner", "voter") and change.address and change.node != self.config.id:
            host, _, port = change.address.rpartition(":")
            if port.isdigit():
                self.transport.set_peer(change.node, (host, int(port)))

    def _promote_caught_up(self) -> None:
        """Leader: a learner that holds everything committed becomes a voter (thesis
        §4.2.1: it cannot stall commits while it catches up)."""
        raft = self.raft
        assert raft is not None
        if raft.role is not Role.LEADER or raft.pending_conf_index > raft.log.applied:
            return
        for learner in sorted(raft.learners):
            if raft.caught_up(learner):
                log.info("raft: promoting server %d, caught up at %d", learner,
                         raft.progress[learner].match)
                raft.change_membership(ConfChange("promote", learner))
                return

    def _leadership(self, leader: int, role: Role) -> None:
        was_leader = self.role is Role.LEADER
        self.leader, self.role = leader, role
        if was_leader and role is not Role.LEADER:
            # Writes and reads waiting on this leader's round may never finish: retry.
            for waiter in list(self.writes.values()) + list(self.reads.values()):
                if not waiter.done.is_set() and waiter not in self.applied_reads:
                    self._fail(waiter)
        self.changed.set()
        self.changed = trio.Event()
        log.info("raft: node %d is %s, leader %d", self.config.id, role.value, leader)

    # --- snapshots --------------------------------------------------------------------------

    async def _snapshot(self) -> None:
        raft = self.raft
        assert raft is not None
        index = raft.log.applied
        data = pack_snapshot(self.snapshot_fn(), list(self.recent), self.transport.peers)
        meta = SnapshotMeta(index, raft.log.term(index) or 0, tuple(sorted(raft.voters)),
                            tuple(sorted(raft.learners)))
        raft.compact(meta, data)
        await trio.to_thread.run_sync(self.storage.save_snapshot, meta, data,
                                      list(raft.log.entries))

    def _restore(self, data: bytes) -> None:
        recent, state, *rest = msgpack.unpackb(data, raw=False)
        for ident, address in (rest[0] if rest else {}).items():
            if int(ident) != self.config.id:
                host, _, port = address.rpartition(":")
                self.transport.set_peer(int(ident), (host, int(port)))
        self.recent = OrderedDict((bytes(r), None) for r in recent)
        self.restore_fn(state)
