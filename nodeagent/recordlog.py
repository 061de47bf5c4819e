"""The record format both logs share (the store's WAL and Raft's log), and how recovery
reads it back.

A record is ``u32 length | u32 crc32(payload) | payload``, little endian.  A log is
only ever appended to, one ``write`` and one fdatasync per batch, so a crash can
leave at most the end of the last write unfinished: a torn tail.  That tail was
never acknowledged (acknowledgement waits for the sync) and recovery cuts it off.
Anything else that fails its check is damage to acknowledged data, and recovery
refuses to start rather than drop it.  The two must never be confused: cutting at
a "torn tail" that is followed by good records silently loses those records.

So a bad record at ``offset`` counts as torn only when nothing after it can be a
record that was acknowledged:

- its header, or the payload its length announces, runs past the end of the file
  (the write stopped short);
- its CRC fails and its payload ends exactly at the end of the file (the last
  record, half written);
- every byte from it to the end of the file is zero (blocks the file system
  allocated for the write but never filled);
- every whole record after it belongs to the same write as the damaged one: sectors
  of one write may reach the disk in any order, so a torn sector can sit before good
  ones of the same, unacknowledged, write.  Each
  record carries the offset its write began at; a good record of a *later* write
  (begun after the damage) proves the damaged one was acknowledged.

``read_segment`` applies these rules to one segment of a log and cuts a torn tail off.
A record's length is not capped on reading: a whole record with a good CRC is
read whatever its size (an older version wrote records over today's cap, and they
hold acknowledged data).  The cap applies when appending, where a record over it
is refused before anything is written.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HEADER", "MAX_RECORD_BYTES", "Damage", "LogDamaged", "RecordTooLarge",
           "encode_record", "read_segment", "scan"]

HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 64 * 1024 * 1024


class RecordTooLarge(ValueError):
    """A record over MAX_RECORD_BYTES: refused at append, nothing written."""


class LogDamaged(Exception):
    """Damage that is not a torn tail of the last segment: acknowledged data is at stake,
    and the log refuses to start (each log raises its own error from this one)."""


@dataclass(frozen=True)
class Damage:
    offset: int
    torn: bool  # an unfinished last write, safe to cut off; else acknowledged data is damaged
    reason: str


def encode_record(payload: bytes, max_bytes: int = MAX_RECORD_BYTES) -> bytes:
    """One record; raises RecordTooLarge for a payload over ``max_bytes`` (or empty)."""
    if not payload or len(payload) > max_bytes:
        raise RecordTooLarge(f"a {len(payload)}-byte record is over the log's limit "
                             f"({max_bytes} bytes)")
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _zeros_from(data: bytes, pos: int) -> bool:
    return data.count(0, pos) == len(data) - pos


def _torn_within_last_write(data: bytes, damage: Damage,
                            write_start: Callable[[bytes], int | None]) -> bool:
    """Whether every whole record after ``damage`` (skipping the damaged one by its length
    field) began its write at or before the damage: then they are all one write with it,
    the last one, never acknowledged.  ``write_start(payload)`` reads a record's write
    offset (None for a record that carries none: an older log, taken as a later write).
    With no whole record after it (the length field may be the damaged part), True."""
    length, _crc = HEADER.unpack_from(data, damage.offset)
    start = damage.offset + HEADER.size + length
    if start >= len(data):
        return True
    found, _ = scan(data[start:])
    for payload, _end in found:
        began = write_start(payload)
        if began is None or began > damage.offset:
            return False
    return True


def scan(data: bytes) -> tuple[list[tuple[bytes, int]], Damage | None]:
    """The whole records of ``data`` as (payload, end offset), and the first damage, if
    any, classified as torn tail or not (see the module's docstring)."""
    records: list[tuple[bytes, int]] = []
    pos = 0
    end_of_file = len(data)
    while pos < end_of_file:
        if pos + HEADER.size > end_of_file:
            return records, Damage(pos, True, "short header at the end")
        length, crc = HEADER.unpack_from(data, pos)
        if length == 0:  # never written: every payload holds at least one byte
            torn = _zeros_from(data, pos)
            return records, Damage(pos, torn, "zero-filled tail" if torn else "empty record")
        start = pos + HEADER.size
        if start + length > end_of_file:
            return records, Damage(pos, True, f"a {length}-byte record cut short by the end")
        payload = data[start:start + length]
        if zlib.crc32(payload) != crc:
            if start + length == end_of_file:
                return records, Damage(pos, True, "checksum mismatch in the last record")
            if _zeros_from(data, pos):
                return records, Damage(pos, True, "zero-filled tail")
            return records, Damage(pos, False, "checksum mismatch before the end")
        pos = start + length
        records.append((payload, pos))
    return records, None


def read_segment(path: Path, *, last: bool,
                 write_start: Callable[[bytes], int | None]) -> tuple[list[tuple[bytes, int]], int]:
    """The whole records of one segment as (payload, end offset), and how many bytes of
    torn tail were cut off it (truncated and synced).  ``write_start(payload)`` reads the
    offset a record's write began at (None where the record carries none).  Raises
    LogDamaged for damage that is not a torn tail, or a torn tail before the last segment."""
    data = path.read_bytes()
    found, damage = scan(data)
    if damage is None:
        return found, 0
    if not (damage.torn or _torn_within_last_write(data, damage, write_start)):
        raise LogDamaged(f"{path}: damaged record at byte {damage.offset} ({damage.reason}); "
                         "refusing to drop what follows")
    if not last:
        raise LogDamaged(f"{path}: damaged record at byte {damage.offset} before the last "
                         "segment")
    with open(path, "r+b") as f:
        f.truncate(damage.offset)
        os.fsync(f.fileno())
    return found, len(data) - damage.offset
