"""What gossiping agents say to each other, and what the core hands back to its driver.

Frozen dataclasses, so the simulation can copy, drop, duplicate and reorder them
and the codec can check them field by field.  The messages are memberlist's
(hashicorp/memberlist ``net.go``), which are SWIM's (Das et al. 2002) with
Lifeguard's nack (Dadgar et al. 2018): ping, indirect ping, ack, nack; the
membership updates alive, suspect and dead that ride along on them; a user
event; and the full-state exchange of push-pull, which goes over TCP.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["Ack", "Address", "Alive", "Dead", "EventKind", "IndirectPing", "Member", "MemberEvent",
           "MemberState", "Message", "Nack", "Ping", "PushPull", "Ready", "Suspect",
           "UserEvent"]

Address = tuple[str, int]


class EventKind(enum.StrEnum):
    JOIN = "join"
    UPDATE = "update"  # its metadata changed
    SUSPECT = "suspect"
    ALIVE = "alive"  # a suspect refuted
    FAILED = "failed"
    LEAVE = "leave"
    USER = "user"


class MemberState(enum.IntEnum):
    ALIVE = 0
    SUSPECT = 1
    DEAD = 2  # failed: declared dead after a suspicion nobody refuted
    LEFT = 3  # left on purpose (a dead message about itself)


@dataclass(frozen=True, slots=True)
class Ping:
    seq: int
    target: str  # the name the sender means: a reused address must not answer for another
    source: str
    source_addr: Address


@dataclass(frozen=True, slots=True)
class IndirectPing:
    """Ping ``target`` for me and tell me (SWIM §3.1 ping-req); with ``nack``, say so
    when it does not answer (Lifeguard §4.3), so I learn my own links are fine."""

    seq: int
    target: str
    target_addr: Address
    source: str
    source_addr: Address
    nack: bool = True


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int


@dataclass(frozen=True, slots=True)
class Nack:
    seq: int


@dataclass(frozen=True, slots=True)
class Alive:
    incarnation: int
    node: str
    addr: Address
    meta: bytes = b""


@dataclass(frozen=True, slots=True)
class Suspect:
    incarnation: int
    node: str
    source: str  # who suspects: distinct sources confirm a suspicion (Lifeguard §4.2)


@dataclass(frozen=True, slots=True)
class Dead:
    incarnation: int
    node: str
    source: str  # == node: it left on purpose


@dataclass(frozen=True, slots=True)
class UserEvent:
    ltime: int  # Lamport time: orders events and lets old ones be told from new
    name: str
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    addr: Address
    incarnation: int = 0
    state: MemberState = MemberState.ALIVE
    meta: bytes = b""
    since_ms: int = 0  # when it entered this state (the observer's clock)


@dataclass(frozen=True, slots=True)
class PushPull:
    """The whole membership as the sender knows it (memberlist's pushPullHeader and
    pushNodeState), sent both ways over TCP; ``join`` on the first exchange.  ``events``:
    the user events it remembers (serf's push-pull carries them too), so one that gossip's
    few retransmissions missed somebody with still reaches everyone."""

    members: tuple[Member, ...]
    event_ltime: int = 0
    join: bool = False
    events: tuple[UserEvent, ...] = ()


Message = Ping | IndirectPing | Ack | Nack | Alive | Suspect | Dead | UserEvent


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """What the agent hears about a member, or a user event (``user`` set)."""

    kind: EventKind
    member: Member | None = None
    user: UserEvent | None = None


@dataclass
class Ready:
    """The core's output since the last ``ready()``: UDP packets (each a compound of
    messages for one address, within the UDP budget), pings for the driver to try over
    TCP (the probe's fallback), push-pulls to run over TCP, and events for the agent."""

    packets: list[tuple[Address, list[Message]]] = field(default_factory=list)
    tcp_pings: list[tuple[Address, Ping]] = field(default_factory=list)
    push_pulls: list[tuple[Address, PushPull]] = field(default_factory=list)
    events: list[MemberEvent] = field(default_factory=list)
