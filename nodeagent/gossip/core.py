"""SWIM membership with Lifeguard, as a pure state machine.

Theory of operation
-------------------
Every member probes one other each probe interval, round robin over a shuffled
list (SWIM §4.3): a direct ping, and if no ack comes within the probe timeout,
``indirect_checks`` others are asked to ping it (ping-req, SWIM §3.1) while the
driver also tries a ping over TCP.  No ack by the end of the interval: the
target becomes *suspect* and the suspicion is gossiped.  A suspect that hears of
it refutes by raising its *incarnation* and gossiping that it is alive (SWIM
§4.2); a suspicion nobody refutes in time makes the member *dead*.  Membership
updates (alive, suspect, dead) ride on the probes' packets and on gossip rounds
to a few random members, each retransmitted ``retransmit_mult * log10(N+1)``
times, newest-least-sent first; a push-pull of the whole state over TCP now and
then repairs whatever gossip missed, and is how a new member joins.

Lifeguard (Dadgar et al., 2018) makes a slow member less trigger-happy:
- local health (§4.3): a member whose probes fail although its indirect helpers
  said "nack" (they could not reach the target either, so its own links work) --
  or that has to refute suspicions of itself -- raises an awareness score and
  stretches its probe interval and timeouts by (score + 1);
- dynamic suspicion (§4.2): a suspicion starts long (max) and shrinks towards
  the minimum with each independent confirmation (a suspect message from
  another member), so a lone slow accuser cannot kill a healthy member quickly;
- buddy system (§4.4): a ping to a suspect carries the suspicion, so the
  suspect hears of it first and refutes at once.

The core knows no clock, socket or global random: ``tick(now_ms)`` and
``step(message, now_ms)`` take the time, ``rng`` is injected, and everything to
do comes out of ``ready()``.  hashicorp/memberlist (state.go, suspicion.go,
awareness.go, broadcast.go) is the reference for the details.
"""

from __future__ import annotations

import math
import random
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace

from nodeagent.gossip.codec import COMPOUND_OVERHEAD, MAX_META_BYTES, message_size
from nodeagent.gossip.config import GossipConfig
from nodeagent.gossip.messages import (
    Ack,
    Address,
    Alive,
    Dead,
    EventKind,
    IndirectPing,
    Member,
    MemberEvent,
    MemberState,
    Message,
    Nack,
    Ping,
    PushPull,
    Ready,
    Suspect,
    UserEvent,
)

__all__ = ["Gossip"]

MIN_MESSAGE_BYTES = 8  # the smallest update (an ack is smaller, but never queued)
ALIVE, SUSPECT, DEAD, LEFT = (MemberState.ALIVE, MemberState.SUSPECT, MemberState.DEAD,
                              MemberState.LEFT)


@dataclass
class _Probe:
    seq: int
    target: str
    start_ms: int
    direct_deadline_ms: int
    end_ms: int
    indirect_sent: bool = False
    expected_nacks: int = 0
    nacks: int = 0


@dataclass
class _Relay:
    """An indirect ping we make for ``source``: their seq, and until when to wait."""

    source_addr: Address
    seq: int
    deadline_ms: int
    nack: bool


@dataclass
class _Suspicion:
    start_ms: int
    min_ms: int
    max_ms: int
    k: int  # confirmations that bring the timeout down to the minimum
    confirmers: set[str] = field(default_factory=set)  # the accuser, then who confirmed

    def deadline_ms(self) -> int:
        """Lifeguard §4.2 (memberlist's suspicion.go): from max down to min as
        log(confirmations + 1) / log(k + 1); the first accuser is not a confirmation."""
        if self.k < 1:
            return self.start_ms + self.min_ms
        confirmations = len(self.confirmers) - 1
        frac = math.log(confirmations + 1) / math.log(self.k + 1)
        timeout = max(self.min_ms, self.max_ms - (self.max_ms - self.min_ms) * frac)
        return self.start_ms + int(timeout)


@dataclass
class _Broadcast:
    key: tuple[object, ...]  # a newer update with the same key replaces this one
    message: Message
    size: int
    transmits: int = 0


class Gossip:
    def __init__(self, config: GossipConfig, name: str, addr: Address, *, rng: random.Random,
                 meta: bytes = b"", now_ms: int = 0, incarnation: int = 0) -> None:
        if len(meta) > MAX_META_BYTES:
            raise ValueError(f"meta: {len(meta)} bytes is over {MAX_META_BYTES}")
        self.config, self.name, self.addr, self.rng = config, name, addr, rng
        self.now = now_ms
        self.incarnation = incarnation
        self.meta = meta
        self.members: dict[str, Member] = {}
        self._names: list[str] = []  # self.members' keys, for sampling without a copy
        self.counts: Counter[MemberState] = Counter()  # members by state, this one too
        self.refused_members = 0  # news of new members dropped: the table was full
        self._set(Member(name, addr, incarnation, ALIVE, meta, now_ms))
        self.awareness = 0  # Lifeguard local health: 0 healthy .. max-1
        self.ltime = 0  # user events' Lamport clock
        self._event_min_ltime = 0  # older ones happened before we joined: not ours to see
        self.leaving = False
        self._seq = 0
        self._probe_order: list[str] = []
        self._probe_index = 0
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._suspicions: dict[str, _Suspicion] = {}
        # Updates to send, by how often each went out already (memberlist keeps them in a
        # btree by transmits): tier i holds those sent i times, newest last.
        self._tiers: list[dict[tuple[object, ...], _Broadcast]] = [{}]
        self._tier_of: dict[tuple[object, ...], int] = {}
        self._seen_events: OrderedDict[UserEvent, None] = OrderedDict()  # newest last
        self._ready = Ready()
        jitter = rng.randrange(config.probe_interval_ms)  # members do not probe in step
        self._next_probe = now_ms + jitter
        self._next_gossip = now_ms + config.gossip_interval_ms
        self._next_push_pull = now_ms + config.push_pull_interval_ms + jitter
        self._next_reap = now_ms + 1000
        self._next_reconnect = now_ms + config.reconnect_interval_ms + jitter

    # --- what the agent calls ---------------------------------------------------------------

    def join(self, seeds: list[Address]) -> None:
        """Exchange state with each seed over TCP (the driver retries failures)."""
        for addr in seeds:
            if addr != self.addr:
                self._ready.push_pulls.append((addr, self.local_state(join=True)))

    def leave(self) -> None:
        """Tell the others we are leaving on purpose (a dead message about ourselves);
        the driver waits for ``left_broadcast_done`` before it stops."""
        self.leaving = True
        dead = Dead(self.incarnation, self.name, self.name)
        self._dead(dead)
        # Straight to a few live members too: riding on gossip alone, its few transmissions
        # could all go to members already dead (gossip to the dead) or answer our pings.
        for member in self._pick(self.config.gossip_nodes, lambda m: m.state is ALIVE):
            self._ready.packets.append((member.addr, [dead]))

    def left_broadcast_done(self) -> bool:
        return ("node", self.name) not in self._tier_of

    def set_meta(self, meta: bytes) -> None:
        """New metadata for this member (roles, addresses, labels): a new incarnation."""
        if len(meta) > MAX_META_BYTES:
            raise ValueError(f"meta: {len(meta)} bytes is over {MAX_META_BYTES}")
        self.meta = meta
        self.incarnation += 1
        self._set(replace(self.members[self.name], incarnation=self.incarnation, meta=meta))
        self._broadcast(("node", self.name), Alive(self.incarnation, self.name, self.addr, meta))

    def user_event(self, name: str, payload: bytes = b"") -> None:
        """Send an event to every member (serf's user events): at most once each."""
        self.ltime += 1
        event = UserEvent(self.ltime, name, payload)
        self._seen(event)
        self._broadcast(("user", event.ltime, name, payload), event)

    def local_state(self, join: bool = False) -> PushPull:
        return PushPull(tuple(self.members.values()), self.ltime, join,
                        tuple(self._seen_events))

    def alive_count(self) -> int:
        """Members alive or suspect, this one included: the N of the formulas."""
        return self.counts[ALIVE] + self.counts[SUSPECT]

    # --- time and input -------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        self.now = now = max(self.now, now_ms)
        probe = self._probe
        if probe is not None and not probe.indirect_sent and now >= probe.direct_deadline_ms:
            self._probe_indirectly(probe)
        if probe is not None and now >= probe.end_ms:
            self._probe_failed(probe)
        if now >= self._next_probe:
            self._next_probe = now + self._scaled(self.config.probe_interval_ms)
            self._probe_next()
        for seq, relay in list(self._relays.items()):
            if now >= relay.deadline_ms:
                del self._relays[seq]
                if relay.nack:
                    self._send(relay.source_addr, Nack(relay.seq))
        for node, suspicion in list(self._suspicions.items()):
            if now >= suspicion.deadline_ms():
                member = self.members[node]
                self._dead(Dead(member.incarnation, node, self.name))
        if now >= self._next_gossip:
            self._next_gossip = now + self.config.gossip_interval_ms
            self._gossip_round()
        if self.config.push_pull_interval_ms and now >= self._next_push_pull:
            self._next_push_pull = now + self.config.push_pull_scaled_ms(len(self.members))
            peers = self._pick(1, lambda m: m.state is ALIVE)
            if peers:
                self._ready.push_pulls.append((peers[0].addr, self.local_state()))
        if self.config.reconnect_interval_ms and now >= self._next_reconnect:
            self._next_reconnect = now + self.config.reconnect_interval_ms
            failed = self._pick(1, lambda m: m.state is DEAD)
            if failed:  # serf's reconnect: a healed partition finds itself again
                self._ready.push_pulls.append((failed[0].addr, self.local_state()))
        if now >= self._next_reap:
            self._next_reap = now + 1000
            if self.counts[DEAD] or self.counts[LEFT]:
                for node, m in list(self.members.items()):
                    if m.state in (DEAD, LEFT) and now - m.since_ms >= self.config.reap_after_ms:
                        del self.members[node]
                        self._names.remove(node)
                        self.counts[m.state] -= 1

    def step(self, message: Message, now_ms: int) -> None:
        """One message from the network (untrusted, but decoded and checked)."""
        self.now = max(self.now, now_ms)
        if isinstance(message, Ping):
            if message.target == self.name:  # else it is meant for whoever had our address
                self._send(message.source_addr, Ack(message.seq))
        elif isinstance(message, IndirectPing):
            seq = self._next_seq()
            self._relays[seq] = _Relay(message.source_addr, message.seq,
                                       self.now + self._scaled(self.config.probe_timeout_ms),
                                       message.nack)
            self._send(message.target_addr, Ping(seq, message.target, self.name, self.addr))
        elif isinstance(message, Ack):
            self._acked(message.seq)
        elif isinstance(message, Nack):
            if self._probe is not None and self._probe.seq == message.seq:
                self._probe.nacks += 1
        elif isinstance(message, Alive):
            self._alive(message)
        elif isinstance(message, Suspect):
            self._suspect(message)
        elif isinstance(message, Dead):
            self._dead(message)
        elif isinstance(message, UserEvent):
            self._user_event_in(message)

    def _user_event_in(self, event: UserEvent) -> None:
        """serf's handleUserEvent: each event once, passed on, none from before we joined."""
        self.ltime = max(self.ltime, event.ltime)
        if event.ltime >= self._event_min_ltime and self._seen(event):
            self._ready.events.append(MemberEvent(EventKind.USER, user=event))
            self._broadcast(("user", event.ltime, event.name, event.payload), event)

    def merge(self, remote: PushPull, now_ms: int, joined: bool = False) -> None:
        """The other side's state from a push-pull (memberlist's mergeState, serf's
        MergeRemoteState).  The side that was asked merges first and answers with its state
        after (``local_state``): if the asker had it dead, its answer already carries its
        refutation.  ``joined``: this is the answer to our join, whose events are history
        (serf without -replay): they and any older are not delivered here."""
        self.now = max(self.now, now_ms)
        if joined:
            self._event_min_ltime = max(self._event_min_ltime, remote.event_ltime + 1)
        self.ltime = max(self.ltime, remote.event_ltime)
        for event in remote.events:
            self._user_event_in(event)
        for m in remote.members:
            if m.state is ALIVE:
                self._alive(Alive(m.incarnation, m.name, m.addr, m.meta))
            elif m.state is LEFT:
                self._dead(Dead(m.incarnation, m.name, m.name))
            else:  # dead or suspect there: only suspect here, so it may refute
                self._suspect(Suspect(m.incarnation, m.name, "push-pull"))

    def ack_over_tcp(self, seq: int) -> None:
        """The driver's fallback TCP ping got its ack."""
        self._acked(seq)

    def next_deadline_ms(self) -> int:
        """When ``tick`` next has something to do (the driver may sleep until then)."""
        times = [self._next_probe, self._next_gossip, self._next_reap]
        if self.config.push_pull_interval_ms:
            times.append(self._next_push_pull)
        if self.config.reconnect_interval_ms and self.counts[DEAD]:
            times.append(self._next_reconnect)
        probe = self._probe
        if probe is not None:
            times.append(probe.end_ms if probe.indirect_sent else probe.direct_deadline_ms)
        times.extend(r.deadline_ms for r in self._relays.values())
        times.extend(s.deadline_ms() for s in self._suspicions.values())
        return min(times)

    def ready(self) -> Ready:
        out, self._ready = self._ready, Ready()
        return out

    # --- probing ----------------------------------------------------------------------------

    def _scaled(self, ms: int) -> int:
        return ms * (self.awareness + 1)

    def _health(self, delta: int) -> None:
        self.awareness = min(max(self.awareness + delta, 0),
                             self.config.awareness_max_multiplier - 1)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _probe_next(self) -> None:
        for _ in range(len(self.members) + 1):
            if self._probe_index >= len(self._probe_order):
                self._probe_order = [n for n in self.members if n != self.name]
                self.rng.shuffle(self._probe_order)
                self._probe_index = 0
                if not self._probe_order:
                    return
            node = self._probe_order[self._probe_index]
            self._probe_index += 1
            member = self.members.get(node)
            if member is not None and member.state in (ALIVE, SUSPECT):
                break
        else:
            return
        now = self.now
        probe = self._probe = _Probe(self._next_seq(), node, now,
                                     now + self._scaled(self.config.probe_timeout_ms),
                                     now + self._scaled(self.config.probe_interval_ms))
        ping = Ping(probe.seq, node, self.name, self.addr)
        buddy = None
        if member.state is SUSPECT:  # Lifeguard §4.4: tell the suspect first
            buddy = Suspect(member.incarnation, node, self.name)
        self._send(member.addr, ping, buddy)

    def _probe_indirectly(self, probe: _Probe) -> None:
        probe.indirect_sent = True
        target = self.members.get(probe.target)
        if target is None:
            return
        helpers = self._pick(self.config.indirect_checks,
                             lambda m: m.state is ALIVE and m.name != probe.target)
        probe.expected_nacks = len(helpers)
        for helper in helpers:
            self._send(helper.addr, IndirectPing(probe.seq, target.name, target.addr,
                                                 self.name, self.addr, True))
        self._ready.tcp_pings.append((target.addr, Ping(probe.seq, target.name, self.name,
                                                        self.addr)))

    def _acked(self, seq: int) -> None:
        relay = self._relays.pop(seq, None)
        if relay is not None:
            self._send(relay.source_addr, Ack(relay.seq))
            return
        if self._probe is not None and self._probe.seq == seq:
            self._probe = None
            self._health(-1)

    def _probe_failed(self, probe: _Probe) -> None:
        self._probe = None
        # Lifeguard §4.3: helpers that could not reach it either said nack; missing
        # nacks mean our own packets are not getting through.
        if probe.expected_nacks:
            self._health(probe.expected_nacks - probe.nacks)
        member = self.members.get(probe.target)
        if member is not None and member.state in (ALIVE, SUSPECT):
            self._suspect(Suspect(member.incarnation, member.name, self.name))

    # --- membership updates (memberlist state.go: aliveNode, suspectNode, deadNode) ---------

    def _alive(self, m: Alive) -> None:
        if m.node == self.name:
            if m.incarnation > self.incarnation or (m.incarnation == self.incarnation
                                                    and m.meta != self.meta):
                self._refute(m.incarnation)  # someone speaks for us with other news
            return  # else our own news coming back
        cur = self.members.get(m.node)
        if cur is None:
            if len(self.members) >= self.config.max_members:
                self.refused_members += 1  # the table is full: news of strangers waits
                return
            self._set(Member(m.node, m.addr, m.incarnation, ALIVE, m.meta, self.now))
            self._insert_probe_target(m.node)
            self._ready.events.append(MemberEvent(EventKind.JOIN, self.members[m.node]))
            self._broadcast(("node", m.node), m)
            return
        moved = cur.addr != m.addr
        if moved and cur.state in (ALIVE, SUSPECT):
            return  # another member claims a live member's name: ignored (memberlist does)
        if m.incarnation <= cur.incarnation and not moved:
            return  # old news (a restarted member refutes its own death with a newer one)
        self._suspicions.pop(m.node, None)
        was = cur.state
        self._set(replace(cur, addr=m.addr, incarnation=m.incarnation, state=ALIVE,
                          meta=m.meta, since_ms=self.now if was is not ALIVE else cur.since_ms))
        member = self.members[m.node]
        if was in (DEAD, LEFT):
            self._ready.events.append(MemberEvent(EventKind.JOIN, member))
        elif was is SUSPECT:
            self._ready.events.append(MemberEvent(EventKind.ALIVE, member))
        if cur.meta != m.meta:
            self._ready.events.append(MemberEvent(EventKind.UPDATE, member))
        self._broadcast(("node", m.node), m)

    def _suspect(self, s: Suspect) -> None:
        cur = self.members.get(s.node)
        if cur is None or s.incarnation < cur.incarnation:
            return
        if s.node == self.name:
            if not self.leaving:
                self._refute(s.incarnation)
            return
        if cur.state is SUSPECT:
            suspicion = self._suspicions.get(s.node)
            if suspicion is not None and s.source not in suspicion.confirmers:
                suspicion.confirmers.add(s.source)  # an independent confirmation
                self._broadcast(("node", s.node), s)
            return
        if cur.state is not ALIVE:
            return
        n = self.alive_count()
        k = self.config.suspicion_mult - 2
        if n - 2 < k:
            k = 0
        low = self.config.suspicion_timeout_ms(n)
        self._suspicions[s.node] = _Suspicion(self.now, low,
                                              low * self.config.suspicion_max_timeout_mult, k,
                                              {s.source})
        self._set(replace(cur, incarnation=s.incarnation, state=SUSPECT, since_ms=self.now))
        self._ready.events.append(MemberEvent(EventKind.SUSPECT, self.members[s.node]))
        self._broadcast(("node", s.node), s)

    def _dead(self, d: Dead) -> None:
        cur = self.members.get(d.node)
        left = d.source == d.node
        if cur is None or d.incarnation < cur.incarnation or cur.state is LEFT:
            return
        if cur.state is DEAD and not left:
            return  # a member declared failed that turns out to have left is left (serf)
        if d.node == self.name and not self.leaving:
            self._refute(d.incarnation)
            return
        self._suspicions.pop(d.node, None)
        self._set(replace(cur, incarnation=d.incarnation, state=LEFT if left else DEAD,
                          since_ms=self.now))
        self._ready.events.append(MemberEvent(EventKind.LEAVE if left else EventKind.FAILED,
                                              self.members[d.node]))
        self._broadcast(("node", d.node), d)

    def _refute(self, incarnation: int) -> None:
        """SWIM §4.2: a newer incarnation of ourselves, alive; Lifeguard §4.3: being
        suspected hints that we are the slow one."""
        self.incarnation = max(self.incarnation, incarnation) + 1
        self._health(1)
        alive = Alive(self.incarnation, self.name, self.addr, self.meta)
        self._set(replace(self.members[self.name], incarnation=self.incarnation, state=ALIVE))
        self._broadcast(("node", self.name), alive)

    def _set(self, member: Member) -> None:
        old = self.members.get(member.name)
        if old is None:
            self._names.append(member.name)
        else:
            self.counts[old.state] -= 1
        self.counts[member.state] += 1
        self.members[member.name] = member

    def _insert_probe_target(self, node: str) -> None:
        """A new member goes in at a random place in the probe order (memberlist)."""
        at = self.rng.randint(self._probe_index, len(self._probe_order))
        self._probe_order.insert(at, node)

    def _seen(self, event: UserEvent) -> bool:
        if event in self._seen_events:
            return False
        self._seen_events[event] = None
        if len(self._seen_events) > self.config.user_event_buffer:
            self._seen_events.popitem(last=False)
        return True

    # --- dissemination ----------------------------------------------------------------------

    def _broadcast(self, key: tuple[object, ...], message: Message) -> None:
        tier = self._tier_of.pop(key, None)
        if tier is not None:
            del self._tiers[tier][key]
        self._tiers[0][key] = _Broadcast(key, message, message_size(message))
        self._tier_of[key] = 0

    def _piggyback(self, room: int) -> list[Message]:
        """Queued updates that fit in ``room`` bytes, least sent first; each counts one
        transmission and leaves the queue at the retransmit limit."""
        if not self._tier_of:
            return []
        limit = self.config.retransmit_limit(self.alive_count())
        out: list[Message] = []
        picked: list[_Broadcast] = []
        misses = 0  # a full packet: stop looking after a few that do not fit
        for tier in self._tiers:
            for b in reversed(tier.values()):  # newest first among the least sent
                if b.size <= room:
                    room -= b.size
                    picked.append(b)
                else:
                    misses += 1
                if room < MIN_MESSAGE_BYTES or misses > 8:
                    break
            if room < MIN_MESSAGE_BYTES or misses > 8:
                break
        for b in picked:
            del self._tiers[b.transmits][b.key]
            b.transmits += 1
            out.append(b.message)
            if b.transmits >= limit:
                del self._tier_of[b.key]
                continue
            if b.transmits == len(self._tiers):
                self._tiers.append({})
            self._tiers[b.transmits][b.key] = b
            self._tier_of[b.key] = b.transmits
        return out

    def _send(self, addr: Address, message: Message, also: Message | None = None) -> None:
        first = [message] if also is None else [message, also]
        room = self.config.udp_buffer_bytes - COMPOUND_OVERHEAD - sum(map(message_size, first))
        self._ready.packets.append((addr, first + self._piggyback(room)))

    def _gossip_round(self) -> None:
        if not self._tier_of:
            return
        dead_window = self.config.gossip_to_the_dead_ms
        targets = self._pick(self.config.gossip_nodes, lambda m: m.state in (ALIVE, SUSPECT) or (
            m.state is DEAD and self.now - m.since_ms < dead_window))
        for member in targets:
            messages = self._piggyback(self.config.udp_buffer_bytes - COMPOUND_OVERHEAD)
            if messages:
                self._ready.packets.append((member.addr, messages))

    def _pick(self, k: int, keep) -> list[Member]:
        """Up to ``k`` distinct random other members that ``keep`` accepts: random draws
        first (memberlist's kRandomNodes: 3 * N tries at most), cheap when most qualify."""
        names, seen = self._names, {self.name}
        out: list[Member] = []
        for _ in range(min(3 * len(names), 8 * k + 8)):
            if len(out) == k:
                return out
            name = names[self.rng.randrange(len(names))]
            if name not in seen:
                seen.add(name)
                member = self.members[name]
                if keep(member):
                    out.append(member)
        pool = [m for n, m in self.members.items() if n not in seen and keep(m)]
        return out + self.rng.sample(pool, min(k - len(out), len(pool)))
