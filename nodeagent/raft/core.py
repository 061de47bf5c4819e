"""The Raft consensus core: a pure state machine, no clock, socket, file or global random.

Theory of operation (Raft paper, Ongaro's thesis, etcd-io/raft's ``raft.go``): the
driver calls ``tick()`` at a fixed rate, ``step(msg)`` for each message received,
``propose(data)`` and ``read_index(ctx)`` for clients; then, whenever
``has_ready()``, takes ``ready()`` and does what it says in its order -- persist
the hard state and the entries (fsync), install a snapshot, send the messages,
apply the committed entries, answer the reads -- and calls ``advance(ready)``.
A message is only ever sent after what it depends on was persisted, so a crash
at any point loses nothing the cluster relied on.

- Elections: randomized timeouts in [election, 2 x election) ticks; PreVote (thesis
  §9.6) so a server that was cut off does not bump terms and depose a healthy
  leader when it returns; CheckQuorum (§6.2) so a leader that cannot hear a quorum
  steps down, and servers that heard a leader within the election timeout ignore
  vote requests (§4.2.3).
- Replication: a follower is probed, then pipelined to (progress.py); proposals made
  between two ready() calls go out in one append per follower.
- Commit: only an entry of the current term is committed by counting (§5.4.2); a new
  leader appends a no-op so earlier entries commit with it.
- Reads: ReadIndex (§6.4): the leader's commit index, confirmed by a heartbeat round
  to a quorum, after it committed an entry of its own term.
- Leadership transfer (§3.10): catch the target up, then TimeoutNow.
- Snapshots: the application compacts with ``compact(meta, data)``; followers behind
  the first entry get it in chunks (InstallSnapshot, §7).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from nodeagent.raft.log import RaftLog
from nodeagent.raft.messages import (
    ConfChange,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Role,
    SnapshotMeta,
    SoftState,
)
from nodeagent.raft.progress import Progress, State

__all__ = ["Config", "Raft"]

MT = MessageType
TRANSFER = b"transfer"  # context of a vote asked for by a leadership transfer


@dataclass(frozen=True, kw_only=True)
class Config:
    id: int
    """This server's id, not 0 (0 means "none" in votes and leader fields)."""
    election_ticks: int = 10
    """Ticks without hearing a leader before a follower campaigns (randomized up to
    twice this).  Trade-off: shorter fails over faster and risks needless elections."""
    heartbeat_ticks: int = 1
    """Ticks between a leader's heartbeats; well below election_ticks."""
    pre_vote: bool = True
    """Ask before campaigning (thesis §9.6)."""
    check_quorum: bool = True
    """A leader that did not hear a quorum for election_ticks steps down (thesis §6.2)."""
    max_inflight: int = 64
    """Unanswered appends per follower when replicating: the pipeline's depth."""
    max_append_bytes: int = 1 << 20
    """Entry data per append message (at least one entry is always sent)."""
    max_apply_entries: int = 4096
    """Committed entries handed out per ready()."""
    max_entry_bytes: int = 4 << 20
    """Largest entry data a leader appends; a larger proposal from a peer is dropped (the
    driver refuses one from its own client first).  One entry plus max_append_bytes is
    the largest append message, which must stay under the transport's frame cap, or the
    entry could never reach a follower."""
    snapshot_chunk_bytes: int = 1 << 20
    """InstallSnapshot chunk size."""
    lease_reads: bool = False
    """Answer reads from the leader's commit index without a heartbeat round (thesis
    §6.4.1): one round trip less, but safe only while clocks run at about the same rate
    (the leader's lease is CheckQuorum's election timeout).  Needs check_quorum."""

    def __post_init__(self) -> None:
        if self.id <= 0:
            raise ValueError("id must be a positive integer")
        if self.heartbeat_ticks <= 0 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks > 0")
        if self.lease_reads and not self.check_quorum:
            raise ValueError("lease_reads needs check_quorum (the lease is its timeout)")
        if self.max_entry_bytes <= 0:
            raise ValueError("max_entry_bytes must be positive")


@dataclass
class _Read:
    context: bytes
    index: int
    requester: int  # the server whose client asked
    acks: set[int]


class Raft:
    def __init__(self, config: Config, voters: tuple[int, ...], *, learners: tuple[int, ...] = (),
                 rng: random.Random, hard_state: HardState = HardState(),
                 log: RaftLog | None = None,
                 snapshot: tuple[SnapshotMeta, bytes] | None = None) -> None:
        self.config, self.id, self.rng = config, config.id, rng
        self.voters, self.learners = set(voters), set(learners)
        self.log = log if log is not None else RaftLog()
        self.term, self.vote = hard_state.term, hard_state.vote
        self.log.commit_to(hard_state.commit)
        self.role, self.leader = Role.FOLLOWER, 0
        self.snapshot = snapshot  # the latest, for followers that need it
        self.election_elapsed = self.heartbeat_elapsed = 0
        self.timeout = self._random_timeout()
        self.votes: dict[int, bool] = {}
        self.progress: dict[int, Progress] = {}
        self.transferee = 0
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.reads: list[_Read] = []  # leader: waiting for a quorum's heartbeat answers
        self.waiting_reads: list[_Read] = []  # leader: until it commits in its term
        self.dropped: list[bytes] = []  # proposals' data and reads' contexts not taken
        self.incoming: tuple[SnapshotMeta, bytearray] | None = None
        self.snapshot_to_apply: tuple[SnapshotMeta, bytes] | None = None
        self.bcast_due = False
        self.read_round_due = False  # leader: reads wait for a heartbeat round (ready())
        self.pending_conf_index = 0  # leader: a membership change not yet applied
        self._prev_conf = self._conf()
        self._prev_soft = SoftState(0, Role.FOLLOWER)
        self._prev_hard = HardState(self.term, self.vote, self.log.committed)

    # --- public API -----------------------------------------------------------------------

    def tick(self) -> None:
        if self.role is Role.LEADER:
            self._tick_leader()
            return
        self.election_elapsed += 1
        if self.id in self.voters and self.election_elapsed >= self.timeout:
            self.election_elapsed = 0
            self.campaign()

    def campaign(self, transfer: bool = False) -> None:
        """Start an election (a pre-vote first, unless a leadership transfer asks)."""
        if self.id not in self.voters or self.role is Role.LEADER:
            return
        if self.config.pre_vote and not transfer:
            self._become_pre_candidate()
            self._ask(MT.PRE_VOTE, self.term + 1, b"")
        else:
            self._become_candidate()
            self._ask(MT.VOTE, self.term, TRANSFER if transfer else b"")

    def _ask(self, kind: MessageType, term: int, context: bytes) -> None:
        if self._tally() is True:  # a cluster of one
            self._won(kind)
            return
        for peer in sorted(self.voters - {self.id}):
            self._send(Message(kind, self.id, peer, term, log_term=self.log.last_term(),
                               index=self.log.last_index(), context=context))

    def propose(self, data: bytes, kind: EntryKind = EntryKind.NORMAL) -> bool:
        """Append a command (leader) or forward it to the leader; False if it was dropped
        (no leader known, or a leadership transfer is under way): the client retries.
        Raises ValueError for data over ``max_entry_bytes``."""
        if len(data) > self.config.max_entry_bytes:
            raise ValueError(f"entry of {len(data)} bytes is over max_entry_bytes")
        if self.role is Role.LEADER:
            if self.transferee or (kind is EntryKind.CONF and not self._conf_allowed(data)):
                self.dropped.append(data)
                return False
            self._append(kind, data)
            return True
        if self.leader and self.role is Role.FOLLOWER:
            self._send(Message(MT.PROPOSE, self.id, self.leader, self.term,
                               entries=(Entry(0, 0, kind, data),)))
            return True
        self.dropped.append(data)
        return False

    def change_membership(self, change: ConfChange) -> bool:
        """Propose one membership change; False if dropped (not leader, another change is
        still being applied, or it makes no sense for the current membership)."""
        return self.propose(change.encode(), EntryKind.CONF)

    def bootstrap(self, voters: set[int], addresses: dict[int, str] | None = None) -> bool:
        """Take the first membership of a server started without one (bootstrap_expect):
        every bootstrapping server found the same set, so they all start alike and an
        election can follow.  False if this server has a membership or a log already, or
        is not in ``voters``.

        As etcd's Bootstrap, the membership is written into the log too: one ``voter``
        entry per server at term 1, the same on every bootstrapping server (so their logs
        match) and committed from the start.  A server added later replays them and knows
        who votes; without them it learned only the changes after the bootstrap, and
        counted a quorum of the wrong servers."""
        if self.voters or self.learners or self.id not in voters or self.log.last_index():
            return False
        addresses = addresses or {}
        self.log.append([Entry(1, i, EntryKind.CONF,
                               ConfChange("voter", v, addresses.get(v, "")).encode())
                         for i, v in enumerate(sorted(voters), 1)])
        self.log.commit_to(len(voters))
        if self.term < 1:
            self.term, self.vote = 1, 0
        self.voters = set(voters)
        return True

    def caught_up(self, node: int) -> bool:
        """Leader: ``node`` holds everything committed (a learner may be promoted)."""
        pr = self.progress.get(node)
        return self.role is Role.LEADER and pr is not None and pr.match >= self.log.committed

    def read_index(self, context: bytes) -> bool:
        """Ask for a linearizable read; a ReadState with ``context`` comes out of ready()
        once the reader may serve it (after applying up to its index).  False: dropped."""
        if self.role is Role.LEADER:
            self._read_request(context, self.id)
            return True
        if self.leader and self.role is Role.FOLLOWER:
            self._send(Message(MT.READ_INDEX, self.id, self.leader, self.term, context=context))
            return True
        return False

    def transfer_leadership(self, to: int) -> bool:
        """Hand leadership to ``to`` (thesis §3.10); False if not possible from here."""
        if self.role is not Role.LEADER or to not in self.voters or to == self.id:
            return False
        self.transferee = to
        self.election_elapsed = 0  # the transfer gives up after one election timeout
        pr = self.progress[to]
        if pr.match == self.log.last_index():
            self._send(Message(MT.TIMEOUT_NOW, self.id, to, self.term))
        else:
            self._send_append(to)
        return True

    def compact(self, meta: SnapshotMeta, data: bytes) -> None:
        """The application took a snapshot at ``meta.index`` (applied): keep it to send to
        followers that fall behind, and forget the log up to it."""
        self.snapshot = (meta, data)
        self.log.compact(meta.index)

    # --- the Ready cycle --------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(self.msgs or self.bcast_due or self.read_states or self.dropped
                    or self.read_round_due or self.snapshot_to_apply
                    or self.log.stable < self.log.last_index()
                    or self.log.committed > self.log.applied
                    or self._soft() != self._prev_soft or self._hard() != self._prev_hard
                    or self._conf() != self._prev_conf)

    def ready(self) -> Ready:
        if self.bcast_due:
            self.bcast_due = False
            self._broadcast_append()
        if self.read_round_due:
            # One heartbeat round for every read asked since the last Ready: the answer
            # to the newest confirms all before it (_read_acked).
            self.read_round_due = False
            if self.reads:
                self._broadcast_heartbeat(self.reads[-1].context)
        soft, hard, conf = self._soft(), self._hard(), self._conf()
        return Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != self._prev_hard else None,
            conf_state=conf if conf != self._prev_conf else None,
            entries=self.log.unstable(),
            snapshot=self.snapshot_to_apply,
            messages=list(self.msgs),
            committed=self.log.committed_unapplied(self.config.max_apply_entries),
            read_states=list(self.read_states),
            dropped=list(self.dropped))

    def advance(self, rd: Ready) -> None:
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.conf_state is not None:
            self._prev_conf = rd.conf_state
        if rd.snapshot is not None and self.snapshot_to_apply is rd.snapshot:
            self.snapshot_to_apply = None
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        if rd.committed:
            self.log.applied_to(rd.committed[-1].index)
            for e in rd.committed:
                if e.kind is EntryKind.CONF:
                    self._apply_conf(e)
        del self.msgs[:len(rd.messages)]
        del self.read_states[:len(rd.read_states)]
        del self.dropped[:len(rd.dropped)]
        if self.role is Role.LEADER and rd.entries:
            # Our own entries count towards a commit only once they are on our disk.
            self.progress[self.id].maybe_update(self.log.stable)
            if self._maybe_commit():
                self.bcast_due = True

    # --- messages in ------------------------------------------------------------------------

    def step(self, m: Message) -> None:
        if m.term > self.term:
            if m.type in (MT.VOTE, MT.PRE_VOTE):
                forced = m.context == TRANSFER
                in_lease = (self.config.check_quorum and self.leader != 0
                            and self.election_elapsed < self.config.election_ticks)
                if in_lease and not forced:
                    return  # thesis §4.2.3: we heard a leader; do not let it be disrupted
            if m.type is MT.PRE_VOTE or (m.type is MT.PRE_VOTE_RESP and not m.reject):
                pass  # asking (or being told yes) moves no term
            elif m.type in (MT.APPEND, MT.HEARTBEAT, MT.SNAPSHOT):
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, 0)
        elif m.term < self.term:
            if m.type in (MT.APPEND, MT.HEARTBEAT) and (self.config.check_quorum
                                                        or self.config.pre_vote):
                # A leader from an older term, cut off from us for a while: tell it the
                # term so it steps down (with PreVote nobody else would).
                self._send(Message(MT.APPEND_RESP, self.id, m.src, self.term))
            elif m.type is MT.PRE_VOTE:
                self._send(Message(MT.PRE_VOTE_RESP, self.id, m.src, self.term, reject=True))
            return
        if m.type in (MT.VOTE, MT.PRE_VOTE):
            self._handle_vote(m)
        elif self.role is Role.LEADER:
            self._step_leader(m)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(m)
        else:
            self._step_follower(m)

    def _handle_vote(self, m: Message) -> None:
        pre = m.type is MT.PRE_VOTE
        can_vote = (self.vote == m.src or (self.vote == 0 and self.leader == 0)
                    or (pre and m.term > self.term))
        resp = MT.PRE_VOTE_RESP if pre else MT.VOTE_RESP
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            # A pre-vote is answered in the term asked about, so the asker counts it.
            self._send(Message(resp, self.id, m.src, m.term if pre else self.term))
            if not pre:
                self.election_elapsed = 0
                self.vote = m.src
        else:
            self._send(Message(resp, self.id, m.src, self.term, reject=True))

    def _step_follower(self, m: Message) -> None:
        if m.type is MT.APPEND:
            self.election_elapsed, self.leader = 0, m.src
            self._handle_append(m)
        elif m.type is MT.HEARTBEAT:
            self.election_elapsed, self.leader = 0, m.src
            self.log.commit_to(m.commit)
            self._send(Message(MT.HEARTBEAT_RESP, self.id, m.src, self.term, context=m.context))
        elif m.type is MT.SNAPSHOT:
            self.election_elapsed, self.leader = 0, m.src
            self._handle_snapshot(m)
        elif m.type is MT.TIMEOUT_NOW:
            self.campaign(transfer=True)
        elif m.type is MT.PROPOSE:
            if self.leader:
                self._send(Message(MT.PROPOSE, self.id, self.leader, self.term, entries=m.entries))
        elif m.type is MT.READ_INDEX:
            if self.leader:
                self._send(Message(MT.READ_INDEX, m.src, self.leader, self.term, context=m.context))
        elif m.type is MT.READ_INDEX_RESP:
            self.read_states.append(ReadState(m.index, m.context))

    def _step_candidate(self, m: Message) -> None:
        if m.type in (MT.APPEND, MT.HEARTBEAT, MT.SNAPSHOT):
            self._become_follower(self.term, m.src)  # someone won this term
            self._step_follower(m)
        elif (m.type is MT.PRE_VOTE_RESP and self.role is Role.PRE_CANDIDATE) or \
                (m.type is MT.VOTE_RESP and self.role is Role.CANDIDATE):
            if m.src in self.voters:
                self.votes.setdefault(m.src, not m.reject)
            result = self._tally()
            if result is True:
                self._won(MT.PRE_VOTE if m.type is MT.PRE_VOTE_RESP else MT.VOTE)
            elif result is False:
                self._become_follower(self.term, 0)
        # A proposal forwarded to us while we campaign is dropped: its sender retries.

    def _step_leader(self, m: Message) -> None:
        pr = self.progress.get(m.src)
        if m.type is MT.PROPOSE:
            if self.transferee:
                return
            if m.src not in self.progress:
                return  # only members forward proposals
            for e in m.entries:
                if len(e.data) > self.config.max_entry_bytes:
                    continue
                if e.kind is not EntryKind.CONF or self._conf_allowed(e.data):
                    self._append(e.kind, e.data)
            return
        if m.type is MT.READ_INDEX:
            self._read_request(m.context, m.src)
            return
        if pr is None:
            return
        pr.recent_active = True
        if m.type is MT.APPEND_RESP:
            if m.reject:
                if pr.maybe_decrease(m.index, m.hint):
                    if pr.state is State.REPLICATE:
                        pr.become_probe()
                    self._send_append(m.src)
                return
            old_paused = pr.paused(self.config.max_inflight)
            # A probe answered "I have up to match" moves it to replicating even when match
            # did not grow (etcd does the same); otherwise it would wait for a heartbeat.
            if pr.maybe_update(m.index) or (pr.match == m.index and pr.state is State.PROBE):
                if pr.state is State.PROBE:
                    pr.become_replicate()
                if self._maybe_commit():
                    self._broadcast_append()
                elif old_paused or pr.match < self.log.last_index():
                    self._send_append(m.src)
                if m.src == self.transferee and pr.match == self.log.last_index():
                    self._send(Message(MT.TIMEOUT_NOW, self.id, m.src, self.term))
            elif pr.match < self.log.last_index() and not pr.paused(self.config.max_inflight):
                self._send_append(m.src)
        elif m.type is MT.HEARTBEAT_RESP:
            pr.probe_sent = False  # a probe lost on the way is sent again
            if pr.state is State.REPLICATE and pr.paused(self.config.max_inflight):
                pr.inflight.popleft()  # appends lost on the way must not stall it (etcd)
            elif pr.state is State.SNAPSHOT:
                self._send_snapshot_chunk(m.src)  # the chunk or its answer may be lost
            if pr.match < self.log.last_index():
                self._send_append(m.src)
            if m.context:
                self._read_acked(m.context, m.src)
        elif m.type is MT.SNAPSHOT_RESP:
            if pr.state is not State.SNAPSHOT or m.snapshot is None or \
                    m.snapshot.index != pr.snapshot_index:
                return
            if m.reject:
                pr.become_probe()
                self._send_append(m.src)
            elif m.done:
                pr.maybe_update(m.index)
                pr.become_probe()
                self._send_append(m.src)
            else:
                pr.snapshot_offset = m.offset
                self._send_snapshot_chunk(m.src)

    # --- follower side of replication -------------------------------------------------------

    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self._send(Message(MT.APPEND_RESP, self.id, m.src, self.term, index=self.log.committed))
            return
        if self.log.match_term(m.index, m.log_term):
            last_new = self.log.append_from_leader(m.index, m.entries)
            self.log.commit_to(min(m.commit, last_new))
            self._send(Message(MT.APPEND_RESP, self.id, m.src, self.term, index=last_new))
        else:
            # Point the leader past a whole term of entries it will not match (etcd's
            # findConflictByTerm): back over ours whose term is above its prev entry's.
            hint = min(m.index, self.log.last_index())
            while hint > self.log.committed and (self.log.term(hint) or 0) > m.log_term:
                hint -= 1
            self._send(Message(MT.APPEND_RESP, self.id, m.src, self.term, index=m.index,
                               reject=True, hint=hint))

    def _handle_snapshot(self, m: Message) -> None:
        meta = m.snapshot
        if meta is None:
            return
        if meta.index <= self.log.committed:  # old news: say where we are
            self._send(Message(MT.SNAPSHOT_RESP, self.id, m.src, self.term, snapshot=meta,
                               index=self.log.committed, done=True))
            return
        if m.offset == 0 or self.incoming is None or self.incoming[0] != meta:
            if m.offset != 0:  # a chunk of a transfer we did not see begin: start over
                self._send(Message(MT.SNAPSHOT_RESP, self.id, m.src, self.term, snapshot=meta,
                                   reject=True))
                return
            self.incoming = (meta, bytearray())
        buf = self.incoming[1]
        if m.offset != len(buf):  # a duplicate or a gap: say what we have
            self._send(Message(MT.SNAPSHOT_RESP, self.id, m.src, self.term, snapshot=meta,
                               offset=len(buf)))
            return
        buf += m.data
        if not m.done:
            self._send(Message(MT.SNAPSHOT_RESP, self.id, m.src, self.term, snapshot=meta,
                               offset=len(buf)))
            return
        self.incoming = None
        self.log.restore(meta.index, meta.term)
        self.voters, self.learners = set(meta.voters), set(meta.learners)
        self.snapshot = self.snapshot_to_apply = (meta, bytes(buf))
        self._send(Message(MT.SNAPSHOT_RESP, self.id, m.src, self.term, snapshot=meta,
                           index=self.log.last_index(), done=True))

    # --- leader side ------------------------------------------------------------------------

    def _tick_leader(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_ticks:
            self.election_elapsed = 0
            if self.config.check_quorum and not self._quorum_active():
                self._become_follower(self.term, 0)
                return
            self.transferee = 0  # a transfer that did not happen in a timeout is off
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat(b"")

    def _quorum_active(self) -> bool:
        active = {self.id}
        for peer, pr in self.progress.items():
            if peer != self.id and pr.recent_active and peer in self.voters:
                active.add(peer)
            pr.recent_active = False
        return len(active & self.voters) >= self._quorum()

    def _append(self, kind: EntryKind, data: bytes) -> None:
        self.log.append([Entry(self.term, self.log.last_index() + 1, kind, data)])
        self.bcast_due = True  # one append per follower for everything proposed meanwhile
        if kind is EntryKind.CONF:
            self.pending_conf_index = self.log.last_index()

    # --- membership (thesis §4.1, one server at a time; applied when committed, as etcd) ---

    def _conf_allowed(self, data: bytes) -> bool:
        if self.pending_conf_index > self.log.applied:
            return False
        try:
            cc = ConfChange.decode(data)
        except ValueError:
            return False
        if cc.op == "add_learner":
            return cc.node not in self.voters | self.learners
        if cc.op == "promote":
            return cc.node in self.learners
        if cc.op == "remove":
            return cc.node in self.voters | self.learners and (
                cc.node not in self.voters or len(self.voters) > 1)
        return False  # "voter" is the bootstrap's, never a proposal

    def _apply_conf(self, e: Entry) -> None:
        try:
            cc = ConfChange.decode(e.data)
        except ValueError:
            return  # not one we could have accepted; nothing to change
        if cc.op == "voter":  # the bootstrap's (a leader never proposes one)
            self.learners.discard(cc.node)
            self.voters.add(cc.node)
        elif cc.op == "add_learner" and cc.node not in self.voters:
            self.learners.add(cc.node)
        elif cc.op == "promote" and cc.node in self.learners:
            self.learners.discard(cc.node)
            self.voters.add(cc.node)
        elif cc.op == "remove":
            self.voters.discard(cc.node)
            self.learners.discard(cc.node)
        if self.role is not Role.LEADER:
            return
        if self.id not in self.voters:
            self._become_follower(self.term, 0)  # removed: it leads no more
            return
        for node in self.voters | self.learners:
            if node not in self.progress:
                self.progress[node] = Progress(next=self.log.last_index() + 1)
            self.progress[node].learner = node in self.learners
        for node in set(self.progress) - self.voters - self.learners:
            del self.progress[node]
        self._maybe_commit()  # a smaller quorum may commit more now
        self.bcast_due = True  # and a new member is probed at once

    def _broadcast_append(self) -> None:
        for peer in sorted(self.progress):
            if peer != self.id:
                self._send_append(peer)

    def _broadcast_heartbeat(self, context: bytes) -> None:
        for peer, pr in sorted(self.progress.items()):
            if peer != self.id:
                # Never tell a follower to commit past what it is known to hold.
                self._send(Message(MT.HEARTBEAT, self.id, peer, self.term,
                                   commit=min(pr.match, self.log.committed), context=context))

    def _send_append(self, to: int) -> None:
        pr = self.progress[to]
        if pr.paused(self.config.max_inflight):
            return
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None:  # compacted away: it needs the snapshot
            self._start_snapshot(to)
            return
        entries = self.log.slice(pr.next, self.log.last_index() + 1, self.config.max_append_bytes)
        self._send(Message(MT.APPEND, self.id, to, self.term, log_term=prev_term, index=prev,
                           entries=tuple(entries), commit=self.log.committed))
        pr.sent(entries[-1].index if entries else prev)

    def _start_snapshot(self, to: int) -> None:
        if self.snapshot is None:
            raise AssertionError("a follower needs compacted entries but there is no snapshot")
        self.progress[to].become_snapshot(self.snapshot[0].index)
        self._send_snapshot_chunk(to)

    def _send_snapshot_chunk(self, to: int) -> None:
        assert self.snapshot is not None
        meta, data = self.snapshot
        pr = self.progress[to]
        if meta.index != pr.snapshot_index:  # a newer snapshot since: send that one
            pr.become_snapshot(meta.index)
        start = pr.snapshot_offset
        chunk = data[start:start + self.config.snapshot_chunk_bytes]
        self._send(Message(MT.SNAPSHOT, self.id, to, self.term, snapshot=meta, offset=start,
                           data=chunk, done=start + len(chunk) >= len(data)))

    def _maybe_commit(self) -> bool:
        matches = sorted((self.progress[v].match for v in self.voters if v in self.progress),
                         reverse=True)
        if len(matches) < self._quorum():
            return False
        index = matches[self._quorum() - 1]
        # Raft §5.4.2: only an entry of our own term is committed by counting replicas.
        if index > self.log.committed and self.log.term(index) == self.term:
            self.log.commit_to(index)
            self._release_waiting_reads()
            return True
        return False

    # --- reads (thesis §6.4) ------------------------------------------------------------------

    def _read_request(self, context: bytes, requester: int) -> None:
        read = _Read(context, self.log.committed, requester, {self.id})
        if self.log.term(self.log.committed) != self.term:
            self.waiting_reads.append(read)  # until our no-op commits: index not known yet
            return
        self._confirm(read)

    def _release_waiting_reads(self) -> None:
        if self.waiting_reads and self.log.term(self.log.committed) == self.term:
            waiting, self.waiting_reads = self.waiting_reads, []
            for read in waiting:
                read.index = self.log.committed
                self._confirm(read)

    def _confirm(self, read: _Read) -> None:
        if len(self.voters) == 1 or self.config.lease_reads:
            self._answer_read(read)
            return
        self.reads.append(read)
        self.read_round_due = True

    def _read_acked(self, context: bytes, by: int) -> None:
        for n, read in enumerate(self.reads):
            if read.context == context:
                read.acks.add(by)
                if len(read.acks & self.voters) >= self._quorum():
                    # This read and every earlier one are confirmed (thesis §6.4).
                    done, self.reads = self.reads[:n + 1], self.reads[n + 1:]
                    for r in done:
                        self._answer_read(r)
                return

    def _answer_read(self, read: _Read) -> None:
        if read.requester == self.id:
            self.read_states.append(ReadState(read.index, read.context))
        else:
            self._send(Message(MT.READ_INDEX_RESP, self.id, read.requester, self.term,
                               index=read.index, context=read.context))

    # --- roles ----------------------------------------------------------------------------

    def _become_follower(self, term: int, leader: int) -> None:
        if term != self.term:
            self.term, self.vote = term, 0
        self.role, self.leader = Role.FOLLOWER, leader
        self._reset()

    def _become_pre_candidate(self) -> None:
        self.role, self.leader = Role.PRE_CANDIDATE, 0
        self.votes = {self.id: True}
        self.timeout = self._random_timeout()

    def _become_candidate(self) -> None:
        self._reset()
        self.term += 1
        self.vote, self.role, self.leader = self.id, Role.CANDIDATE, 0
        self.votes = {self.id: True}

    def _won(self, kind: MessageType) -> None:
        if kind is MT.PRE_VOTE:
            self._become_candidate()  # the real election, now that it can be won
            self._ask(MT.VOTE, self.term, b"")
        else:
            self._become_leader()

    def _become_leader(self) -> None:
        self._reset()
        self.role, self.leader = Role.LEADER, self.id
        last = self.log.last_index()
        for peer in self.voters | self.learners:
            self.progress[peer] = Progress(next=last + 1, learner=peer in self.learners)
        self.progress[self.id].match = self.log.stable
        # A change in the log we do not know to be applied may be pending: no new one
        # until everything up to here is applied (etcd's pendingConfIndex).
        self.pending_conf_index = last
        self._append(EntryKind.NOOP, b"")

    def _reset(self) -> None:
        self.election_elapsed = self.heartbeat_elapsed = 0
        self.timeout = self._random_timeout()
        self.votes, self.progress, self.transferee = {}, {}, 0
        for read in self.reads + self.waiting_reads:
            if read.requester == self.id:
                self.dropped.append(read.context)
        self.reads, self.waiting_reads = [], []

    def _tally(self) -> bool | None:
        granted = sum(1 for v, ok in self.votes.items() if ok and v in self.voters)
        rejected = sum(1 for v, ok in self.votes.items() if not ok and v in self.voters)
        if granted >= self._quorum():
            return True
        if rejected > len(self.voters) - self._quorum():
            return False
        return None

    def _quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def _random_timeout(self) -> int:
        return self.config.election_ticks + self.rng.randrange(self.config.election_ticks)

    def _send(self, m: Message) -> None:
        self.msgs.append(m)

    def _soft(self) -> SoftState:
        return SoftState(self.leader, self.role)

    def _conf(self) -> ConfState:
        return ConfState(tuple(sorted(self.voters)), tuple(sorted(self.learners)))

    def _hard(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)
