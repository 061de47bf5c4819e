"""Raft's disk (nodeagent/raft/storage.py) on a real filesystem with fsync: what was
saved comes back, a conflicting suffix is overwritten on replay, a torn tail is cut,
damage before the tail refuses to start, snapshots replace the log before them."""

from __future__ import annotations

import pytest

from nodeagent.raft.messages import Entry, EntryKind, HardState, SnapshotMeta
from nodeagent.raft.storage import CorruptStorageError, RaftStorage


def entries(first: int, last: int, term: int, tag: str = "") -> list[Entry]:
    return [Entry(term, i, EntryKind.NORMAL, f"{tag}{i}".encode()) for i in range(first, last + 1)]


def reopen(path) -> tuple[RaftStorage, object]:
    s = RaftStorage(path)
    return s, s.load()


def test_saved_entries_and_hard_state_come_back(tmp_path):
    s, loaded = reopen(tmp_path)
    assert loaded.entries == [] and loaded.hard_state == HardState() and loaded.snapshot is None
    s.save(HardState(1, 2, 0), entries(1, 3, 1))
    s.save(HardState(1, 2, 3), [])
    s.close()
    s, loaded = reopen(tmp_path)
    assert loaded.hard_state == HardState(1, 2, 3)
    assert loaded.entries == entries(1, 3, 1)


def test_a_conflicting_suffix_is_overwritten_on_replay(tmp_path):
    s, _ = reopen(tmp_path)
    s.save(HardState(1, 1, 2), entries(1, 5, 1))
    s.save(HardState(2, 0, 2), entries(3, 4, 2, "new"))  # a new leader's entries from 3
    s.close()
    _, loaded = reopen(tmp_path)
    assert loaded.entries == entries(1, 2, 1) + entries(3, 4, 2, "new")


def test_a_torn_tail_is_cut_and_what_was_saved_before_it_kept(tmp_path):
    s, _ = reopen(tmp_path)
    s.save(HardState(1, 1, 0), entries(1, 2, 1))
    s.save(None, entries(3, 3, 1))
    s.close()
    seg = sorted(tmp_path.glob("log-*.seg"))[-1]
    seg.write_bytes(seg.read_bytes()[:-3])  # the last save half written
    s, loaded = reopen(tmp_path)
    assert loaded.entries == entries(1, 2, 1) and loaded.truncated_bytes > 0
    s.save(None, entries(3, 3, 1, "again"))  # and it goes on from there
    s.close()
    _, loaded = reopen(tmp_path)
    assert loaded.entries == entries(1, 2, 1) + entries(3, 3, 1, "again")


def test_damage_before_the_last_segment_refuses_to_start(tmp_path):
    s, _ = reopen(tmp_path)
    s.save(HardState(1, 1, 0), entries(1, 2, 1))
    s.segment_limit = 1
    s.maybe_roll()
    s.save(None, entries(3, 4, 1))
    s.close()
    first = sorted(tmp_path.glob("log-*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[-2] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptStorageError, match="before the last segment"):
        RaftStorage(tmp_path).load()


def test_a_snapshot_replaces_the_log_before_it(tmp_path):
    s, _ = reopen(tmp_path)
    s.save(HardState(1, 1, 5), entries(1, 6, 1))
    s.save_snapshot(SnapshotMeta(4, 1, (1, 2, 3), (4,)), b"state at 4", entries(5, 6, 1))
    s.save(None, entries(7, 7, 1))
    s.close()
    assert len(list(tmp_path.glob("log-*.seg"))) == 1 and len(list(tmp_path.glob("snap-*"))) == 1
    _, loaded = reopen(tmp_path)
    assert loaded.snapshot == (SnapshotMeta(4, 1, (1, 2, 3), (4,)), b"state at 4")
    assert loaded.entries == entries(5, 7, 1) and loaded.hard_state == HardState(1, 1, 5)
