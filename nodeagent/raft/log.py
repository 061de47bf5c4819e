"""The Raft log as the core sees it: a snapshot point, then entries, in memory.

Indexes start at 1; index 0 with term 0 is the empty log's sentinel (and, after
compaction, ``snapshot_index`` with ``snapshot_term`` plays that part).  The
driver persists entries past ``stable`` and reports them back, so the core knows
which of its entries would survive a crash -- a leader counts only its persisted
entries towards a commit, and the simulation drops the rest on a crash.

# Invariant: entries[i].index == snapshot_index + 1 + i, terms never decrease.
# Invariant: snapshot_index <= applied <= committed <= last_index().
"""

from __future__ import annotations

from nodeagent.raft.messages import Entry

__all__ = ["RaftLog"]


class RaftLog:
    def __init__(self, entries: list[Entry] | None = None, *, snapshot_index: int = 0,
                 snapshot_term: int = 0, committed: int = 0, applied: int | None = None) -> None:
        self.snapshot_index = snapshot_index
        self.snapshot_term = snapshot_term
        self.entries: list[Entry] = list(entries or [])
        for i, e in enumerate(self.entries):
            if e.index != snapshot_index + 1 + i:
                raise ValueError(f"log entry {i} has index {e.index}, expected "
                                 f"{snapshot_index + 1 + i}")
        self.committed = max(committed, snapshot_index)
        self.applied = snapshot_index if applied is None else max(applied, snapshot_index)
        self.stable = self.last_index()  # what it was built from is on disk already

    # --- reading --------------------------------------------------------------------------

    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snapshot_index

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot_term

    def first_index(self) -> int:
        return self.snapshot_index + 1

    def term(self, index: int) -> int | None:
        """The term of the entry at ``index``; None if compacted away or not there."""
        if index == self.snapshot_index:
            return self.snapshot_term
        if index < self.snapshot_index or index > self.last_index():
            return None
        return self.entries[index - self.snapshot_index - 1].term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.snapshot_index - 1]

    def slice(self, lo: int, hi: int, max_bytes: int = 0) -> list[Entry]:
        """Entries [lo, hi), at least one, at most ``max_bytes`` of data after the first."""
        if lo < self.first_index():
            raise IndexError(f"entries from {lo} were compacted (first is {self.first_index()})")
        out = self.entries[lo - self.snapshot_index - 1:hi - self.snapshot_index - 1]
        if max_bytes and out:
            size = 0
            for n, e in enumerate(out):
                size += len(e.data)
                if size > max_bytes and n:
                    return out[:n]
        return out

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1: a candidate's log is at least as up to date as ours."""
        return last_term > self.last_term() or (
            last_term == self.last_term() and last_index >= self.last_index())

    def unstable(self) -> list[Entry]:
        return self.entries[self.stable - self.snapshot_index:] if self.stable >= \
            self.snapshot_index else list(self.entries)

    def committed_unapplied(self, max_entries: int = 0) -> list[Entry]:
        hi = self.committed
        if max_entries:
            hi = min(hi, self.applied + max_entries)
        if hi <= self.applied:
            return []
        return self.entries[self.applied - self.snapshot_index:hi - self.snapshot_index]

    # --- writing --------------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> int:
        """The leader's own new entries (they follow the last one)."""
        for e in entries:
            if e.index != self.last_index() + 1:
                raise ValueError(f"appending index {e.index} after {self.last_index()}")
            self.entries.append(e)
        return self.last_index()

    def append_from_leader(self, prev_index: int, entries: tuple[Entry, ...]) -> int:
        """Raft §5.3 receiver rules 3 and 4, after the caller matched prev_index: drop our
        entries from the first one that conflicts, append the new ones; returns the index
        of the last entry the leader's message covers."""
        last_new = prev_index + len(entries)
        for e in entries:
            if e.index <= self.snapshot_index:
                continue  # inside our snapshot: committed, so it matches
            have = self.term(e.index)
            if have == e.term:
                continue
            if have is not None:
                # Invariant: committed entries are never overwritten (Leader Completeness).
                if e.index <= self.committed:
                    raise AssertionError(f"entry {e.index} conflicts below commit {self.committed}")
                self._truncate_from(e.index)
            self.entries.append(e)
        return last_new

    def _truncate_from(self, index: int) -> None:
        del self.entries[index - self.snapshot_index - 1:]
        self.stable = min(self.stable, index - 1)

    def commit_to(self, index: int) -> bool:
        index = min(index, self.last_index())
        if index > self.committed:
            self.committed = index
            return True
        return False

    def stable_to(self, index: int, term: int) -> None:
        """The driver persisted entries up to ``index`` (of ``term``; if the entry there is
        another one now, a newer leader overwrote it and it is not stable)."""
        if self.term(index) == term and index > self.stable:
            self.stable = index

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index

    def compact(self, index: int) -> None:
        """Forget entries up to ``index`` (covered by a snapshot the application took)."""
        if index <= self.snapshot_index:
            return
        if index > self.applied:
            raise ValueError(f"compacting to {index} past applied {self.applied}")
        term = self.term(index)
        assert term is not None
        del self.entries[:index - self.snapshot_index]
        self.snapshot_index, self.snapshot_term = index, term

    def restore(self, index: int, term: int) -> None:
        """Replace the log by a snapshot's point (InstallSnapshot, Raft §7): entries that
        follow it and agree are kept, as the paper says; otherwise the log is empty."""
        if self.term(index) == term:
            del self.entries[:index - self.snapshot_index]
        else:
            self.entries = []
        self.snapshot_index, self.snapshot_term = index, term
        self.committed = max(self.committed, index)
        self.applied = max(self.applied, index)
        self.stable = max(self.stable, index) if self.entries else index
