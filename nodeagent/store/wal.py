"""Write-ahead log and snapshot files for the single-agent store.

On-disk layout in ``DIR``::

    wal-<first index, 16 hex>.log    records, in index order, across segments
    snap-<index, 16 hex>.snap        state after applying every record <= index

Record: ``u32 length | u32 crc32(payload) | payload``, little endian; payload
is msgpack ``[index, command bytes, offset its write began at]`` (older records have
no third field).  Indexes are contiguous from 1.  The write's offset tells recovery
which records one write (one group commit) holds (recordlog.py).

Recovery rules (the same as etcd's wal package):

- a torn tail of the *last* segment (recordlog.py says what counts as one) is a
  write cut short by a crash: the file is truncated there (it was never
  acknowledged, since acknowledgement waits for fsync);
- any other damage, anywhere, or an index gap, is corruption: refuse to start
  rather than silently lose acknowledged writes.

Snapshots are written to a temporary file, fsynced, renamed and the directory
fsynced, so a crash leaves either the old or the new snapshot, never half of
one.  After a snapshot the log rolls to a new segment and older segments and
snapshots are deleted, so disk and start-up time stay bounded.

All methods here block (file I/O, fsync); the store calls them from a thread.
"""

from __future__ import annotations

import functools
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import msgpack

from nodeagent.fsutil import fsync_dir, make_private_dir, private_opener
from nodeagent.recordlog import MAX_RECORD_BYTES, LogDamaged, encode_record, read_segment
from nodeagent.store.errors import CorruptLogError

__all__ = ["WAL", "Recovered"]

_SNAP_MAGIC = b"NASNAP1\n"


@dataclass
class Recovered:
    snapshot_index: int
    snapshot: bytes | None
    records: list[tuple[int, bytes]]  # (index, command) after the snapshot
    truncated_bytes: int  # torn tail removed


def _segment_name(first: int) -> str:
    return f"wal-{first:016x}.log"


def _snapshot_name(index: int) -> str:
    return f"snap-{index:016x}.snap"


class WAL:
    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = True,
                 max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.dir = Path(directory)
        self.max_record_bytes = max_record_bytes
        self.fsync_enabled = fsync
        self._file: BinaryIO | None = None  # current segment, opened for append
        self.last_index = 0
        self.segment_bytes = 0

    # --- recovery -----------------------------------------------------------------------

    def recover(self) -> Recovered:
        """Read the newest snapshot and the records after it; cut a torn tail off.
        Raises CorruptLogError for damage anywhere else (recordlog.py tells them apart)."""
        make_private_dir(self.dir)
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        snap_index, snap = self._read_newest_snapshot()
        segments = sorted(self.dir.glob("wal-*.log"))
        records: list[tuple[int, bytes]] = []
        truncated = 0
        expected = None
        for n, seg in enumerate(segments):
            try:
                found, cut = read_segment(seg, last=n == len(segments) - 1,
                                          write_start=functools.partial(self._write_start, seg))
            except LogDamaged as exc:
                raise CorruptLogError(str(exc)) from exc
            truncated += cut
            for payload, end in found:
                index, cmd, _ = self._record(seg, payload, end)
                if expected is not None and index != expected:
                    raise CorruptLogError(f"{seg}: index {index} where {expected} was expected")
                expected = index + 1
                if index > snap_index:
                    records.append((index, cmd))
        self.last_index = max(snap_index, expected - 1 if expected else 0)
        if records and records[0][0] != snap_index + 1:
            raise CorruptLogError(f"log starts at {records[0][0]} but snapshot is at {snap_index}")
        # Open the last segment for appending, or start one.
        if segments:
            self._open_segment(segments[-1])
        else:
            self._new_segment(self.last_index + 1)
        return Recovered(snap_index, snap, records, truncated)

    @staticmethod
    def _write_start(seg: Path, payload: bytes) -> int | None:
        return WAL._record(seg, payload)[2]

    @staticmethod
    def _record(seg: Path, payload: bytes, end: int = -1) -> tuple[int, bytes, int | None]:
        """(index, command, offset its write began at or None) of one whole record."""
        try:
            index, cmd, *began = msgpack.unpackb(payload, raw=False)
            if not isinstance(index, int) or not isinstance(cmd, bytes) or len(began) > 1:
                raise ValueError("not [index, command, write offset]")
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            # The CRC matched: not a torn write but a record this store never wrote.
            raise CorruptLogError(f"{seg}: record ending at byte {end} is not a log "
                                  f"record: {exc}") from exc
        return index, cmd, began[0] if began and isinstance(began[0], int) else None

    def _read_newest_snapshot(self) -> tuple[int, bytes | None]:
        for path in sorted(self.dir.glob("snap-*.snap"), reverse=True):
            data = path.read_bytes()
            if not data.startswith(_SNAP_MAGIC) or len(data) < len(_SNAP_MAGIC) + 4:
                continue
            body = data[len(_SNAP_MAGIC) + 4:]
            (crc,) = struct.unpack_from("<I", data, len(_SNAP_MAGIC))
            if zlib.crc32(body) != crc:
                continue  # an older snapshot may still be whole
            index, state = msgpack.unpackb(body, raw=False)
            return index, state
        return 0, None

    # --- appending ----------------------------------------------------------------------

    def _open_segment(self, path: Path) -> None:
        self._file = open(path, "ab", buffering=0, opener=private_opener)
        self.segment_bytes = self._file.tell()

    def _new_segment(self, first: int) -> None:
        if self._file is not None:
            self._file.close()
        path = self.dir / _segment_name(first)
        self._open_segment(path)
        if self.fsync_enabled:
            fsync_dir(self.dir)

    def append(self, commands: list[bytes]) -> int:
        """Append records and fsync once (group commit).  Returns the first index used.
        Raises RecordTooLarge, having written nothing, if one is over the record cap."""
        assert self._file is not None, "recover() first"
        first = self.last_index + 1
        buf = bytearray()
        for i, cmd in enumerate(commands):  # RecordTooLarge before anything is written
            buf += encode_record(msgpack.packb([first + i, cmd, self.segment_bytes],
                                               use_bin_type=True), self.max_record_bytes)
        self._file.write(buf)
        if self.fsync_enabled:
            os.fdatasync(self._file.fileno())
        self.last_index += len(commands)
        self.segment_bytes += len(buf)
        return first

    # --- snapshots ----------------------------------------------------------------------

    def save_snapshot(self, index: int, state: bytes) -> None:
        """Write a snapshot of the state after ``index``, then drop older files."""
        body = msgpack.packb([index, state], use_bin_type=True)
        tmp = self.dir / (_snapshot_name(index) + ".tmp")
        with open(tmp, "wb", opener=private_opener) as f:
            f.write(_SNAP_MAGIC + struct.pack("<I", zlib.crc32(body)) + body)
            f.flush()
            if self.fsync_enabled:
                os.fsync(f.fileno())
        os.rename(tmp, self.dir / _snapshot_name(index))
        if self.fsync_enabled:
            fsync_dir(self.dir)
        # Roll the log so everything before the snapshot lives in whole old segments.
        self._new_segment(self.last_index + 1)
        keep_seg = _segment_name(self.last_index + 1)
        for seg in self.dir.glob("wal-*.log"):
            if seg.name < keep_seg:
                seg.unlink()
        keep_snap = _snapshot_name(index)
        for snap in self.dir.glob("snap-*.snap"):
            if snap.name < keep_snap:
                snap.unlink()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
