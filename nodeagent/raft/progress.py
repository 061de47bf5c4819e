"""What a leader knows of each follower's log, and how fast it may send to it.

etcd-io/raft's ``tracker`` in small: a follower is *probed* (one append in flight
until it answers, stepping ``next`` back on rejections) until an append is
accepted; then *replicated* to (appends pipelined, up to ``max_inflight`` unanswered,
``next`` moved on optimistically); a follower whose next entry was compacted away is
sent a *snapshot* and probed again after it.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Progress", "State"]


class State(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@dataclass
class Progress:
    next: int
    match: int = 0
    state: State = State.PROBE
    probe_sent: bool = False  # PROBE: an append is out; wait for its answer or a heartbeat
    inflight: deque[int] = field(default_factory=deque)  # REPLICATE: last index of each
    recent_active: bool = True  # heard from since the last CheckQuorum round
    snapshot_index: int = 0  # SNAPSHOT: the one being sent
    snapshot_offset: int = 0  # SNAPSHOT: bytes acknowledged so far
    learner: bool = False

    def paused(self, max_inflight: int) -> bool:
        if self.state is State.PROBE:
            return self.probe_sent
        if self.state is State.SNAPSHOT:
            return True
        return len(self.inflight) >= max_inflight

    def become_probe(self) -> None:
        if self.state is State.SNAPSHOT:
            self.next = max(self.match + 1, self.snapshot_index + 1)
        else:
            self.next = self.match + 1
        self.state, self.probe_sent = State.PROBE, False
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.state, self.probe_sent = State.REPLICATE, False
        self.next = self.match + 1
        self.inflight.clear()

    def become_snapshot(self, index: int) -> None:
        self.state, self.snapshot_index, self.snapshot_offset = State.SNAPSHOT, index, 0
        self.inflight.clear()

    def sent(self, last: int) -> None:
        """An append carrying entries up to ``last`` went out."""
        if self.state is State.REPLICATE:
            self.next = last + 1
            self.inflight.append(last)
        elif self.state is State.PROBE:
            self.probe_sent = True

    def maybe_update(self, index: int) -> bool:
        """The follower has everything up to ``index``; False if that is old news."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        return updated

    def maybe_decrease(self, rejected: int, hint: int) -> bool:
        """The follower did not have the entry at ``rejected`` (its last is ``hint``);
        False if the rejection is stale (an answer to an older append)."""
        if self.state is State.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1  # back to probing from what is known to match
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(1, min(rejected, hint + 1))
        self.probe_sent = False
        return True
