"""The gossip core, stepped by hand: each test is a sentence of SWIM, Lifeguard or
memberlist, with the messages and the clock given by the test (as test_raft_core.py
steps Raft).  No driver, no sockets, no random timing: a seeded rng and explicit now_ms.
"""

from __future__ import annotations

import random
from dataclasses import replace

from nodeagent.gossip.config import GossipConfig
from nodeagent.gossip.core import Gossip
from nodeagent.gossip.messages import (
    Alive,
    Dead,
    EventKind,
    MemberState,
    Message,
    Ping,
    Suspect,
)

# Slow timers, so that only what a test makes happen happens: no probe, gossip round or
# push-pull fires unless the test moves the clock there.
CONFIG = GossipConfig(probe_interval_ms=1000, probe_timeout_ms=500, suspicion_mult=4,
                      suspicion_max_timeout_mult=6, retransmit_mult=3, gossip_interval_ms=200,
                      gossip_nodes=1, push_pull_interval_ms=0, reconnect_interval_ms=0,
                      indirect_checks=2)


def addr(name: str) -> tuple[str, int]:
    return ("10.0.0." + str(ord(name[-1]) - ord("a") + 1), 7946)


def core(name: str = "a", others: tuple[str, ...] = ("b", "c", "d", "e"), *,
         config: GossipConfig = CONFIG, seed: int = 1) -> Gossip:
    """A member that knows ``others`` as alive (told by Alive messages, as gossip would)."""
    g = Gossip(config, name, addr(name), rng=random.Random(seed), now_ms=0)
    for other in others:
        g.step(Alive(1, other, addr(other), b""), 0)
    g.ready()  # the join events and their broadcasts' first packets are not the test's
    return g


def sent(g: Gossip) -> list[tuple[tuple[str, int], list[Message]]]:
    return g.ready().packets


def test_a_suspected_member_refutes_with_a_higher_incarnation():
    """SWIM §4.2: a member that hears it is suspected raises its incarnation and gossips
    that it is alive; Lifeguard §4.3: having to refute raises its own awareness."""
    g = core()
    assert g.incarnation == 0 and g.awareness == 0
    g.step(Suspect(0, "a", "b"), 10)
    assert g.incarnation == 1 and g.awareness == 1
    assert g.members["a"].state is MemberState.ALIVE
    g.tick(CONFIG.gossip_interval_ms)  # a gossip round carries the refutation
    carried = [m for _, msgs in sent(g) for m in msgs if isinstance(m, Alive) and m.node == "a"]
    assert carried and carried[0].incarnation == 1
    # Old news about itself changes nothing; news from the future is refuted past it.
    g.step(Suspect(0, "a", "c"), 20)
    assert g.incarnation == 1
    g.step(Dead(5, "a", "c"), 30)
    assert g.incarnation == 6 and g.members["a"].state is MemberState.ALIVE


def test_a_suspicion_nobody_confirms_lasts_the_maximum():
    """Lifeguard §4.2 (memberlist's suspicion.go): a suspicion starts at the maximum
    timeout; the accuser itself is not a confirmation."""
    g = core()
    g.step(Suspect(1, "b", "c"), 0)
    assert g.members["b"].state is MemberState.SUSPECT
    low = CONFIG.suspicion_timeout_ms(g.alive_count())
    high = low * CONFIG.suspicion_max_timeout_mult
    g.tick(high - 1)
    assert g.members["b"].state is MemberState.SUSPECT
    g.tick(high)
    assert g.members["b"].state is MemberState.DEAD
    assert any(e.kind == EventKind.FAILED and e.member and e.member.name == "b"
               for e in g.ready().events)


def test_each_independent_confirmation_shortens_the_suspicion():
    """Lifeguard §4.2: with k confirmations (suspicion_mult - 2 = 2 here) the timeout is
    the minimum; one confirmation is part of the way; a repeat from the same member is
    not another confirmation."""
    low = CONFIG.suspicion_timeout_ms(5)
    high = low * CONFIG.suspicion_max_timeout_mult

    def state_at(now: int, confirmers: tuple[str, ...]) -> MemberState:
        g = core()  # a fresh member each time: one tick, so no probe of its own confirms
        g.step(Suspect(1, "b", "c"), 0)
        for who in confirmers:
            g.step(Suspect(1, "b", who), 0)
        g.tick(now)
        return g.members["b"].state

    suspect, dead = MemberState.SUSPECT, MemberState.DEAD
    assert state_at(high - 1, ()) is suspect
    assert state_at(low, ("d",)) is suspect and state_at(high - 1, ("d",)) is dead
    assert state_at(low, ("d", "d")) is suspect
    assert state_at(low - 1, ("d", "e")) is suspect and state_at(low, ("d", "e")) is dead


def test_a_ping_to_a_suspect_carries_the_suspicion():
    """Lifeguard §4.4 (the buddy system): the prober tells the suspect it is suspected in
    the same packet as the ping, so the suspect can refute at once."""
    g = core(others=("b",))
    g.step(Suspect(1, "b", "c"), 0)
    g.ready()
    for now in range(0, 3 * CONFIG.probe_interval_ms, 50):  # until the probe goes to b
        g.tick(now)
        packets = [(a, msgs) for a, msgs in sent(g) if any(isinstance(m, Ping) for m in msgs)]
        if packets:
            break
    else:
        raise AssertionError("no probe was sent")
    to, msgs = packets[0]
    assert to == addr("b")
    assert isinstance(msgs[0], Ping) and msgs[0].target == "b"
    assert Suspect(1, "b", "a") in msgs
    # A ping to a member nobody suspects carries no suspicion of it.
    h = core(others=("b",))
    for now in range(0, 3 * CONFIG.probe_interval_ms, 50):
        h.tick(now)
        pings = [msgs for _, msgs in sent(h) if any(isinstance(m, Ping) for m in msgs)]
        if pings:
            assert not any(isinstance(m, Suspect) for m in pings[0])
            break


def test_an_update_is_sent_retransmit_limit_times_and_no_more():
    """memberlist's TransmitLimitedQueue: an update rides on retransmit_mult *
    ceil(log10(N + 1)) packets, then leaves the queue."""
    g = core()
    g.step(Alive(1, "x", ("10.0.0.99", 7946), b""), 0)
    limit = CONFIG.retransmit_limit(g.alive_count())
    assert limit == 3  # 3 * ceil(log10(7))
    carried = 0
    for now in range(0, 40 * CONFIG.gossip_interval_ms, CONFIG.gossip_interval_ms):
        g.tick(now)
        for _, msgs in sent(g):
            carried += sum(1 for m in msgs if isinstance(m, Alive) and m.node == "x")
    assert carried == limit


def test_a_newer_update_about_a_member_replaces_the_queued_one():
    """One queue entry per member: the suspicion replaces the alive news it supersedes,
    and it starts a fresh count of transmissions."""
    g = core()
    g.step(Alive(1, "x", ("10.0.0.99", 7946), b""), 0)
    g.step(Suspect(1, "x", "b"), 0)
    seen: list[Message] = []
    for now in range(0, 40 * CONFIG.gossip_interval_ms, CONFIG.gossip_interval_ms):
        g.tick(now)
        seen += [m for _, msgs in sent(g) for m in msgs if getattr(m, "node", None) == "x"]
    assert seen and all(isinstance(m, Suspect) for m in seen)
    assert len(seen) == CONFIG.retransmit_limit(g.alive_count())


def test_a_lone_prober_that_misses_nacks_grows_less_sure_of_itself():
    """Lifeguard §4.3: helpers asked to ping a silent target answer nack when they cannot
    reach it either; nacks that do not come mean our own packets are lost, and the
    awareness score goes up, stretching our timeouts."""
    config = replace(CONFIG, indirect_checks=2)
    g = core(config=config)
    start = None
    for now in range(0, 3 * config.probe_interval_ms, 10):
        g.tick(now)
        if g._probe is not None:
            start = now
            break
    assert start is not None
    g.tick(start + config.probe_timeout_ms)  # no ack: the indirect pings go out
    g.tick(start + config.probe_interval_ms)  # no ack and no nack by the end
    assert g.awareness == 2  # two helpers, no nack from either
