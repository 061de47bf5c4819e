"""bootstrap_expect's first membership is in the log, so a server added later knows who
votes.  Before, a bootstrapped cluster's voters lived only in each server's memory and
raft-members.json: a server added to it replayed only the changes after, believed the
voters were itself and the servers added with it, and once led that cluster with a
quorum of the wrong servers (found joining lab nodes with tokens)."""

from __future__ import annotations

import random

from nodeagent.raft.core import Config, Raft
from nodeagent.raft.messages import ConfChange, EntryKind, Role


def _cores(*ids: int) -> dict[int, Raft]:
    return {i: Raft(Config(id=i), (), rng=random.Random(i)) for i in ids}


def _run(cores: dict[int, Raft], rounds: int = 200, tick_every: int = 1) -> None:
    """Ticks and message delivery until nothing is left to say (no loss, no delay)."""
    for n in range(rounds):
        for core in cores.values():
            if n % tick_every == 0:
                core.tick()
        moved = True
        while moved:
            moved = False
            for core in cores.values():
                while core.has_ready():
                    rd = core.ready()
                    for m in rd.messages:
                        if m.dst in cores:
                            cores[m.dst].step(m)
                            moved = True
                    core.advance(rd)


def test_bootstrapping_servers_write_the_same_membership_into_their_logs():
    cores = _cores(1, 2, 3)
    for core in cores.values():
        assert core.bootstrap({1, 2, 3}, {1: "h1:7000", 2: "h2:7000", 3: "h3:7000"})
    logs = [[(e.index, e.term, e.kind, e.data) for e in core.log.entries] for core in cores.values()]
    assert logs[0] == logs[1] == logs[2]
    assert [ConfChange.decode(e[3]) for e in logs[0]] == [
        ConfChange("voter", 1, "h1:7000"), ConfChange("voter", 2, "h2:7000"),
        ConfChange("voter", 3, "h3:7000")]
    assert all(c.log.committed == 3 and c.term == 1 and c.voters == {1, 2, 3}
               for c in cores.values())
    assert not cores[1].bootstrap({1, 2, 3})  # once only
    _run(cores)
    assert sum(c.role is Role.LEADER for c in cores.values()) == 1


def test_a_server_added_later_learns_the_first_voters_from_the_log():
    cores = _cores(1, 2)
    cores[1].bootstrap({1})
    _run({1: cores[1]})
    leader = cores[1]
    assert leader.role is Role.LEADER
    assert leader.change_membership(ConfChange("add_learner", 2, "h2:7000"))
    _run(cores)
    joined = cores[2]
    assert joined.learners == {2} and joined.voters == {1}, (joined.voters, joined.learners)
    assert leader.change_membership(ConfChange("promote", 2))
    _run(cores)
    assert joined.voters == {1, 2} and leader.voters == {1, 2}
    # The newcomer cannot elect itself: server 1 is a voter it must hear from.
    del cores[1]
    _run(cores, rounds=100)
    assert joined.role is not Role.LEADER


def test_a_voter_entry_is_never_taken_as_a_proposal():
    cores = _cores(1)
    cores[1].bootstrap({1})
    _run(cores)
    assert not cores[1].propose(ConfChange("voter", 9, "h9:7000").encode(), EntryKind.CONF)
    assert cores[1].voters == {1}
