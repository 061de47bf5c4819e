"""Recovery tells a torn tail (cut off) from damage to acknowledged records (refused),
for the store's WAL and Raft's log alike: cutting at a "torn tail" with good records
after it would silently drop acknowledged writes."""

from __future__ import annotations

import pytest

from nodeagent.raft.messages import Entry, EntryKind, HardState
from nodeagent.raft.storage import CorruptStorageError, RaftStorage
from nodeagent.recordlog import RecordTooLarge, encode_record, scan
from nodeagent.store.errors import CorruptLogError
from nodeagent.store.wal import WAL


def test_a_record_cut_short_at_the_end_is_a_torn_tail() -> None:
    data = encode_record(b"one") + encode_record(b"two")[:-1]
    records, damage = scan(data)
    assert [p for p, _ in records] == [b"one"]
    assert damage is not None and damage.torn and damage.offset == len(encode_record(b"one"))


def test_a_zero_filled_tail_is_torn() -> None:
    data = encode_record(b"one") + b"\0" * 4096
    _, damage = scan(data)
    assert damage is not None and damage.torn


def test_a_bad_checksum_followed_by_good_records_is_damage_not_a_tail() -> None:
    bad = bytearray(encode_record(b"one"))
    bad[-1] ^= 0xFF
    records, damage = scan(bytes(bad) + encode_record(b"two"))
    assert records == []
    assert damage is not None and not damage.torn


def test_a_whole_record_over_the_append_cap_is_still_read() -> None:
    big = b"x" * 100
    records, damage = scan(encode_record(big, max_bytes=1000))
    assert damage is None and records[0][0] == big
    with pytest.raises(RecordTooLarge):
        encode_record(big, max_bytes=99)


def test_wal_refuses_an_oversized_record_and_writes_nothing(tmp_path) -> None:
    wal = WAL(tmp_path, fsync=False, max_record_bytes=1000)
    wal.recover()
    wal.append([b"acknowledged"])
    with pytest.raises(RecordTooLarge):
        wal.append([b"small", b"y" * 2000])
    wal.append([b"after"])
    wal.close()
    rec = WAL(tmp_path, fsync=False).recover()
    assert [c for _, c in rec.records] == [b"acknowledged", b"after"]
    assert rec.truncated_bytes == 0


def test_wal_keeps_acknowledged_records_after_damage_by_refusing_to_start(tmp_path) -> None:
    wal = WAL(tmp_path, fsync=False)
    wal.recover()
    wal.append([b"a" * 50])
    wal.append([b"b" * 50])
    wal.close()
    seg = next(tmp_path.glob("wal-*.log"))
    data = bytearray(seg.read_bytes())
    data[20] ^= 0xFF  # inside the first record: the second is whole after it
    seg.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="refusing to drop"):
        WAL(tmp_path, fsync=False).recover()
    assert seg.read_bytes() == bytes(data)  # nothing was cut


def test_wal_cuts_only_a_torn_tail(tmp_path) -> None:
    wal = WAL(tmp_path, fsync=False)
    wal.recover()
    wal.append([b"a" * 50])
    wal.close()
    seg = next(tmp_path.glob("wal-*.log"))
    with open(seg, "ab") as f:
        f.write(encode_record(b"never acknowledged")[:-3])
    rec = WAL(tmp_path, fsync=False).recover()
    assert [c for _, c in rec.records] == [b"a" * 50] and rec.truncated_bytes > 0


def test_raft_log_refuses_to_drop_entries_after_damage(tmp_path) -> None:
    st = RaftStorage(tmp_path, fsync=False)
    st.load()
    st.save(HardState(1, 1, 0), [Entry(1, 1, EntryKind.NORMAL, b"x" * 40)])
    st.save(None, [Entry(1, 2, EntryKind.NORMAL, b"y" * 40)])
    st.close()
    seg = sorted(tmp_path.glob("log-*.seg"))[-1]
    data = bytearray(seg.read_bytes())
    data[-60] ^= 0xFF  # inside entry 1; entry 2 follows whole
    seg.write_bytes(bytes(data))
    with pytest.raises(CorruptStorageError, match="refusing to drop"):
        RaftStorage(tmp_path, fsync=False).load()


def test_log_files_are_private(tmp_path) -> None:
    wal = WAL(tmp_path / "wal", fsync=False)
    wal.recover()
    wal.append([b"v"])
    wal.save_snapshot(1, b"state")
    wal.close()
    st = RaftStorage(tmp_path / "raft", fsync=False)
    st.load()
    st.close()
    for d in (tmp_path / "wal", tmp_path / "raft"):
        assert d.stat().st_mode & 0o777 == 0o700
        for f in d.iterdir():
            assert f.stat().st_mode & 0o777 == 0o600, f


def test_a_torn_sector_inside_the_last_write_is_cut_with_that_write(tmp_path) -> None:
    """Sectors of one write reach the disk in any order: damage with good records of the
    same (unacknowledged) write after it is still a torn tail, for both logs."""
    wal = WAL(tmp_path / "wal", fsync=False)
    wal.recover()
    wal.append([b"acknowledged"])
    wal.append([b"x" * 50, b"y" * 50, b"z" * 50])  # one write, then a crash tore it
    wal.close()
    seg = next((tmp_path / "wal").glob("wal-*.log"))
    data = bytearray(seg.read_bytes())
    first_len = len(encode_record(b"\x93\x01\xac" + b"acknowledged" + b"\x00"))
    data[first_len + 20] ^= 0xFF  # inside x; y and z whole after it
    seg.write_bytes(bytes(data))
    rec = WAL(tmp_path / "wal", fsync=False).recover()
    assert [c for _, c in rec.records] == [b"acknowledged"] and rec.truncated_bytes > 0

    st = RaftStorage(tmp_path / "raft", fsync=False)
    st.load()
    st.save(HardState(1, 1, 0), [Entry(1, 1, EntryKind.NORMAL, b"a" * 40)])
    st.save(None, [Entry(1, i, EntryKind.NORMAL, b"b" * 40) for i in (2, 3, 4)])
    st.close()
    seg = sorted((tmp_path / "raft").glob("log-*.seg"))[-1]
    data = bytearray(seg.read_bytes())
    data[len(data) - 3 * 57 + 20] ^= 0xFF  # inside entry 2 (57 bytes a record); 3, 4 after
    seg.write_bytes(bytes(data))
    loaded = RaftStorage(tmp_path / "raft", fsync=False).load()
    assert [e.index for e in loaded.entries] == [1] and loaded.truncated_bytes > 0
