"""Container logs in the CRI format kubelet reads, with rotation, tail, since and follow.

Each line: ``2026-01-02T03:04:05.123456789Z stdout F text`` -- RFC 3339 time
with nanoseconds, the stream, ``F`` for a full line or ``P`` for part of a
line that was too long (or not yet ended when the container stopped), then
the text.  Files rotate at ``max_bytes`` into ``NAME.1`` .. ``NAME.<max_files-1>``
(``.1`` newest), as kubelet's container log manager keeps a fixed number.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CriLogWriter", "LogLine", "format_time", "parse_line", "read_logs"]

MAX_LINE_BYTES = 16 * 1024  # kubelet/containerd split longer lines into P parts


def format_time(t_ns: int) -> str:
    secs, nanos = divmod(t_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def _parse_time(text: str) -> int:
    """RFC 3339 UTC with nanoseconds -> ns since the epoch."""
    import calendar
    main, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


@dataclass(frozen=True)
class LogLine:
    time_ns: int
    stream: str
    partial: bool
    text: bytes


def parse_line(raw: bytes) -> LogLine | None:
    try:
        ts, stream, tag, text = raw.rstrip(b"\n").split(b" ", 3)
        return LogLine(_parse_time(ts.decode()), stream.decode(), tag == b"P", text)
    except ValueError:
        try:  # an empty line's text field is empty: "TS stdout F "
            ts, stream, tag = raw.rstrip(b"\n").split(b" ", 2)
            return LogLine(_parse_time(ts.decode()), stream.decode(), tag.strip() == b"P", b"")
        except ValueError:
            return None


class CriLogWriter:
    """Writes a container's stdout and stderr to one CRI log file.  Not thread-safe."""

    def __init__(self, path: str, *, max_bytes: int = 10 * 2**20, max_files: int = 5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max(1, max_files)
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        # A terminal's output is written as it comes (a prompt is a line's first part, P).
        self.flush_each = False
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, data: bytes, now_ns: int | None = None) -> None:
        """Add output of ``stream``; whole lines are written at once, a tail waits for more."""
        buf = self._pending[stream] + data
        ts = format_time(now_ns if now_ns is not None else time.time_ns()).encode()
        out = bytearray()
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl > MAX_LINE_BYTES:
                if len(buf) > MAX_LINE_BYTES:
                    out += b"%s %s P %s\n" % (ts, stream.encode(), buf[:MAX_LINE_BYTES])
                    buf = buf[MAX_LINE_BYTES:]
                    continue
                break
            out += b"%s %s F %s\n" % (ts, stream.encode(), buf[:nl])
            buf = buf[nl + 1:]
        self._pending[stream] = buf
        if buf and self.flush_each:
            out += b"%s %s P %s\n" % (ts, stream.encode(), buf)
            self._pending[stream] = b""
        if out:
            self._emit(bytes(out))

    def flush_partial(self, now_ns: int | None = None) -> None:
        """The container ended: a last line without a newline is written as P."""
        ts = format_time(now_ns if now_ns is not None else time.time_ns()).encode()
        for stream, buf in self._pending.items():
            if buf:
                self._emit(b"%s %s P %s\n" % (ts, stream.encode(), buf))
                self._pending[stream] = b""

    def _emit(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        os.write(self._fd, data)
        self._size += len(data)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.max_files == 1:
            os.unlink(self.path)
        else:
            for i in range(self.max_files - 1, 0, -1):
                src = self.path if i == 1 else f"{self.path}.{i - 1}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i}")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = 0

    def close(self) -> None:
        self.flush_partial()
        os.close(self._fd)


def _files_oldest_first(path: str) -> list[str]:
    rotated = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        rotated.append(f"{path}.{i}")
        i += 1
    return [*reversed(rotated), path] if os.path.exists(path) else list(reversed(rotated))


def read_logs(path: str, *, tail: int | None = None, since_ns: int | None = None,
              streams: tuple[str, ...] = ("stdout", "stderr")) -> list[LogLine]:
    """The log's lines, oldest first, across rotated files; P parts joined into lines."""
    lines: list[LogLine] = []
    partial: dict[str, LogLine] = {}
    for f in _files_oldest_first(path):
        with open(f, "rb") as fh:
            for raw in fh:
                line = parse_line(raw)
                if line is None or line.stream not in streams:
                    continue
                if line.partial:
                    prev = partial.get(line.stream)
                    partial[line.stream] = LogLine(prev.time_ns if prev else line.time_ns,
                                                   line.stream, True,
                                                   (prev.text if prev else b"") + line.text)
                    continue
                prev = partial.pop(line.stream, None)
                if prev is not None:
                    line = LogLine(prev.time_ns, line.stream, False, prev.text + line.text)
                lines.append(line)
    lines.extend(partial.values())  # a last unfinished line
    if since_ns is not None:
        lines = [ln for ln in lines if ln.time_ns >= since_ns]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    return lines


def follow(path: str, poll_s: float = 0.2, from_end: bool = True) -> Iterator[LogLine]:
    """Yield lines as they are written (across rotations), forever; by default only new ones."""
    pos, inode = 0, None
    if from_end and os.path.exists(path):
        st = os.stat(path)
        pos, inode = st.st_size, st.st_ino
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            time.sleep(poll_s)
            continue
        if inode is not None and st.st_ino != inode:
            pos = 0  # rotated: the new file starts from its beginning
        inode = st.st_ino
        with open(path, "rb") as fh:
            fh.seek(pos)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                pos += len(raw)
                line = parse_line(raw)
                if line is not None:
                    yield line
        time.sleep(poll_s)
