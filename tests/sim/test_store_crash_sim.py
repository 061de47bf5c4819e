"""Deterministic, seeded simulation of the store's log under crashes.

Each seed drives a random history: batches of transactions are appended to a
real WAL (group commits), snapshots are taken now and then, and at random
moments the "machine crashes" in the middle of a batch: the segment is cut
at a random byte inside the batch that was being written (and sometimes a
byte of the cut record is flipped, as a torn sector would).  Recovery must
give back every acknowledged batch, at most a prefix of the torn one, and
the same revisions; a failure prints the seed to replay it.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nodeagent.store.mvcc import MVCC, Op, OpKind, Txn
from nodeagent.store.wal import WAL

SEEDS = range(40)


def random_txn(rng: random.Random) -> Txn:
    ops = []
    for _ in range(rng.randint(1, 3)):
        key = f"/k/{rng.randint(0, 20)}"
        if rng.random() < 0.75:
            ops.append(Op(OpKind.PUT, key, rng.randbytes(rng.randint(0, 64))))
        else:
            ops.append(Op(OpKind.DELETE, key))
    return Txn(success=tuple(ops))


def state(m: MVCC) -> tuple[int, dict[str, tuple[bytes, int, int, int]]]:
    return m.revision, {kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version)
                        for kv in m.range("")[0]}


def recover(path: Path) -> tuple[MVCC, WAL]:
    wal = WAL(path, fsync=False)  # the simulated crash is a cut file, not a power loss
    rec = wal.recover()
    m = MVCC()
    if rec.snapshot is not None:
        m.restore(rec.snapshot)
    for _, data in rec.records:
        m.apply(Txn.decode(data))
    return m, wal


def last_segment(path: Path) -> Path:
    return sorted(path.glob("wal-*.log"))[-1]


@pytest.mark.parametrize("seed", SEEDS)
def test_recovery_after_random_crashes(tmp_path, seed):
    rng = random.Random(seed)
    acked = MVCC()  # the state every acknowledged batch has produced
    m, wal = recover(tmp_path)
    applied = 0
    try:
        for _step in range(rng.randint(20, 60)):
            batch = [random_txn(rng) for _ in range(rng.randint(1, 8))]
            crash = rng.random() < 0.2
            seg = last_segment(tmp_path)
            before = seg.stat().st_size
            wal.append([t.encode() for t in batch])
            if not crash:
                for t in batch:
                    m.apply(t)
                    acked.apply(t)
                applied += len(batch)
                if rng.random() < 0.1:
                    wal.save_snapshot(applied, m.snapshot())
                continue
            # Crash while the batch was being written: it was never acknowledged.
            after = seg.stat().st_size
            cut = rng.randint(before, after - 1)
            data = bytearray(seg.read_bytes()[:cut])
            if cut > before and rng.random() < 0.3:
                data[rng.randint(before, cut - 1)] ^= 1 << rng.randint(0, 7)
            seg.write_bytes(bytes(data))
            wal.close()
            m, wal = recover(tmp_path)
            # What came back is the acknowledged state plus at most a prefix of the torn batch.
            candidates = [state(acked)]
            probe = MVCC()
            probe.restore(acked.snapshot())
            for t in batch:
                probe.apply(t)
                candidates.append(state(probe))
            got = state(m)
            assert got in candidates, f"seed={seed}: recovered state is not acked + prefix"
            # Continue from what was recovered, as the restarted agent does.
            k = candidates.index(got)
            for t in batch[:k]:
                acked.apply(t)
            applied = wal.last_index
    finally:
        wal.close()
    wal2_m, wal2 = recover(tmp_path)
    wal2.close()
    assert state(wal2_m) == state(acked), f"seed={seed}"
