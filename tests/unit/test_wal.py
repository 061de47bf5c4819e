"""The write-ahead log's on-disk rules: CRC per record, torn tails, corruption, snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeagent.store.errors import CorruptLogError
from nodeagent.store.wal import WAL


def fresh(path: Path) -> WAL:
    w = WAL(path)
    w.recover()
    return w


def test_records_come_back_in_order(tmp_path):
    w = fresh(tmp_path)
    w.append([b"a", b"b"])
    w.append([b"c"])
    w.close()
    rec = WAL(tmp_path).recover()
    assert rec.records == [(1, b"a"), (2, b"b"), (3, b"c")] and rec.truncated_bytes == 0


@pytest.mark.parametrize("cut", [1, 5, 9, 12])
def test_torn_tail_is_truncated_and_appending_continues(tmp_path, cut):
    w = fresh(tmp_path)
    w.append([b"first"])
    w.append([b"second-record"])
    w.close()
    seg = next(tmp_path.glob("wal-*.log"))
    size = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.truncate(size - cut)
    w2 = WAL(tmp_path)
    rec = w2.recover()
    assert rec.records == [(1, b"first")]
    assert rec.truncated_bytes > 0
    w2.append([b"third"])
    w2.close()
    assert WAL(tmp_path).recover().records == [(1, b"first"), (2, b"third")]


def test_flipped_bit_in_the_tail_record_is_a_torn_write(tmp_path):
    w = fresh(tmp_path)
    w.append([b"one", b"two"])
    w.close()
    seg = next(tmp_path.glob("wal-*.log"))
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0x01
    seg.write_bytes(bytes(data))
    assert WAL(tmp_path).recover().records == [(1, b"one")]


def test_damage_before_the_last_segment_refuses_to_start(tmp_path):
    w = fresh(tmp_path)
    w.append([b"one", b"two"])
    w.save_snapshot(1, b"state-at-1")  # rolls to a new segment; keeps wal from index 3
    w.append([b"three"])
    w.close()
    # Put a damaged older segment in front, as if a disk had corrupted it.
    segs = sorted(tmp_path.glob("wal-*.log"))
    bad = tmp_path / "wal-0000000000000001.log"
    bad.write_bytes(b"\x05\x00\x00\x00garbage")
    assert bad not in segs
    with pytest.raises(CorruptLogError):
        WAL(tmp_path).recover()


def test_snapshot_bounds_the_log(tmp_path):
    w = fresh(tmp_path)
    for i in range(10):
        w.append([f"r{i}".encode()])
    w.save_snapshot(10, b"state")
    w.append([b"r10"])
    w.close()
    assert len(list(tmp_path.glob("wal-*.log"))) == 1
    rec = WAL(tmp_path).recover()
    assert (rec.snapshot_index, rec.snapshot) == (10, b"state")
    assert rec.records == [(11, b"r10")]


def test_a_damaged_newest_snapshot_falls_back_to_an_older_one(tmp_path):
    w = fresh(tmp_path)
    w.append([b"a"])
    w.save_snapshot(1, b"s1")
    w.close()
    # A half-written snapshot file (its rename happened but content is bad) is ignored.
    (tmp_path / "snap-0000000000000002.snap").write_bytes(b"NASNAP1\n\x00\x00\x00\x00junk")
    rec = WAL(tmp_path).recover()
    assert (rec.snapshot_index, rec.snapshot) == (1, b"s1")
