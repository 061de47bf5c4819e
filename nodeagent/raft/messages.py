"""What Raft servers say to each other, what they persist, and what the core hands back.

Plain frozen dataclasses, so the simulation can copy, drop, duplicate and reorder
them freely and the transport can encode them field by field (msgpack).  Field
names follow the Raft paper (Figure 2) and etcd-io/raft's ``raftpb`` where the
paper is silent (rejection hints, ReadIndex contexts, TimeoutNow).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["ConfChange", "ConfState", "Entry", "EntryKind", "HardState", "Message", "MessageType",
           "ReadState", "Ready", "Role", "SnapshotMeta", "SoftState"]


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class EntryKind(enum.IntEnum):
    NORMAL = 0  # an application command (a store write)
    NOOP = 1  # appended by a new leader, so it can commit what earlier terms left (§5.4.2)
    CONF = 2  # a membership change, one server at a time (thesis §4.1)


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ConfChange:
    """One server at a time (thesis §4.1): a new server joins as a learner (it gets the
    log but neither votes nor counts), is promoted to voter once caught up, and a
    server is removed.  Carried as the data of a CONF entry, with the new server's
    Raft address so every server's transport learns where it is."""

    op: str  # add_learner | promote | remove; voter: the bootstrap's first members
    node: int
    address: str = ""  # add_learner and voter: HOST:PORT

    OPS = ("add_learner", "promote", "remove", "voter")  # voter: the bootstrap's only

    def encode(self) -> bytes:
        return f"{self.op} {self.node} {self.address}".rstrip().encode()

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        try:
            op, node, *rest = data.decode().split(" ")
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"not a membership change: {data[:40]!r}") from exc
        if op not in cls.OPS or not node.isdigit() or int(node) <= 0 or len(rest) > 1:
            raise ValueError(f"not a membership change: {data[:40]!r}")
        return cls(op, int(node), rest[0] if rest else "")


class MessageType(enum.IntEnum):
    APPEND = 1  # AppendEntries; with no entries it is also the heartbeat
    APPEND_RESP = 2
    VOTE = 3  # RequestVote
    VOTE_RESP = 4
    PRE_VOTE = 5  # would you vote for me?  (thesis §9.6): no term is bumped by asking
    PRE_VOTE_RESP = 6
    SNAPSHOT = 7  # InstallSnapshot, one chunk
    SNAPSHOT_RESP = 8
    HEARTBEAT = 9  # leadership and commit, and the ReadIndex round (thesis §6.4)
    HEARTBEAT_RESP = 10
    TIMEOUT_NOW = 11  # leadership transfer: start an election at once (thesis §3.10)
    PROPOSE = 12  # a follower forwarding client commands to the leader
    READ_INDEX = 13  # a follower asking the leader for a read index
    READ_INDEX_RESP = 14


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int
    term: int
    voters: tuple[int, ...]
    learners: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    src: int
    dst: int
    term: int
    log_term: int = 0  # APPEND: prev log term; VOTE: last log term; RESP: hint term
    index: int = 0  # APPEND: prev log index; VOTE: last log index; RESP: match or hint
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    hint: int = 0  # APPEND_RESP reject: the follower's last index (where to probe next)
    context: bytes = b""  # ReadIndex request id; "transfer" on a leadership-transfer vote
    snapshot: SnapshotMeta | None = None
    offset: int = 0  # SNAPSHOT: where this chunk starts in the snapshot's bytes
    data: bytes = b""  # SNAPSHOT: the chunk
    done: bool = False  # SNAPSHOT: the last chunk


@dataclass(frozen=True, slots=True)
class HardState:
    """Persisted (and fsynced) before any message that depends on it is sent."""

    term: int = 0
    vote: int = 0  # 0: none
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SoftState:
    leader: int  # 0: none known
    role: Role


@dataclass(frozen=True, slots=True)
class ConfState:
    voters: tuple[int, ...]
    learners: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once this server applied up to ``index``."""

    index: int
    context: bytes


@dataclass
class Ready:
    """Everything the driver must do, in order: persist ``hard_state`` and ``entries``
    (fsync), then install ``snapshot`` if any, then send ``messages``, then apply
    ``committed``, answer ``read_states``; then call ``advance(ready)``."""

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    conf_state: ConfState | None = None  # the membership, when a change was applied
    entries: list[Entry] = field(default_factory=list)
    snapshot: tuple[SnapshotMeta, bytes] | None = None
    messages: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    dropped: list[bytes] = field(default_factory=list)  # proposals not accepted: retry

    def empty(self) -> bool:
        return not (self.soft_state or self.hard_state or self.conf_state or self.entries
                    or self.snapshot
                    or self.messages or self.committed or self.read_states or self.dropped)
