"""SWIM with Lifeguard over a seeded network (tests/sim/gossipsim.py), at 10, 100 and 1000
members: joining, detecting a kill, not accusing a member that is only slow, partitions
and healing, leaving, coming back, metadata and user events.  Every test names its seed
in its failure message; GOSSIP_SEEDS=N runs the many-seed test with more seeds."""

from __future__ import annotations

import dataclasses
import os

import pytest
from gossipsim import GossipSim, scenario

from nodeagent.gossip.config import lan, local
from nodeagent.gossip.messages import MemberState

ALIVE, SUSPECT, DEAD, LEFT = (MemberState.ALIVE, MemberState.SUSPECT, MemberState.DEAD,
                              MemberState.LEFT)
SEEDS = int(os.environ.get("GOSSIP_SEEDS", "50"))
SLOW_MS = 1200
SWIM_ONLY = dataclasses.replace(lan(), awareness_max_multiplier=1, suspicion_max_timeout_mult=1)


def joined(n: int, seed: int, **kw) -> GossipSim:
    sim = GossipSim(n, seed, config=kw.pop("config", lan()), **kw)
    sim.join_all()
    took = sim.until(sim.converged, 60_000)
    assert took is not None, f"seed {seed}: {n} members did not converge in 60 s"
    return sim


@pytest.mark.parametrize("n", [10, 100])
def test_members_that_join_at_once_converge_and_a_killed_one_is_declared_dead(n):
    sim = joined(n, seed=n, wire=n == 10)
    sim.kill("m3")
    # Someone probes it within a few intervals, then the suspicion runs its course:
    # 4 * log10(N) probe intervals at least (memberlist's formula), shorter with
    # confirmations than without.
    took = sim.until(lambda: sim.all_see("m3", {DEAD}), 60_000)
    assert took is not None, f"seed {n}: m3 not declared dead everywhere"
    assert took >= sim.config.suspicion_timeout_ms(n), took
    assert not sim.false_failures, f"seed {n}: {sim.false_failures[:5]}"


def test_a_thousand_members_join_at_once_and_converge():
    sim = GossipSim(1000, seed=1000, config=lan())
    sim.join_all(spread_ms=1000)
    took = sim.until(sim.converged, 60_000, step_ms=250)
    assert took is not None, "seed 1000: 1000 members did not converge in 60 s"
    sim.kill("m500")
    took = sim.until(lambda: sim.all_see("m500", {DEAD}), 90_000, step_ms=250)
    assert took is not None, "seed 1000: m500 not declared dead everywhere"
    assert not sim.false_failures


def test_five_percent_loss_is_survived_without_false_failures():
    sim = joined(100, seed=5, loss=0.05)
    sim.false_failures.clear()
    sim.run_for(60_000)
    assert not sim.false_failures, f"seed 5: {sim.false_failures[:5]}"
    sim.kill("m7")
    assert sim.until(lambda: sim.all_see("m7", {DEAD}), 60_000) is not None


def test_lifeguard_cuts_the_false_alarms_around_a_slow_member():
    """A member whose packets wait 1.2 s before it handles them (a backlog in front of a
    busy process), on a network that loses 5%: its probes time out, so it suspects
    healthy members, and the others suspect it.  Lifeguard -- the slow member stretching
    its own timeouts as its probes fail without nacks, suspicions that need independent
    confirmations to run short, the suspect told first -- raises fewer than half the
    false suspicions of plain SWIM (the same code with local health and dynamic
    suspicion off), and no more false failures, on the same seeds."""
    def false_alarms(config) -> tuple[int, int]:
        failures = suspicions = 0
        for seed in range(8):
            sim = GossipSim(20, seed, config=config, loss=0.05)
            sim.nodes["m5"].lag_ms = SLOW_MS
            sim.join_all()
            sim.until(sim.converged, 60_000)
            sim.false_failures.clear()
            sim.false_suspicions = 0
            sim.run_for(120_000)
            failures += len(sim.false_failures)
            suspicions += sim.false_suspicions
        return failures, suspicions
    (lg_failures, lg_suspicions), (swim_failures, swim_suspicions) = \
        false_alarms(lan()), false_alarms(SWIM_ONLY)
    assert swim_suspicions > 0, "the slow member troubles nobody: the test shows nothing"
    assert lg_suspicions * 2 <= swim_suspicions, (lg_suspicions, swim_suspicions)
    assert lg_failures <= swim_failures, (lg_failures, swim_failures)


def test_a_partition_is_seen_from_both_sides_and_heals():
    sim = joined(10, seed=11)
    minority = {"m7", "m8", "m9"}
    sim.split(minority)
    assert sim.until(lambda: all(sim.state_of(a, b) in (DEAD, None) for a in ("m0", "m1")
                                 for b in minority), 60_000) is not None
    assert sim.until(lambda: all(sim.state_of("m8", b) is DEAD for b in ("m0", "m1", "m2")),
                     60_000) is not None
    sim.heal()
    # Gossip to the dead, refutation and push-pull bring everyone back.
    took = sim.until(sim.converged, 90_000)
    assert took is not None, "seed 11: no convergence after healing"


def test_a_member_that_leaves_is_left_everywhere_and_not_failed():
    sim = joined(10, seed=12)
    sim.nodes["m4"].core.leave()
    sim._flush(sim.nodes["m4"])
    sim.until(lambda: sim.nodes["m4"].core.left_broadcast_done(), 5_000)
    sim.kill("m4")  # it stops once its news went out
    sim.killed.discard("m4")  # ... but a failed event about it would be a false one
    assert sim.until(lambda: sim.all_see("m4", {LEFT}), 10_000) is not None
    assert not sim.false_failures and not any(m == "m4" for _, m in sim.failed_seen)


def test_a_restarted_member_refutes_its_death_and_is_alive_everywhere():
    sim = joined(10, seed=13)
    sim.kill("m2")
    assert sim.until(lambda: sim.all_see("m2", {DEAD}), 60_000) is not None
    sim.restart("m2")
    assert sim.until(sim.converged, 30_000) is not None, "seed 13: m2 not alive again"
    assert sim.nodes["m2"].core.incarnation > 0  # it had to outbid its own death


def test_metadata_and_user_events_reach_everyone_once():
    sim = joined(30, seed=14)
    sim.nodes["m3"].core.set_meta(b"role=server")
    sim.nodes["m9"].core.user_event("deploy", b"v2")
    for name in ("m3", "m9"):
        sim._flush(sim.nodes[name])
    assert sim.until(lambda: all(n.core.members["m3"].meta == b"role=server"
                                 for n in sim.live()), 10_000) is not None
    sim.run_for(10_000)
    assert all(sim.user_events[n] == [b"v2"] for n in sim.nodes if n != "m9"), sim.user_events


def test_a_user_event_gossip_missed_comes_with_a_push_pull_and_a_joiner_gets_no_history():
    """The local profile sends an update twice: a member cut off meanwhile misses the
    event.  Push-pulls carry the remembered events (serf's), so it gets it once healed,
    once only; a member that joins after is not handed that history (serf without
    -replay)."""
    sim = joined(4, seed=15, config=local())
    sim.split({"m1"})
    sim.nodes["m2"].core.user_event("deploy", b"v2")
    sim._flush(sim.nodes["m2"])
    sim.run_for(800)  # its retransmissions run out before anyone suspects m1
    assert sim.user_events["m1"] == [] and sim.user_events["m0"] == [b"v2"], \
        f"seed 15: {sim.user_events}"
    sim.heal()
    assert sim.until(lambda: sim.user_events["m1"] == [b"v2"], 40_000) is not None, \
        f"seed 15: m1 never got the event: {sim.user_events}"
    sim.kill("m3")
    assert sim.until(lambda: sim.all_see("m3", {DEAD}), 60_000) is not None
    sim.restart("m3")  # a new process: it knows no event, and must not get the old one
    assert sim.until(sim.converged, 30_000) is not None, "seed 15: m3 not back"
    sim.run_for(40_000)  # a few push-pulls
    assert all(sim.user_events[n] == [b"v2"] for n in ("m0", "m1", "m3")), \
        f"seed 15: {sim.user_events}"


@pytest.mark.parametrize("first", range(0, SEEDS, 25))
def test_many_seeds_kills_and_a_partition(first):
    """Per seed: 12 members, 2% loss; one killed, a partition of two for 20 s; at the end
    the killed one is dead everywhere and every other member alive everywhere."""
    for seed in range(first, min(first + 25, SEEDS)):
        scenario(seed)  # scripts/sim gossip SEED replays one with a trace
