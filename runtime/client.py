"""The launcher's blocking client, for the CLI, the benchmarks and the tests.

A transport only: lines are made and read by runtime/protocol.py, which raises the
launcher's errors.  The agent's client (nodeagent/containers.py) is the same over Trio.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from runtime.protocol import (
    MAX_ANSWER_BYTES,
    LauncherUnavailable,
    Op,
    decode_reply,
    encode_request,
    read_line,
)

__all__ = ["LauncherClient"]


class LauncherClient:
    def __init__(self, socket_path: str, timeout_s: float | None = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        deadline = time.monotonic() + (timeout_s or 30.0)
        while True:
            try:
                self.sock.connect(socket_path)
                break
            except BlockingIOError:  # the launcher's backlog is full: it is accepting
                if time.monotonic() > deadline:
                    self.sock.close()
                    raise
                time.sleep(0.005)
            except OSError:
                self.sock.close()
                raise
        self._buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LauncherClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, op: Op | str, **args: Any) -> dict[str, Any]:
        self.sock.sendall(encode_request(op, **args))
        while (line := read_line(self._buf, MAX_ANSWER_BYTES)) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise LauncherUnavailable("the launcher closed the connection")
            self._buf += chunk
        return decode_reply(line)
