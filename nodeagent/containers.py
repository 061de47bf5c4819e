"""The agent's side of the container launcher (runtime/launcher.py).

The launcher is a separate process so that containers outlive the agent and
nothing forks inside the agent's Trio loop.  The agent finds it by its socket
and starts one (detached, in its own session) only if none answers; a
restarted agent therefore reconnects to the same launcher and reads back every
container's state, including exits that happened while it was down.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import trio

from runtime.protocol import (
    MAX_ANSWER_BYTES,
    LauncherUnavailable,
    Op,
    decode_reply,
    encode_request,
    read_line,
)

__all__ = ["LauncherConnection", "ensure_launcher"]

log = logging.getLogger("nodeagent.containers")


class LauncherConnection:
    """One connection to the launcher, used from Trio: a transport for runtime/protocol.py.
    Calls on it take turns; ``call`` returns the answer's result or raises its
    LauncherError (LauncherUnavailable, with the cause, when the socket fails)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._lock = trio.Lock()

    @classmethod
    async def connect(cls, socket_path: str) -> LauncherConnection:
        try:
            return cls(await trio.open_unix_socket(socket_path))
        except OSError as exc:
            raise LauncherUnavailable(f"{socket_path}: {exc.strerror or exc}") from exc

    async def call(self, op: Op, **args: Any) -> dict[str, Any]:
        async with self._lock:
            try:
                await self._stream.send_all(encode_request(op, **args))
                while (line := read_line(self._buf, MAX_ANSWER_BYTES)) is None:
                    chunk = await self._stream.receive_some(65536)
                    if not chunk:
                        raise LauncherUnavailable("the launcher closed the connection")
                    self._buf += chunk
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise LauncherUnavailable(f"the launcher: {exc}") from exc
        return decode_reply(line)

    async def aclose(self) -> None:
        await self._stream.aclose()


async def ensure_launcher(socket_path: str, state_dir: str,
                          timeout_s: float = 10.0) -> LauncherConnection:
    """Connect to the launcher at ``socket_path``, starting one if none answers."""
    try:
        return await LauncherConnection.connect(socket_path)
    except LauncherUnavailable:
        pass
    log_path = os.path.join(state_dir, "launcher.log")
    pid = await trio.to_thread.run_sync(_spawn_launcher, socket_path, state_dir, log_path)
    log.info("launcher started pid=%d socket=%s", pid, socket_path)
    with trio.move_on_after(timeout_s):
        while True:
            try:
                return await LauncherConnection.connect(socket_path)
            except LauncherUnavailable:
                await trio.sleep(0.05)
    raise LauncherUnavailable(f"the launcher did not come up at {socket_path}; see {log_path}")


def _spawn_launcher(socket_path: str, state_dir: str, log_path: str) -> int:
    os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
    os.makedirs(state_dir, exist_ok=True)
    with open(log_path, "ab") as out:
        # Its own session: a SIGTERM/SIGKILL of the agent's process group leaves it running.
        proc = subprocess.Popen([sys.executable, "-m", "runtime", "launcher", "--state-dir",
                                 state_dir, "--socket", socket_path], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, start_new_session=True, close_fds=True)
    return proc.pid
