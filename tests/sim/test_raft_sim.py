"""Raft under a seeded, hostile network and crashes (tests/sim/raftsim.py): the paper's
safety properties after every event, and liveness once the faults stop.  A failure
names its seed; ``scripts/sim SEED [N]`` replays it with a trace, and
``scripts/sim soak COUNT`` runs seeds past the ones CI runs."""

from __future__ import annotations

import os

import pytest
from raftsim import Cluster, Faults, scenario

SEEDS = int(os.environ.get("RAFT_SEEDS", "500"))
CHUNK = 50


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK))
def test_three_servers_stay_safe_and_recover(first):
    for seed in range(first, min(first + CHUNK, SEEDS)):
        scenario(seed, 3)


@pytest.mark.parametrize("first", range(0, SEEDS // 5, CHUNK))
def test_five_servers_stay_safe_and_recover(first):
    for seed in range(first, min(first + CHUNK, SEEDS // 5)):
        scenario(100_000 + seed, 5)


@pytest.mark.parametrize("first", range(0, SEEDS // 5, CHUNK))
def test_membership_changes_one_server_at_a_time_under_faults(first):
    """5 servers, 3 members at first; servers added as learners, promoted when caught up,
    and removed (leaders too), every ~400 ms, during the crashes and partitions."""
    for seed in range(first, min(first + CHUNK, SEEDS // 5)):
        scenario(200_000 + seed, 5, membership=True)


def test_a_calm_cluster_elects_one_leader_and_commits_every_proposal():
    c = Cluster(3, seed=7, faults=Faults(drop=0, duplicate=0, crash_every_ms=0,
                                         partition_every_ms=0))
    c.run(2000)
    leader = c.leader()
    assert leader is not None and len(c.leaders) == 1, c.leaders  # one election, no churn
    c.run(2500, clients=False)
    assert c.proposed and set(c.proposed) <= c.acked  # nothing lost without faults
