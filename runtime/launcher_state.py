"""What the launcher keeps of each container and exec while it runs them, and the small
facts about processes it reads.  Its state on disk is ``ContainerState`` (protocol.py),
one ``state.json`` a container, written by the loop."""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.launch import Pending
from runtime.logs import CriLogWriter, format_time
from runtime.protocol import ContainerState

__all__ = ["Exec", "Live", "Setup", "available", "now_text", "proc_start_time", "read_output"]


@dataclass
class Exec:
    conn: socket.socket
    fds: dict[int, str]
    out: dict[str, bytearray]
    timed_out: bool = False
    attached: bool = False  # its ends went to the client: reply with the exit code only


@dataclass
class Setup:
    conn: socket.socket
    start: bool  # run: start the container as soon as it is held


@dataclass
class Live:
    state: ContainerState
    spec: dict[str, Any] | None = None
    writer: CriLogWriter | None = None
    fds: dict[int, str] = field(default_factory=dict)  # pipe read end -> stream
    pidfd: int | None = None
    waiters: list[socket.socket] = field(default_factory=list)
    pending: Pending | None = None  # created, held before exec until start
    setup: Setup | None = None  # being set up: who is waiting for the answer
    stdin_w: int | None = None  # the write end of its stdin (or terminal), kept for attach
    keep_stdin: bool = False
    stdin_once: bool = False


def read_output(fd: int) -> bytes | None:
    """A read of a non-blocking pipe or terminal master: None when it holds nothing now,
    b"" at its end -- for a terminal that is EIO, once every slave end is closed."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        return b""


def available(fd: int) -> Iterator[bytes]:
    """What a non-blocking pipe (or terminal master) holds right now, up to its EOF."""
    while data := read_output(fd):
        yield data


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot); 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    return int(data[data.rindex(b")") + 2:].split()[19])


def now_text() -> str:
    return format_time(time.time_ns())
