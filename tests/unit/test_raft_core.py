"""The Raft core, scenario by scenario, with every message delivered by hand.

Each test is a sentence of the Raft paper or thesis (etcd-io/raft names its tests
the same way); the network below is a list of messages the test routes, drops or
holds, and servers persist instantly (Ready handled at once).
"""

from __future__ import annotations

import random
from typing import Any

from nodeagent.raft.core import Config, Raft
from nodeagent.raft.log import RaftLog
from nodeagent.raft.messages import Entry, EntryKind, HardState, Message, MessageType, Role

MT = MessageType


class Net:
    def __init__(self, n: int, *, pre_vote: bool = True, check_quorum: bool = True,
                 **config: Any) -> None:
        self.ids = tuple(range(1, n + 1))
        self.servers = {i: Raft(Config(id=i, pre_vote=pre_vote, check_quorum=check_quorum,
                                       **config), self.ids, rng=random.Random(i))
                        for i in self.ids}
        self.wire: list[Message] = []
        self.applied: dict[int, list[bytes]] = {i: [] for i in self.ids}
        self.reads: dict[int, list[tuple[int, bytes]]] = {i: [] for i in self.ids}
        self.down: set[int] = set()

    def __getitem__(self, i: int) -> Raft:
        return self.servers[i]

    def flush(self, *which: int) -> None:
        for i in which or self.ids:
            r = self.servers[i]
            while r.has_ready():
                rd = r.ready()
                self.wire.extend(rd.messages)
                self.applied[i].extend(e.data for e in rd.committed
                                       if e.kind is EntryKind.NORMAL)
                self.reads[i].extend((s.index, s.context) for s in rd.read_states)
                r.advance(rd)

    def deliver(self, *, drop: tuple[int, ...] = (), only: tuple[int, ...] = (),
                rounds: int = 50) -> None:
        """Route messages until none are left (those to/from ``drop`` or to servers that
        are down are lost; with ``only``, messages between other servers are held)."""
        held: list[Message] = []
        for _ in range(rounds):
            self.flush()
            if not self.wire:
                break
            batch, self.wire = self.wire, []
            for m in batch:
                if m.dst in self.down or m.src in self.down or m.dst in drop or m.src in drop:
                    continue
                if only and not (m.src in only and m.dst in only):
                    held.append(m)
                    continue
                self.servers[m.dst].step(m)
        self.wire = held + self.wire

    def restart(self, i: int) -> None:
        """A crash and restart from what it persisted (here: everything it had), keeping
        its state machine."""
        r = self.servers[i]
        log = RaftLog(list(r.log.entries), snapshot_index=r.log.snapshot_index,
                      snapshot_term=r.log.snapshot_term, applied=r.log.applied)
        self.servers[i] = Raft(r.config, self.ids, rng=random.Random(i), log=log,
                               hard_state=HardState(r.term, r.vote, r.log.committed),
                               snapshot=r.snapshot)

    def elect(self, i: int) -> None:
        self.servers[i].campaign()
        self.deliver()
        assert self.servers[i].role is Role.LEADER

    def tick(self, i: int, n: int) -> None:
        for _ in range(n):
            self.servers[i].tick()


def test_a_single_server_elects_itself_and_commits_alone():
    net = Net(1)
    net.tick(1, 30)
    net.flush()
    assert net[1].role is Role.LEADER
    net[1].propose(b"x")
    net.flush()
    assert net.applied[1] == [b"x"]


def test_followers_elect_one_leader_and_replicate_its_entries():
    net = Net(3)
    net.elect(1)
    assert net[2].leader == 1 and net[3].leader == 1 and net[2].term == net[1].term
    for n in range(5):
        net[1].propose(f"w{n}".encode())
    net.deliver()
    assert [net.applied[i] for i in net.ids] == [[b"w0", b"w1", b"w2", b"w3", b"w4"]] * 3


def test_a_vote_goes_only_to_a_candidate_whose_log_is_at_least_as_up_to_date():
    # Raft §5.4.1: server 3 missed an entry, so it cannot win while 1 and 2 have it.
    net = Net(3)
    net.elect(1)
    net[1].propose(b"a")
    net.deliver(drop=(3,))
    net.down.add(1)
    net[3].campaign()
    net.deliver()
    assert net[3].role is not Role.LEADER
    net[2].campaign()
    net.deliver()
    assert net[2].role is Role.LEADER


def test_entries_of_an_earlier_term_are_not_committed_by_counting_replicas():
    """Raft §5.4.2, Figure 8: a leader may not count replicas of an older term's entry;
    it commits it only together with an entry of its own term."""
    net = Net(5, pre_vote=False, check_quorum=False)
    net.elect(1)                                       # S1 leads term 1
    net[1].propose(b"old")
    net.deliver(only=(1, 2))                           # (a) "old" (index 2) reaches S2 only
    net.wire.clear()
    net.down = {1}
    net[5].campaign()                                  # (b) S5 wins term 2 with S3 and S4,
    net.deliver(drop=(1, 2), rounds=2)                 # its own no-op reaching nobody
    assert net[5].role is Role.LEADER
    net.flush()
    net.wire.clear()
    net.down = {5}                                     # (c) S5 down, S1 back: it leads term 3
    net.restart(1)
    for _ in range(3):
        net[1].campaign()
        net.deliver(only=(1, 2, 3), rounds=2)
        if net[1].role is Role.LEADER:
            break
    assert net[1].role is Role.LEADER and net[1].term == 3
    net.flush()
    net.wire.clear()                                   # its no-op (index 3) goes nowhere
    old = net[1].log.entry(2)
    assert old.data == b"old" and old.term == 1
    for follower in (2, 3):                            # "old" alone onto S2 and S3
        net[follower].step(Message(MT.APPEND, 1, follower, 3, log_term=1, index=1,
                                   entries=(old,), commit=net[1].log.committed))
    net.deliver(only=(1, 2, 3), rounds=1)
    assert net[1].progress[3].match >= 2 and net[1].progress[2].match >= 2
    assert net[1].log.committed < 2, "an old-term entry was committed by counting replicas"
    net.deliver(only=(1, 2, 3))                        # (e) with the no-op it commits
    assert net[1].log.committed >= 3


def test_a_server_that_was_cut_off_does_not_depose_a_healthy_leader():
    # Thesis §9.6: with PreVote its campaigns bump no term while it cannot win.
    net = Net(3)
    net.elect(1)
    term = net[1].term
    for _ in range(5):
        net.tick(3, 30)
        net.deliver(drop=(3,))  # its pre-votes go nowhere
    assert net[3].term == term
    net.deliver()  # back on the network
    net.tick(1, 2)
    net.deliver()
    assert net[1].role is Role.LEADER and net[1].term == term and net[3].leader == 1


def test_a_leader_that_cannot_hear_a_quorum_steps_down():
    # Thesis §6.2, CheckQuorum.
    net = Net(3)
    net.elect(1)
    for _ in range(2):
        net.tick(1, net[1].config.election_ticks)
        net.deliver(drop=(2, 3))
    assert net[1].role is Role.FOLLOWER


def test_vote_requests_are_ignored_while_a_leader_was_heard_within_the_timeout():
    # Thesis §4.2.3: a removed or partitioned server cannot disrupt a working cluster.
    net = Net(3, pre_vote=False)
    net.elect(1)
    net[3].campaign()  # a higher term, no pre-vote
    net.deliver(drop=(1,))
    assert net[2].term < net[3].term and net[2].leader == 1


def test_read_index_is_served_after_a_heartbeat_round_confirms_leadership():
    # Thesis §6.4: not before the leader committed an entry of its term, then only once
    # a quorum answered a heartbeat sent after the request.
    net = Net(3)
    net[1].campaign()
    net.deliver(only=(1,))  # pre-votes and votes only
    net.flush()
    net.wire = [m for m in net.wire if m.type in (MT.PRE_VOTE, MT.VOTE)]
    net.deliver()
    net.wire.clear()
    assert net[1].role is Role.LEADER
    net[1].read_index(b"r1")
    net.flush()
    assert net.reads[1] == []  # its no-op is not committed yet
    net[1].ready()
    net[1].bcast_due = True
    net.deliver()
    assert net.reads[1] == [(net[1].log.committed, b"r1")]
    net[2].read_index(b"r2")  # through a follower: forwarded and answered
    net.deliver()
    assert net.reads[2] == [(net[1].log.committed, b"r2")]
    net[1].read_index(b"r3")
    net.deliver(drop=(2, 3))  # no quorum answers: no read
    assert [c for _, c in net.reads[1]] == [b"r1"]


def test_leadership_moves_to_the_target_once_it_has_caught_up():
    # Thesis §3.10.
    net = Net(3)
    net.elect(1)
    net[1].propose(b"before")
    net.deliver(drop=(3,))
    assert net[1].transfer_leadership(3)
    assert not net[1].propose(b"during")  # proposals wait while leadership moves
    net.deliver()
    assert net[3].role is Role.LEADER and net[1].role is Role.FOLLOWER
    assert net[3].log.term(2) is not None and b"before" in net.applied[3]


def test_a_follower_with_conflicting_uncommitted_entries_is_brought_in_line():
    # Raft §5.3: the leader's log wins; the follower drops what conflicts.
    net = Net(3)
    net.elect(1)
    net.down = {2, 3}
    for n in range(3):
        net[1].propose(f"lost{n}".encode())
    net.flush()
    net.wire.clear()
    net.down = {1}
    net.tick(3, 10)  # it, too, stopped hearing the leader a while ago
    net.tick(2, 30)
    net.deliver()
    assert net[2].role is Role.LEADER
    net[2].propose(b"kept")
    net.deliver()
    net.down = set()
    net.tick(2, 2)
    net.deliver()
    assert net.applied[1] == net.applied[2] == [b"kept"]
    assert net[1].log.last_index() == net[2].log.last_index()
    assert all(e.data != b"lost0" for e in net[1].log.entries)


def test_a_follower_behind_the_compacted_log_gets_the_snapshot_in_chunks():
    # Raft §7: InstallSnapshot, here in 4-byte chunks.
    from nodeagent.raft.messages import SnapshotMeta
    net = Net(3, snapshot_chunk_bytes=4)
    net.elect(1)
    for n in range(4):
        net[1].propose(f"s{n}".encode())
    net.deliver(drop=(3,))
    applied = net[1].log.applied
    meta = SnapshotMeta(applied, net[1].log.term(applied) or 0, net.ids)
    net[1].compact(meta, b"the whole state machine")
    assert net[1].log.first_index() == applied + 1
    net.tick(1, 1)
    net.deliver()
    assert net[3].log.snapshot_index == applied and net[3].snapshot is not None
    assert net[3].snapshot[1] == b"the whole state machine"
    net[1].propose(b"after")
    net.deliver()
    assert net.applied[3][-1:] == [b"after"] and net[3].log.committed == net[1].log.committed


def test_a_restarted_server_keeps_its_term_vote_and_log():
    log = RaftLog([Entry(1, 1), Entry(2, 2, data=b"x")])
    r = Raft(Config(id=2), (1, 2, 3), rng=random.Random(0),
             hard_state=HardState(term=2, vote=1, commit=1), log=log)
    assert (r.term, r.vote, r.log.committed, r.log.last_index()) == (2, 1, 1, 2)
    r.step(Message(MT.VOTE, 3, 2, 2, log_term=2, index=5))
    rd = r.ready()
    assert rd.messages[0].reject  # already voted for 1 in term 2


def join(net: Net, node: int) -> None:
    """A new server, started knowing the members but not among them."""
    net.servers[node] = Raft(Config(id=node), net.ids, rng=random.Random(node))
    net.applied[node], net.reads[node] = [], []
    net.ids = (*net.ids, node)


def test_a_new_server_joins_as_a_learner_and_votes_only_once_promoted():
    # Thesis §4.2.1: a new server catches up without counting, so it cannot stall commits.
    from nodeagent.raft.messages import ConfChange
    net = Net(3)
    net.elect(1)
    net[1].propose(b"a")
    net.deliver()
    join(net, 4)
    assert net[1].change_membership(ConfChange("add_learner", 4))
    assert not net[1].change_membership(ConfChange("add_learner", 5))  # one at a time
    net.deliver()
    assert net[1].learners == {4} and net[4].learners == {4}
    assert net.applied[4] == [b"a"]  # it got the log
    net.down = {2, 3}
    net[1].propose(b"b")
    net.deliver()
    assert b"b" not in net.applied[1]  # a learner does not make a quorum
    net.down = set()
    net.tick(1, 1)
    net.deliver()
    assert net[1].caught_up(4)
    assert net[1].change_membership(ConfChange("promote", 4))
    net.deliver()
    assert net[1].voters == {1, 2, 3, 4} and net[4].voters == {1, 2, 3, 4}
    rd_conf = [net[i].ready().conf_state for i in (1, 4)]
    assert rd_conf == [None, None]  # reported once, already advanced
    net.down = {2}
    net[1].propose(b"c")
    net.deliver()
    assert b"c" in net.applied[1] and b"c" in net.applied[4]  # 1, 3, 4 of 4


def test_removing_servers_shrinks_the_quorum_and_a_removed_leader_steps_down():
    from nodeagent.raft.messages import ConfChange
    net = Net(3)
    net.elect(1)
    assert net[1].change_membership(ConfChange("remove", 3))
    net.deliver()
    assert net[1].voters == {1, 2} and 3 not in net[1].progress
    net.down = {3}
    net[1].propose(b"two of two")
    net.deliver()
    assert b"two of two" in net.applied[2]
    assert net[1].change_membership(ConfChange("remove", 1))
    net.deliver()
    assert net[1].role is Role.FOLLOWER and net[2].voters == {2}
    net.tick(2, 30)
    net.flush()
    assert net[2].role is Role.LEADER  # the last member leads itself
    assert not net[2].change_membership(ConfChange("remove", 2))  # never down to none


def test_lease_reads_are_answered_without_a_heartbeat_round_and_need_check_quorum():
    # Thesis §6.4.1: the leader trusts its lease (CheckQuorum's timeout) instead of asking.
    import pytest
    net = Net(3, lease_reads=True)
    net.elect(1)
    net.deliver()
    net[1].read_index(b"fast")
    net.deliver(drop=(2, 3))  # nobody answers, and yet
    assert net.reads[1] == [(net[1].log.committed, b"fast")]
    with pytest.raises(ValueError, match="check_quorum"):
        Config(id=1, lease_reads=True, check_quorum=False)
