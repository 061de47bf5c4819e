"""A deterministic Raft cluster in one process: seeded network, disks, crashes, clients.

Time is an integer number of milliseconds.  Each server ticks every TICK_MS (with its
own phase); whatever its core wants done is done at its next "fsync" (DISK_MS after
the first change, like a group commit): persist, then send, then apply.  A crash
throws away the core and everything not yet flushed, and the server comes back from
its disk.  The network delays (reordering as a result), drops, duplicates and
partitions.  After every event the Raft paper's safety properties are checked:

- election safety: at most one leader per term, ever;
- log matching: two logs with an entry of the same index and term agree up to it;
- leader completeness: a new leader's log holds every entry committed before;
- state machine safety: servers apply the same entry at each index.

A failure raises SafetyViolation with the seed; ``scripts/sim SEED N`` replays it
with a trace.
"""

from __future__ import annotations

import heapq
import json
import random
import sys
from dataclasses import dataclass, field

from nodeagent.raft.core import Config, Raft
from nodeagent.raft.log import RaftLog
from nodeagent.raft.messages import (
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Message,
    Role,
    SnapshotMeta,
)

TICK_MS = 10
DISK_MS = 2
COMPACT_AFTER = 12  # applied entries past the snapshot before a server may take a new one


class SafetyViolation(AssertionError):
    pass


@dataclass
class Disk:
    """What survives a crash: the hard state, the log entries, the snapshot."""

    hard: HardState = field(default_factory=HardState)
    entries: list[Entry] = field(default_factory=list)
    snapshot: tuple[SnapshotMeta, bytes] | None = None

    def write(self, entries: list[Entry]) -> None:
        if not entries:
            return
        first = entries[0].index
        base = self.snapshot[0].index if self.snapshot else 0
        del self.entries[max(0, first - base - 1):]
        self.entries.extend(entries)


@dataclass
class Server:
    id: int
    raft: Raft | None
    disk: Disk
    applied: list[tuple[int, int, bytes]] = field(default_factory=list)  # (index, term, data)
    flush_due: bool = False
    phase: int = 0


@dataclass(order=True)
class _Event:
    at: int
    seq: int
    kind: str = field(compare=False)
    server: int = field(compare=False, default=0)
    msg: Message | None = field(compare=False, default=None)


@dataclass
class Faults:
    drop: float = 0.02
    duplicate: float = 0.02
    delay_ms: tuple[int, int] = (1, 15)
    crash_every_ms: int = 700  # mean time between crashes (0: none)
    down_ms: tuple[int, int] = (50, 400)
    partition_every_ms: int = 900  # mean time between partitions (0: none)
    partition_ms: tuple[int, int] = (100, 700)


class Cluster:
    def __init__(self, n: int, seed: int, faults: Faults | None = None, *,
                 trace: bool = False, voters: int = 0, membership_every_ms: int = 0) -> None:
        self.seed, self.rng = seed, random.Random(seed)
        self.faults = faults or Faults()
        self.trace = trace
        self.ids = tuple(range(1, n + 1))
        # The first members; the other servers run but belong to no configuration yet.
        self.initial = self.ids[:voters or n]
        self.membership_every_ms = membership_every_ms
        self.now = 0
        self.queue: list[_Event] = []
        self.seq = 0
        self.cut: set[frozenset[int]] = set()
        self.leaders: dict[int, int] = {}  # term -> leader
        self.committed: list[tuple[int, int]] = []  # the (index, term)s known committed
        self.applied_data: dict[int, bytes] = {}  # index -> what was applied there
        self.proposed: dict[bytes, int] = {}  # data -> time proposed
        self.acked: set[bytes] = set()  # proposals seen applied somewhere
        self.acked_at: dict[bytes, int] = {}  # when first applied: the client's answer
        self.servers = {i: Server(i, None, Disk(), phase=self.rng.randrange(TICK_MS))
                        for i in self.ids}
        for s in self.servers.values():
            self._boot(s)
            self._at(s.phase, "tick", s.id)

    # --- events ---------------------------------------------------------------------------

    def _at(self, at: int, kind: str, server: int = 0, msg: Message | None = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, _Event(at, self.seq, kind, server, msg))

    def run(self, until_ms: int, *, clients: bool = True, faults: bool = True) -> None:
        if clients:
            self._at(self.now + self.rng.randrange(5, 30), "client")
        if faults and self.faults.crash_every_ms:
            self._at(self.now + self._exp(self.faults.crash_every_ms), "crash")
        if faults and self.faults.partition_every_ms:
            self._at(self.now + self._exp(self.faults.partition_every_ms), "partition")
        if faults and self.membership_every_ms:
            self._at(self.now + self._exp(self.membership_every_ms), "membership")
        while self.queue and self.queue[0].at <= until_ms:
            ev = heapq.heappop(self.queue)
            self.now = ev.at
            getattr(self, f"_on_{ev.kind}")(ev)
            self.check()
        # Background events of this phase stop at its end (ticks and deliveries go on).
        self.queue = [e for e in self.queue
                      if e.kind not in ("client", "crash", "partition", "membership")]
        heapq.heapify(self.queue)
        self.now = until_ms

    def _exp(self, mean: int) -> int:
        return 1 + int(self.rng.expovariate(1 / mean))

    def _on_tick(self, ev: _Event) -> None:
        s = self.servers[ev.server]
        if s.raft is not None:
            s.raft.tick()
            self._changed(s)
        self._at(self.now + TICK_MS, "tick", s.id)

    def _on_deliver(self, ev: _Event) -> None:
        assert ev.msg is not None
        s = self.servers[ev.msg.dst]
        if s.raft is None:
            return
        s.raft.step(ev.msg)
        self._changed(s)

    def _on_flush(self, ev: _Event) -> None:
        s = self.servers[ev.server]
        s.flush_due = False
        if s.raft is not None:
            self._flush(s)

    def _on_client(self, ev: _Event) -> None:
        live = [s for s in self.servers.values() if s.raft is not None]
        if live:
            s = self.rng.choice(live)
            data = f"op-{self.seq}".encode()
            assert s.raft is not None
            if s.raft.propose(data):
                self.proposed[data] = self.now
            self._changed(s)
        self._at(self.now + self.rng.randrange(5, 40), "client")

    def _on_crash(self, ev: _Event) -> None:
        live = [s for s in self.servers.values() if s.raft is not None]
        if len(live) > 1:
            s = self.rng.choice(live)
            self._log(f"crash {s.id}")
            s.raft, s.flush_due = None, False  # everything not flushed is gone
            self._at(self.now + self.rng.randrange(*self.faults.down_ms), "restart", s.id)
        self._at(self.now + self._exp(self.faults.crash_every_ms), "crash")

    def _on_restart(self, ev: _Event) -> None:
        s = self.servers[ev.server]
        if s.raft is None:
            self._log(f"restart {s.id}")
            self._boot(s)

    def _on_partition(self, ev: _Event) -> None:
        a, b = self.rng.sample(self.ids, 2) if self.rng.random() < 0.5 else (None, None)
        if a is None:  # isolate one server from all others
            one = self.rng.choice(self.ids)
            links = {frozenset((one, o)) for o in self.ids if o != one}
        else:
            assert b is not None
            links = {frozenset((a, b))}
        self.cut |= links
        self._log(f"partition {sorted(tuple(sorted(x)) for x in links)}")
        self._at(self.now + self.rng.randrange(*self.faults.partition_ms), "heal")
        self._at(self.now + self._exp(self.faults.partition_every_ms), "partition")

    def _on_membership(self, ev: _Event) -> None:
        """The leader changes the membership by one server: adds a learner, promotes a
        caught-up one, or removes a member (itself included), keeping two voters."""
        s = self.leader()
        if s is not None and s.raft is not None:
            r = s.raft
            outside = [i for i in self.ids if i not in r.voters | r.learners]
            ready = [i for i in sorted(r.learners) if r.caught_up(i)]
            choices: list[ConfChange] = [ConfChange("add_learner", i) for i in outside]
            choices += [ConfChange("promote", i) for i in ready]
            if len(r.voters) > 2:
                choices += [ConfChange("remove", i) for i in sorted(r.voters)]
            if choices:
                change = self.rng.choice(choices)
                if r.change_membership(change):
                    self._log(f"membership {change.op} {change.node} (by {s.id})")
                self._changed(s)
        self._at(self.now + self._exp(self.membership_every_ms), "membership")

    def _on_heal(self, ev: _Event) -> None:
        self.cut = set()
        self._log("heal")

    # --- a server's driver ------------------------------------------------------------------

    def _boot(self, s: Server) -> None:
        d = s.disk
        snap = d.snapshot
        log = RaftLog(list(d.entries), snapshot_index=snap[0].index if snap else 0,
                      snapshot_term=snap[0].term if snap else 0)
        s.raft = Raft(Config(id=s.id, snapshot_chunk_bytes=64),
                      snap[0].voters if snap else self.initial,
                      learners=snap[0].learners if snap else (),
                      rng=random.Random(self.rng.random()), hard_state=d.hard, log=log,
                      snapshot=snap)
        # The state machine restarts from the snapshot and replays the log after it.
        s.applied = _decode(snap[1]) if snap else []

    def _changed(self, s: Server) -> None:
        if not s.flush_due:
            s.flush_due = True
            self._at(self.now + DISK_MS, "flush", s.id)

    def _flush(self, s: Server) -> None:
        raft = s.raft
        assert raft is not None
        while raft.has_ready():
            rd = raft.ready()
            if rd.hard_state is not None:
                s.disk.hard = rd.hard_state
            if rd.snapshot is not None:  # installed from the leader: replaces our state
                s.disk.snapshot, s.disk.entries = rd.snapshot, list(raft.log.entries)
                s.applied = _decode(rd.snapshot[1])
                for index, _term, value in s.applied:
                    self._check_applied(s, index, value)
            else:
                s.disk.write(rd.entries)
            for m in rd.messages:
                self._send(m)
            for e in rd.committed:
                self._apply(s, e)
            raft.advance(rd)
            if rd.soft_state is not None and rd.soft_state.role is Role.LEADER:
                self._became_leader(s)
            if raft.log.applied - raft.log.snapshot_index >= COMPACT_AFTER and \
                    self.rng.random() < 0.3:
                self._compact(s)

    def _compact(self, s: Server) -> None:
        """The application snapshots what it applied; the log before it is forgotten."""
        raft = s.raft
        assert raft is not None
        index = raft.log.applied
        meta = SnapshotMeta(index, raft.log.term(index) or 0, tuple(sorted(raft.voters)),
                            tuple(sorted(raft.learners)))
        data = _encode(s.applied[:index])
        raft.compact(meta, data)
        s.disk.snapshot = (meta, data)
        s.disk.entries = [e for e in s.disk.entries if e.index > index]

    def _send(self, m: Message) -> None:
        if frozenset((m.src, m.dst)) in self.cut or self.rng.random() < self.faults.drop:
            return
        copies = 2 if self.rng.random() < self.faults.duplicate else 1
        for _ in range(copies):
            self._at(self.now + self.rng.randint(*self.faults.delay_ms), "deliver", msg=m)

    def _apply(self, s: Server, e: Entry) -> None:
        expected = len(s.applied) + 1
        if e.index != expected:
            raise self._violation(f"server {s.id} applied index {e.index}, expected {expected}")
        mine = e.data if e.kind is EntryKind.NORMAL else b"<noop>"
        s.applied.append((e.index, e.term, mine))
        self._check_applied(s, e.index, mine)
        if e.index > len(self.committed):
            self.committed.append((e.index, e.term))
        if e.kind is EntryKind.NORMAL:
            self.acked.add(e.data)
            self.acked_at.setdefault(e.data, self.now)

    def _check_applied(self, s: Server, index: int, value: bytes) -> None:
        have = self.applied_data.setdefault(index, value)
        if have != value:
            raise self._violation(f"state machine safety: index {index} applied as {have!r} "
                                  f"and {value!r} (server {s.id})")

    def _became_leader(self, s: Server) -> None:
        raft = s.raft
        assert raft is not None
        # Leader completeness: every entry committed so far is in the new leader's log.
        for index, term in self.committed:
            if index > raft.log.snapshot_index and raft.log.term(index) != term:
                raise self._violation(f"leader completeness: leader {s.id} of term {raft.term} "
                                      f"lacks committed entry {index} (term {term})")

    # --- invariants -------------------------------------------------------------------------

    def check(self) -> None:
        for s in self.servers.values():
            if s.raft is not None and s.raft.role is Role.LEADER:
                other = self.leaders.setdefault(s.raft.term, s.id)
                if other != s.id:
                    raise self._violation(f"election safety: {other} and {s.id} both led "
                                          f"term {s.raft.term}")

    def check_logs(self) -> None:
        """Log matching over every pair of live servers (slower: at the end of phases)."""
        live = [s for s in self.servers.values() if s.raft is not None]
        for i, a in enumerate(live):
            for b in live[i + 1:]:
                la, lb = a.raft.log, b.raft.log  # type: ignore[union-attr]
                top = min(la.last_index(), lb.last_index())
                lo = max(la.snapshot_index, lb.snapshot_index) + 1
                matched = False
                for index in range(top, lo - 1, -1):
                    same = la.term(index) == lb.term(index)
                    if matched and not same:
                        raise self._violation(f"log matching: servers {a.id} and {b.id} agree "
                                              f"at a later index but differ at {index}")
                    matched = matched or same

    def _violation(self, what: str) -> SafetyViolation:
        return SafetyViolation(f"seed {self.seed} at {self.now} ms: {what} "
                               f"(replay: scripts/sim {self.seed} "
                               f"{'m' if self.membership_every_ms else len(self.ids)})")

    def _log(self, text: str) -> None:
        if self.trace:
            print(f"{self.now:>7} ms  {text}")

    # --- outcomes -----------------------------------------------------------------------------

    def check_history(self) -> None:
        """The clients' writes, as a history, are linearizable: a write answered before
        another was asked for takes effect before it.  A write can reach the log twice (a
        forwarded proposal duplicated on the network); as thesis §6.3 has it, the state
        machine applies a request id once, so only its first entry counts."""
        order: dict[bytes, int] = {}
        for index in sorted(self.applied_data):
            value = self.applied_data[index]
            if value != b"<noop>" and value in self.proposed:
                order.setdefault(value, index)
        answered = sorted((t, v) for v, t in self.acked_at.items() if v in self.proposed)
        asked = sorted((t, v) for v, t in self.proposed.items() if v in order)
        # For each write, the latest-indexed write answered strictly before it was asked.
        latest, i = 0, 0
        for t_asked, value in asked:
            while i < len(answered) and answered[i][0] < t_asked:
                latest = max(latest, order[answered[i][1]])
                i += 1
            if order[value] < latest:
                raise self._violation(f"history: {value!r} (asked at {t_asked} ms) is at index "
                                      f"{order[value]}, before a write answered earlier "
                                      f"(index {latest})")

    def leader(self) -> Server | None:
        leaders = [s for s in self.servers.values()
                   if s.raft is not None and s.raft.role is Role.LEADER]
        return max(leaders, key=lambda s: s.raft.term) if leaders else None  # type: ignore[union-attr]


def _encode(applied: list[tuple[int, int, bytes]]) -> bytes:
    return json.dumps([[i, t, v.decode()] for i, t, v in applied]).encode()


def _decode(data: bytes) -> list[tuple[int, int, bytes]]:
    return [(i, t, v.encode()) for i, t, v in json.loads(data)]


def scenario(seed: int, n: int = 3, *, trace: bool = False, membership: bool = False) -> Cluster:
    """A seed's whole story: faults and clients for 3 s (with ``membership``: 5 servers of
    which 3 start as members, and changes of one server every ~400 ms), then a calm 2 s
    in which the cluster must elect a leader and bring every member to the same commit."""
    c = Cluster(n, seed, trace=trace, voters=3 if membership else 0,
                membership_every_ms=400 if membership else 0)
    c.run(3000)
    c.check_logs()
    for s in c.servers.values():  # everyone comes back
        if s.raft is None:
            c._boot(s)
    c.cut = set()
    c.run(5000, clients=False, faults=False)
    c.check_logs()
    leader = c.leader()
    if leader is None:
        raise c._violation("liveness: no leader after 2 s without faults")
    assert leader.raft is not None
    # Let the leader commit something of its own term and everyone apply it.
    leader.raft.propose(b"final")
    c._changed(leader)
    c.run(6000, clients=False, faults=False)
    members = leader.raft.voters | leader.raft.learners
    commits = {s.id: s.raft.log.committed for s in c.servers.values()
               if s.raft is not None and s.id in members}
    if len(set(commits.values())) != 1:
        raise c._violation(f"liveness: commits differ after a calm second: {commits}")
    if b"final" not in c.acked:
        raise c._violation("liveness: a proposal to the leader was not applied")
    c.check_history()
    return c


if __name__ == "__main__":
    seed = int(sys.argv[1])
    arg = sys.argv[2] if len(sys.argv) > 2 else "3"
    scenario(seed, 5 if arg == "m" else int(arg), trace=True, membership=arg == "m")
    print("ok")
