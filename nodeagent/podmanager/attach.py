"""pods/attach: a running container's own process, as kubectl attach (and run -i) sees it.

Its output is what it writes from now on, read from its log file as ``logs -f`` reads
it (the launcher owns the pipes and writes the file; a second reader of the pipes would
steal lines from the log).  Its stdin is the write end the launcher keeps for a
container whose spec sets ``stdin: true``; with ``tty: true`` that is the master of the
container's terminal, which is also what a resize sets.  Shaped as an exec session
(podexec.ExecStreams), so the WebSocket side is the same code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import trio

from nodeagent.api.podlogs import POLL_S, follow_lines
from nodeagent.podmanager.runtime import set_window_size

__all__ = ["AttachSession"]

ALIVE_POLL_S = 0.5
TERMINAL_POLL_S = 0.03  # a terminal's echo is felt: a keystroke's should come back at once


class _Output:
    """One stream of the container's output, as ExecStreams' ``receive_some``."""

    def __init__(self, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        self._receive = receive

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            return b""


class AttachSession:
    def __init__(self, log_path: str, stdin: Any, tty: bool,
                 running: Callable[[], bool]) -> None:
        self.stdin = stdin
        self._log_path, self._running, self._tty = log_path, running, tty
        self._out_send, out = trio.open_memory_channel[bytes](64)
        self.stdout = _Output(out)
        if tty:  # one terminal: everything on stdout
            self._err_send, self.stderr = self._out_send, None
        else:
            self._err_send, err = trio.open_memory_channel[bytes](64)
            self.stderr = _Output(err)

    def resize(self, columns: int, rows: int) -> None:
        """Set the container's terminal size (a shell redraws for it); pipes have none."""
        if self._tty and self.stdin is not None:
            with contextlib.suppress(OSError):  # asked with tty, but the container has none
                set_window_size(self.stdin.fileno(), columns, rows)

    async def wait(self) -> int:
        """Pass the container's output on until it exits; its attach ends then (0)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow)
            while self._running():  # noqa: ASYNC110  (the relist is polled, not signalled)
                await trio.sleep(ALIVE_POLL_S)
            await trio.sleep(ALIVE_POLL_S)  # its last lines reach the file and the follower
            nursery.cancel_scope.cancel()
        self._out_send.close()
        self._err_send.close()
        return 0

    async def _follow(self) -> None:
        async for lines in follow_lines(self._log_path, TERMINAL_POLL_S if self._tty
                                        else POLL_S):
            for line in lines:
                text = line.text + (b"" if line.partial else b"\n")
                await (self._err_send if line.stream == "stderr" else self._out_send).send(text)

    async def aclose(self) -> None:
        self._out_send.close()
        self._err_send.close()
        if self.stdin is not None:
            await self.stdin.aclose()
