"""Raft's disk under crashes, seeded: random saves (new leaders overwriting suffixes,
hard states, snapshots), and at a random moment the machine dies in the middle of a
save -- the last segment cut at a random byte of it.  Recovery must give back every
save that returned, and of the torn one at most a prefix; a failure prints its seed."""

from __future__ import annotations

import random
import shutil

import pytest

from nodeagent.raft.messages import Entry, EntryKind, HardState, SnapshotMeta
from nodeagent.raft.storage import RaftStorage

SEEDS = range(60)


def overwrite(log: list[Entry], new: list[Entry]) -> list[Entry]:
    if not new:
        return log
    return [e for e in log if e.index < new[0].index] + new


@pytest.mark.parametrize("seed", SEEDS)
def test_recovery_after_a_torn_save_gives_back_every_completed_one(seed, tmp_path):
    rng = random.Random(seed)
    disk = tmp_path / "raft"
    s = RaftStorage(disk, fsync=False, segment_bytes=rng.choice([200, 2000, 1 << 20]))
    s.load()
    log: list[Entry] = []
    hard, term, snap = HardState(), 1, None
    for _ in range(rng.randint(5, 40)):
        if rng.random() < 0.1 and log:
            index = rng.randint(log[0].index, log[-1].index)
            meta = SnapshotMeta(index, next(e.term for e in log if e.index == index), (1, 2, 3))
            snap, log = (meta, rng.randbytes(20)), [e for e in log if e.index > index]
            s.save_snapshot(meta, snap[1], log)
            continue
        if rng.random() < 0.3:
            term += 1
            hard = HardState(term, rng.randint(0, 3), hard.commit)
        last = log[-1].index if log else (snap[0].index if snap else 0)
        start = rng.randint(max(last - 3, snap[0].index if snap else 0) + 1, last + 1)
        new = [Entry(term, i, EntryKind.NORMAL, rng.randbytes(rng.randint(0, 30)))
               for i in range(start, start + rng.randint(0, 4))]
        s.save(hard, new)
        log = overwrite(log, new)
        s.maybe_roll()
    # The crash: one more save, torn at a random byte.
    before = (hard, list(log))
    term += 1
    torn_hard = HardState(term, 1, hard.commit)
    last = log[-1].index if log else (snap[0].index if snap else 0)
    torn = [Entry(term, i, EntryKind.NORMAL, b"torn") for i in range(last + 1, last + 4)]
    seg = sorted(disk.glob("log-*.seg"))[-1]
    size = seg.stat().st_size
    s.save(torn_hard, torn)
    s.close()
    crashed = tmp_path / "crashed"
    shutil.copytree(disk, crashed)
    cut = rng.randint(size, seg.stat().st_size)
    with open(crashed / seg.name, "r+b") as f:
        f.truncate(cut)
    loaded = RaftStorage(crashed).load()
    got = (loaded.hard_state, loaded.entries, loaded.snapshot)
    allowed = [(before[0], before[1], snap)]
    allowed += [(torn_hard, overwrite(before[1], torn[:k]), snap) for k in range(len(torn) + 1)]
    assert got in allowed, f"seed {seed}: recovered {got} is not the state before the " \
        f"torn save or a prefix of it"
