"""What a Raft server keeps on disk: its term and vote, its log, its latest snapshot.

Layout in ``DIR``::

    log-<seq, 16 hex>.seg     records, appended in order, across segments
    snap-<index, 16 hex>.snap the newest snapshot (meta and state machine bytes)

Record: ``u32 length | u32 crc32(payload) | payload`` (little endian), payload msgpack:
``["e", term, index, kind, data, began]`` for an entry, ``["h", term, vote, commit,
began]`` for the hard state, ``began`` the offset the record's write began at (older
records lack it; recordlog.py uses it to tell a torn write from damage).  As in
etcd's WAL, a conflicting suffix is never rewritten in place: the new entries are
appended, and replay lets an entry overwrite the ones at and
after its index -- so every write is an append and one fdatasync (group commit:
the driver saves a whole Ready at once), and a crash in the middle of a save leaves
at most a torn tail.

Recovery: a torn tail of the *last* segment (recordlog.py says what counts as one)
is a write cut short (never acknowledged: the driver sends nothing before save()
returns) and is cut off; any other damage refuses to start rather than lose
acknowledged entries.  An entry over the record cap is refused at save (RecordTooLarge),
before anything is written.  Snapshots are written to a temporary file, fsynced, renamed, and the
directory fsynced; then the log rolls to a new segment (starting with the hard
state and the entries past the snapshot) and older segments and snapshots go.

Every method blocks (file I/O, fsync): the driver calls them from a thread.
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
from nodeagent.raft.messages import Entry, EntryKind, HardState, SnapshotMeta
from nodeagent.recordlog import LogDamaged, encode_record, read_segment

__all__ = ["CorruptStorageError", "Loaded", "RaftStorage"]

_SNAP_MAGIC = b"NARAFTSNAP1\n"


class CorruptStorageError(Exception):
    """The log is damaged before its tail, or a record does not make sense."""


@dataclass
class Loaded:
    hard_state: HardState
    snapshot: tuple[SnapshotMeta, bytes] | None
    entries: list[Entry]  # after the snapshot, contiguous
    truncated_bytes: int  # a torn tail that was cut off


def _entry_record(e: Entry, began: int) -> bytes:
    return encode_record(msgpack.packb(["e", e.term, e.index, int(e.kind), e.data, began],
                                       use_bin_type=True))


def _hard_record(h: HardState, began: int) -> bytes:
    return encode_record(msgpack.packb(["h", h.term, h.vote, h.commit, began],
                                       use_bin_type=True))


def _records(hard: HardState | None, entries: list[Entry], began: int) -> bytes:
    """One write's records, each carrying the offset the write begins at (recordlog.py)."""
    return (_hard_record(hard, began) if hard is not None else b"") + \
        b"".join(_entry_record(e, began) for e in entries)


def _write_start(record: list) -> int | None:
    began = record[5] if record[0] == "e" and len(record) == 6 else \
        record[4] if record[0] == "h" and len(record) == 5 else None
    return began if isinstance(began, int) else None


class RaftStorage:
    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = True,
                 segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.dir = Path(directory)
        self.fsync_enabled = fsync
        self.segment_limit = segment_bytes
        self._file: BinaryIO | None = None
        self._seq = 0
        self._size = 0
        self._hard = HardState()
        self._snapshot_index = 0
        self._last_index = 0

    # --- recovery -----------------------------------------------------------------------

    def load(self) -> Loaded:
        make_private_dir(self.dir)
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        snapshot = self._newest_snapshot()
        base = snapshot[0].index if snapshot else 0
        hard = HardState()
        entries: list[Entry] = []  # entries[i].index == base + 1 + i
        truncated = 0
        segments = sorted(self.dir.glob("log-*.seg"))
        for n, seg in enumerate(segments):
            try:
                found, cut = read_segment(
                    seg, last=n == len(segments) - 1,
                    write_start=functools.partial(self._write_start_of, seg))
            except LogDamaged as exc:
                raise CorruptStorageError(str(exc)) from exc
            truncated += cut
            for payload, end in found:
                record = self._record(seg, payload, end)
                if record[0] == "h":
                    hard = HardState(record[1], record[2], record[3])
                    continue
                e = Entry(record[1], record[2], EntryKind(record[3]), record[4])
                if e.index <= base:
                    continue  # covered by the snapshot
                if e.index > base + len(entries) + 1:
                    raise CorruptStorageError(f"{seg}: entry {e.index} after "
                                              f"{base + len(entries)}: a gap")
                del entries[e.index - base - 1:]  # Raft's overwrite: the later write wins
                entries.append(e)
        self._hard, self._snapshot_index = hard, base
        self._last_index = base + len(entries)
        self._seq = int(segments[-1].name[4:20], 16) if segments else 0
        if segments:
            self._open(segments[-1])
        else:
            self._roll(hard, [])
        return Loaded(hard, snapshot, entries, truncated)

    @staticmethod
    def _write_start_of(seg: Path, payload: bytes) -> int | None:
        return _write_start(RaftStorage._record(seg, payload))

    @staticmethod
    def _record(seg: Path, payload: bytes, end: int = -1) -> list:
        try:
            record = msgpack.unpackb(payload, raw=False)
            valid = isinstance(record, list) and (
                (record[:1] == ["h"] and len(record) in (4, 5)) or
                (record[:1] == ["e"] and len(record) in (5, 6) and isinstance(record[4], bytes)))
        except (ValueError, msgpack.UnpackException):
            valid = False
        if not valid:
            # The CRC matched, so this is not a torn write but a record we do not know.
            raise CorruptStorageError(f"{seg}: record ending at byte {end} is not a Raft record")
        return record

    def _newest_snapshot(self) -> tuple[SnapshotMeta, bytes] | None:
        for path in sorted(self.dir.glob("snap-*.snap"), reverse=True):
            raw = path.read_bytes()
            head = len(_SNAP_MAGIC) + 4
            if not raw.startswith(_SNAP_MAGIC) or len(raw) < head:
                continue
            (crc,) = struct.unpack_from("<I", raw, len(_SNAP_MAGIC))
            body = raw[head:]
            if zlib.crc32(body) != crc:
                continue  # an older one may still be whole
            index, term, voters, learners, data = msgpack.unpackb(body, raw=False)
            return SnapshotMeta(index, term, tuple(voters), tuple(learners)), data
        return None

    # --- writing --------------------------------------------------------------------------

    def _open(self, path: Path) -> None:
        if self._file is not None:
            self._file.close()
        self._file = open(path, "ab", buffering=0, opener=private_opener)
        self._size = self._file.tell()

    def _roll(self, hard: HardState, entries: list[Entry]) -> None:
        """A new segment that starts with what a reader needs from the older ones."""
        self._seq += 1
        path = self.dir / f"log-{self._seq:016x}.seg"
        self._open(path)
        self._write(_records(hard, entries, self._size))
        if self.fsync_enabled:
            fsync_dir(self.dir)

    def _write(self, buf: bytes, sync: bool = True) -> None:
        assert self._file is not None, "load() first"
        self._file.write(buf)
        if self.fsync_enabled and sync:
            os.fdatasync(self._file.fileno())
        self._size += len(buf)

    def save(self, hard: HardState | None, entries: list[Entry]) -> None:
        """Make ``hard`` and ``entries`` durable (one write, one fdatasync).  A change of
        the commit index alone is written but not synced (etcd does the same): a commit
        index lost in a crash is learnt again from the leader, and no message promised it."""
        if hard is None and not entries:
            return
        # The hard state first: entries that survive a torn save imply their term did.
        buf = _records(hard, entries, self._size)
        sync = bool(entries) or (hard is not None and (hard.term, hard.vote) !=
                                 (self._hard.term, self._hard.vote))
        if hard is not None:
            self._hard = hard
        self._write(buf, sync)
        if entries:
            self._last_index = entries[-1].index

    def save_snapshot(self, meta: SnapshotMeta, data: bytes, entries_after: list[Entry]) -> None:
        """Keep a snapshot (taken here or received from the leader) and drop the log
        before it; ``entries_after`` are the log's entries past ``meta.index``."""
        body = msgpack.packb([meta.index, meta.term, list(meta.voters), list(meta.learners),
                              data], use_bin_type=True)
        name = f"snap-{meta.index:016x}.snap"
        tmp = self.dir / (name + ".tmp")
        with open(tmp, "wb", opener=private_opener) as f:
            f.write(_SNAP_MAGIC + struct.pack("<I", zlib.crc32(body)) + body)
            f.flush()
            if self.fsync_enabled:
                os.fsync(f.fileno())
        os.rename(tmp, self.dir / name)
        if self.fsync_enabled:
            fsync_dir(self.dir)
        self._snapshot_index = meta.index
        keep = f"log-{self._seq + 1:016x}.seg"
        self._roll(self._hard, [e for e in entries_after if e.index > meta.index])
        for seg in self.dir.glob("log-*.seg"):
            if seg.name < keep:
                seg.unlink()
        for snap in self.dir.glob("snap-*.snap"):
            if snap.name < name:
                snap.unlink()

    def maybe_roll(self) -> None:
        """Start a new segment once the current one is over the limit (the old ones are
        still read at start-up, and go at the next snapshot)."""
        if self._size >= self.segment_limit:
            self._roll(self._hard, [])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
