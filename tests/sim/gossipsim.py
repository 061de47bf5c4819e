"""Many gossip cores in one process over a seeded network: deterministic, replayable.

Time is integer milliseconds on an event queue.  Each member wakes when its core's
next deadline comes (``next_deadline_ms``) or a packet arrives.  The network drops
packets (``loss``), delays them (``delay_ms``, so they reorder), and cuts
partitions; TCP (push-pull and the fallback ping) is reliable but respects kills
and partitions.  A *slow* member (a starved CPU) runs only once every ``slow_ms``:
packets and timers wait for its next turn, and it handles them in arrival order,
as a process that is scheduled rarely does.

What the tests measure comes from the events every member reports: when each
member saw another fail, join, leave; ``false_failures`` counts members declared
failed although they were never killed (a slow member is alive).

After every step the stepped member's state is checked (``_check``): its own
incarnation never goes down while its process lives, the incarnation it holds of each
other member never goes down, and its counts by state match its table.  A broken
invariant raises at the step that broke it, with the seed.  ``scenario(seed)`` is the
many-seed test's run, replayable with a trace: ``scripts/sim gossip SEED``.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from nodeagent.gossip.codec import decode, encode
from nodeagent.gossip.config import GossipConfig, lan, local
from nodeagent.gossip.core import Gossip
from nodeagent.gossip.messages import Address, EventKind, MemberState, PushPull

__all__ = ["GossipSim", "scenario"]


@dataclass
class Node:
    name: str
    addr: Address
    core: Gossip
    alive: bool = True
    slow_ms: int = 0  # runs only at phase + k * slow_ms
    phase: int = 0
    lag_ms: int = 0  # what reaches it waits this long (a backlog in front of a busy process)
    wake_at: int = -1  # the timer event queued for it (older ones are stale)
    seen_incarnations: dict[str, int] = field(default_factory=dict)  # for the invariants

    def turn(self, at: int) -> int:
        """When a slow member gets to what arrived at ``at``."""
        if not self.slow_ms:
            return at
        return at + (self.phase - at) % self.slow_ms


@dataclass
class GossipSim:
    n: int
    seed: int
    config: GossipConfig = field(default_factory=local)
    loss: float = 0.0
    delay_ms: tuple[int, int] = (1, 5)
    wire: bool = False  # encode and decode every packet (slower; exercises the codec)
    trace: bool = False  # print every member event as it happens

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.now = 0
        self.queue: list[tuple[int, int, str, tuple]] = []
        self.counter = 0
        self.nodes: dict[str, Node] = {}
        self.by_addr: dict[Address, Node] = {}
        self.partition: dict[str, int] = {}  # name -> side; absent: side 0
        self.failed_seen: dict[tuple[str, str], int] = {}  # (observer, member) -> when
        self.joined_seen: dict[tuple[str, str], int] = {}
        self.left_seen: dict[tuple[str, str], int] = {}
        self.killed: set[str] = set()
        self.false_failures: list[tuple[int, str, str]] = []  # (when, observer, member)
        self.false_suspicions = 0  # suspect events about members never killed
        self.user_events: dict[str, list[bytes]] = {}
        self.packets = 0
        for i in range(self.n):
            self.add(f"m{i}")

    # --- building ---------------------------------------------------------------------------

    def add(self, name: str, slow_ms: int = 0) -> Node:
        addr = (f"10.0.{len(self.nodes) // 250}.{len(self.nodes) % 250 + 1}", 7946)
        core = Gossip(self.config, name, addr, rng=random.Random(self.rng.random()),
                      now_ms=self.now)
        node = Node(name, addr, core)
        self.slow(node, slow_ms)
        self.nodes[name] = node
        self.by_addr[addr] = node
        self.user_events[name] = []
        self._schedule_wake(node)
        return node

    def slow(self, node: Node, slow_ms: int) -> None:
        node.slow_ms, node.phase = slow_ms, self.rng.randrange(max(1, slow_ms))

    def join_all(self, seed: str = "m0", spread_ms: int = 0) -> None:
        """Every member joins through ``seed`` (at once, or spread over ``spread_ms``)."""
        for node in self.nodes.values():
            if node.name != seed:
                at = self.now + (self.rng.randrange(spread_ms) if spread_ms else 0)
                self._push(node.turn(at), "join", (node.name, self.nodes[seed].addr))

    # --- faults ---------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        self.nodes[name].alive = False
        self.killed.add(name)

    def restart(self, name: str) -> None:
        """A killed member comes back with an empty state (a new process) and rejoins."""
        old = self.nodes[name]
        core = Gossip(self.config, name, old.addr, rng=random.Random(self.rng.random()),
                      now_ms=self.now)
        old.core, old.alive = core, True
        old.seen_incarnations = {}  # a new process: its own count starts again
        self.killed.discard(name)
        self._schedule_wake(old)
        seed = next(n for n in self.nodes.values() if n.alive and n.name != name)
        self._push(self.now, "join", (name, seed.addr))

    def split(self, names: set[str]) -> None:
        self.partition = {n: 1 for n in names}

    def heal(self) -> None:
        self.partition = {}

    def reachable(self, a: Node, b: Node) -> bool:
        return a.alive and b.alive and self.partition.get(a.name, 0) == \
            self.partition.get(b.name, 0)

    # --- running ----------------------------------------------------------------------------

    def run_until(self, t_ms: int) -> None:
        while self.queue and self.queue[0][0] <= t_ms:
            at, _, kind, data = heapq.heappop(self.queue)
            self.now = at
            self._handle(kind, data)
        self.now = max(self.now, t_ms)

    def run_for(self, ms: int) -> None:
        self.run_until(self.now + ms)

    def until(self, check, limit_ms: int, step_ms: int = 50) -> int | None:
        """Run until ``check()``; returns the time it took, or None past ``limit_ms``."""
        start = self.now
        while self.now - start <= limit_ms:
            if check():
                return self.now - start
            self.run_for(step_ms)
        return None

    def _push(self, at: int, kind: str, data: tuple) -> None:
        self.counter += 1
        heapq.heappush(self.queue, (at, self.counter, kind, data))

    def _schedule_wake(self, node: Node) -> None:
        at = node.turn(max(node.core.next_deadline_ms(), self.now + 1))
        if node.wake_at == at:
            return
        node.wake_at = at
        self._push(at, "wake", (node.name, at))

    def _handle(self, kind: str, data: tuple) -> None:
        if kind == "wake":
            node = self.nodes[data[0]]
            if node.wake_at != data[1] or not node.alive:
                return
            node.core.tick(self.now)
        elif kind == "packet":
            node = self.nodes[data[0]]
            if not node.alive:
                return
            messages = data[1]
            if self.wire:
                messages = decode(encode(messages))
            for m in messages:
                node.core.step(m, self.now)
        elif kind == "join":
            node = self.nodes[data[0]]
            if node.alive:
                node.core.join([data[1]])
        elif kind == "merge":
            node = self.nodes[data[0]]
            if not node.alive:
                return
            node.core.merge(data[1], self.now, joined=data[2])
        elif kind == "exchange":  # the asked side merges, then answers with its state
            node, asker = self.nodes[data[0]], self.nodes[data[2]]
            if not node.alive:
                return
            node.core.merge(data[1], self.now)
            reply: PushPull = node.core.local_state()
            if self.reachable(node, asker):
                self._push(self._arrival(asker), "merge", (asker.name, reply, data[1].join))
        elif kind == "tcp_ack":
            node = self.nodes[data[0]]
            if node.alive:
                node.core.ack_over_tcp(data[1])
        self._flush(node)

    def _arrival(self, dst: Node, extra: int = 0) -> int:
        """When ``dst`` handles something sent now (after ``extra`` ms more)."""
        return dst.turn(self.now + extra + self.rng.randint(*self.delay_ms) + dst.lag_ms)

    def _flush(self, node: Node) -> None:
        if not node.alive:
            return
        rd = node.core.ready()
        for addr, messages in rd.packets:
            self.packets += 1
            dst = self.by_addr.get(addr)
            if dst is None or not self.reachable(node, dst) or self.rng.random() < self.loss:
                continue
            self._push(self._arrival(dst), "packet", (dst.name, messages))
        for addr, ping in rd.tcp_pings:
            dst = self.by_addr.get(addr)
            if dst is not None and self.reachable(node, dst) and dst.core.name == ping.target:
                there = self._arrival(dst) - self.now
                self._push(self._arrival(node, there), "tcp_ack", (node.name, ping.seq))
        for addr, state in rd.push_pulls:
            dst = self.by_addr.get(addr)
            if dst is None or not self.reachable(node, dst):
                if state.join:  # the driver retries a join until it gets through
                    self._push(node.turn(self.now + 1000), "join", (node.name, addr))
                continue
            self._push(self._arrival(dst), "exchange", (dst.name, state, node.name))
        for ev in rd.events:
            if self.trace:
                about = ev.member.name if ev.member else ev.user
                print(f"{self.now:8d} ms  {node.name}: {ev.kind} {about}")
            if ev.kind is EventKind.USER and ev.user is not None:
                self.user_events[node.name].append(ev.user.payload)
                continue
            assert ev.member is not None
            key = (node.name, ev.member.name)
            if ev.kind is EventKind.FAILED:
                self.failed_seen.setdefault(key, self.now)
                if ev.member.name not in self.killed:
                    self.false_failures.append((self.now, node.name, ev.member.name))
            elif ev.kind is EventKind.SUSPECT and ev.member.name not in self.killed:
                self.false_suspicions += 1
            elif ev.kind is EventKind.JOIN:
                self.joined_seen[key] = self.now
                self.failed_seen.pop(key, None)
            elif ev.kind is EventKind.LEAVE:
                self.left_seen.setdefault(key, self.now)
        self._check(node)
        self._schedule_wake(node)

    def _check(self, node: Node) -> None:
        """The invariants of one member's state, after each of its steps.  The whole table
        is read in simulations of up to 100 members (O(N) a step); larger ones check the
        member's own incarnation only."""
        core, seen = node.core, node.seen_incarnations
        where = f"seed {self.seed}, {self.now} ms, {node.name}"
        assert core.incarnation >= seen.get(node.name, 0), \
            f"{where}: own incarnation went down to {core.incarnation}"
        seen[node.name] = core.incarnation
        if len(self.nodes) > 100:
            return
        states: dict[MemberState, int] = {}
        for name, m in core.members.items():
            states[m.state] = states.get(m.state, 0) + 1
            assert m.incarnation >= seen.get(name, 0), \
                f"{where}: incarnation of {name} went down to {m.incarnation}"
            seen[name] = m.incarnation
        assert all(core.counts[st] == states.get(st, 0) for st in MemberState), \
            f"{where}: counts {dict(core.counts)} but the table holds {states}"

    # --- views ------------------------------------------------------------------------------

    def live(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.alive]

    def state_of(self, observer: str, member: str) -> MemberState | None:
        m = self.nodes[observer].core.members.get(member)
        return None if m is None else m.state

    def converged(self) -> bool:
        """Every live member sees every live member alive (counted first: cheap)."""
        live = self.live()
        if not all(n.core.counts[MemberState.ALIVE] == len(live) for n in live):
            return False
        return all(self.state_of(a.name, b.name) is MemberState.ALIVE
                   for a in live for b in live)

    def all_see(self, member: str, states: set[MemberState]) -> bool:
        return all(self.state_of(n.name, member) in states for n in self.live()
                   if n.name != member)


def scenario(seed: int, trace: bool = False) -> GossipSim:
    """The many-seed test's run: 12 members join (2% loss), one is killed, two others are
    cut off for 20 s; at the end the killed one is dead everywhere and the rest alive
    everywhere.  AssertionError (naming the seed) if not."""
    sim = GossipSim(12, seed, config=lan(), loss=0.02, trace=trace)
    sim.join_all()
    assert sim.until(sim.converged, 60_000) is not None, f"seed {seed}: did not converge"
    victim, cut = f"m{seed % 12}", {f"m{(seed + 1) % 12}", f"m{(seed + 2) % 12}"}
    if trace:
        print(f"{sim.now:8d} ms  converged; killing {victim}")
    sim.kill(victim)
    sim.run_for(5_000)
    if trace:
        print(f"{sim.now:8d} ms  cutting off {sorted(cut)}")
    sim.split(cut)
    sim.run_for(20_000)
    if trace:
        print(f"{sim.now:8d} ms  healing")
    sim.heal()
    ok = sim.until(lambda: sim.all_see(victim, {MemberState.DEAD}) and sim.converged(), 120_000)
    assert ok is not None, f"seed {seed}: did not settle (victim {victim}, cut {cut})"
    return sim


if __name__ == "__main__":
    import sys
    scenario(int(sys.argv[1]), trace=True)
    print("ok")
