"""The pod manager's view of the container launcher: calls, exec, and the relist (PLEG).

Ordinary calls share one connection; ``exec`` opens its own, because the
launcher answers an exec only when the command ends and a probe's exec must
not hold up the relist or a container start.  The relist lists every container
once a second, as kubelet's PLEG does, and reports which pods' containers
changed (started, exited, vanished), so a crash reaches the pod's worker within
a second without one waiting call per container.
"""

from __future__ import annotations

import array
import fcntl
import json
import logging
import os
import socket
import struct
import termios
from collections.abc import Callable
from typing import Any

import trio

from netns.sandbox import Sandbox
from nodeagent.containers import Launcher, LauncherUnavailable
from nodeagent.podmanager.spec import parse_container_id

__all__ = ["ContainerError", "ExecSession", "RuntimeClient"]

log = logging.getLogger("nodeagent.podmanager")
RELIST_S = 1.0
CALL_TIMEOUT_S = 30.0
CONTAINER_LANES = 4


class ContainerError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class ExecSession:
    """A command running in a container whose stdio is ours to stream.

    ``stdin`` (None unless asked), ``stdout`` and ``stderr`` (None with a terminal, whose
    one end carries both) are Trio streams; ``wait()`` returns the exit code once the
    launcher reaped the command.  Closing the session hangs the command up."""

    def __init__(self, sock: trio.socket.SocketType, buffered: bytes, fds: list[int], *,
                 stdin: bool, tty: bool) -> None:
        self._sock, self._buf = sock, buffered
        streams = [trio.lowlevel.FdStream(fd) for fd in fds]
        self.terminal: trio.lowlevel.FdStream | None = streams[0] if tty else None
        self.stdin = streams.pop(0) if stdin or tty else None
        self.stdout = self.stdin if tty else streams[0]
        self.stderr = None if tty else streams[1]
        self._streams = [s for s in (self.stdin, self.stdout, self.stderr) if s is not None]

    def resize(self, columns: int, rows: int) -> None:
        if self.terminal is not None:
            fcntl.ioctl(self.terminal.fileno(), termios.TIOCSWINSZ,
                        struct.pack("HHHH", rows, columns, 0, 0))

    async def wait(self) -> int:
        while b"\n" not in self._buf:
            chunk = await self._sock.recv(4096)
            if not chunk:
                return 137  # the launcher went away: the command is as good as killed
            self._buf += chunk
        try:
            return int(json.loads(self._buf.partition(b"\n")[0]).get("exit_code", 137))
        except (ValueError, TypeError):
            return 137

    async def aclose(self) -> None:
        for stream in {id(s): s for s in self._streams}.values():
            await stream.aclose()
        self._sock.close()


class RuntimeClient:
    def __init__(self, launcher: Launcher, socket_path: str) -> None:
        self.socket_path = socket_path
        # Connections by lane.  The launcher serves whichever connection has a request and
        # answers a container's run when its set-up (done by the container's own processes)
        # reports in; so with a few connections for containers and one for sandboxes, a
        # burst of 30 pods is a pipeline: one pod's container sets up while the next pod's
        # sandbox is made, instead of every sandbox first and every container after.
        self.idle: dict[str, list[Launcher]] = {"containers": [launcher], "sandboxes": []}
        self.limits = {"containers": trio.CapacityLimiter(CONTAINER_LANES),
                       "sandboxes": trio.CapacityLimiter(1)}
        self.containers: dict[str, dict[str, Any]] = {}  # id -> launcher state, last relist

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        lane = "sandboxes" if op.startswith("sandbox_") else "containers"
        async with self.limits[lane]:
            if self.idle[lane]:
                conn = self.idle[lane].pop()
            else:
                try:
                    conn = await Launcher.connect(self.socket_path)
                except LauncherUnavailable as exc:
                    raise ContainerError("Unavailable", str(exc)) from None
            with trio.move_on_after(CALL_TIMEOUT_S):
                try:
                    reply = await conn.call(op, **args)
                except (LauncherUnavailable, OSError, trio.BrokenResourceError) as exc:
                    await conn.aclose()  # a restarted launcher: the next call reconnects
                    raise ContainerError("Unavailable", f"the launcher: {exc}") from None
                self.idle[lane].append(conn)
                if not reply.get("ok"):
                    raise ContainerError(reply.get("reason", "Unknown"), reply.get("message", ""))
                return reply
            # The connection may hold a late answer: it is not used again.
            await conn.aclose()
        raise ContainerError("Timeout", f"the launcher did not answer {op} in {CALL_TIMEOUT_S:g}s")

    def note(self, cid: str, state: dict[str, Any]) -> None:
        """A container's state as a call just returned it, until the next relist."""
        self.containers[cid] = state

    async def exec(self, cid: str, args: list[str], timeout_s: float) -> tuple[int, str]:
        """(exit code, output); a command that outlives the timeout is killed (137)."""
        code, out, err = await self.exec_streams(cid, args, timeout_s)
        return code, (out + err).decode(errors="replace")

    async def exec_streams(self, cid: str, args: list[str],
                           timeout_s: float | None = None) -> tuple[int, bytes, bytes]:
        """(exit code, stdout, stderr), on a connection of its own: the launcher answers an
        exec when the command ends."""
        try:
            conn = await Launcher.connect(self.socket_path)
        except LauncherUnavailable as exc:
            return 126, b"", str(exc).encode()
        try:
            reply = await conn.call("exec", id=cid, args=args, timeout_s=timeout_s)
        finally:
            await conn.aclose()
        if not reply.get("ok"):
            return 126, b"", reply.get("message", "").encode()
        return (int(reply["exit_code"]), reply.get("stdout", "").encode(),
                reply.get("stderr", "").encode())

    async def exec_attach(self, cid: str, args: list[str], *, stdin: bool,
                          tty: bool) -> ExecSession:
        """Start a command whose stdio this process streams (pods/exec); see ExecSession."""
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.connect(self.socket_path)
            await sock.send(json.dumps({"op": "exec_attach", "id": cid, "args": args,
                                        "stdin": stdin, "tty": tty}).encode() + b"\n")
            with trio.fail_after(CALL_TIMEOUT_S):
                data, ancdata, _, _ = await sock.recvmsg(65536, socket.CMSG_SPACE(3 * 4))
        except (OSError, trio.TooSlowError) as exc:
            sock.close()
            raise ContainerError("Unavailable", f"the launcher: {exc}") from None
        fds = [fd for level, kind, raw in ancdata
               if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
               for fd in array.array("i", raw[:len(raw) - len(raw) % 4])]
        line, _, rest = data.partition(b"\n")
        try:
            reply = json.loads(line) if line else {"ok": False, "message": "no answer"}
        except ValueError:
            reply = {"ok": False, "message": f"bad answer {line[:80]!r}"}
        if not reply.get("ok") or len(fds) != reply.get("fds"):
            for fd in fds:
                os.close(fd)
            sock.close()
            raise ContainerError(reply.get("reason", "Unknown"),
                                 reply.get("message", "the launcher passed no stdio"))
        return ExecSession(sock, rest, fds, stdin=stdin, tty=tty)

    async def relist(self) -> set[str]:
        """Refresh ``containers``; returns the pod uids whose containers changed."""
        listed = {c["id"]: c for c in (await self.call("list"))["containers"]}
        changed = set()
        for cid in set(listed) | set(self.containers):
            before, now = self.containers.get(cid), listed.get(cid)
            if before is None or now is None or before.get("status") != now.get("status") or \
                    before.get("pid") != now.get("pid"):
                parsed = parse_container_id(cid)
                if parsed:
                    changed.add(parsed[0])
        self.containers = listed
        return changed

    async def run_relist(self, wake: Callable[[set[str]], None], *,
                         task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.relist()
        task_status.started()
        while True:
            await trio.sleep(RELIST_S)
            try:
                changed = await self.relist()
            except (ContainerError, LauncherUnavailable, OSError) as exc:
                log.warning("relist failed: %s", exc)
                continue
            if changed:
                wake(changed)

    # --- pod sandboxes (made by the launcher: making a network namespace forks) -------------

    async def ensure_bridge(self, net: dict[str, Any]) -> None:
        await self.call("sandbox_bridge", net=net)

    async def create_sandbox(self, net: dict[str, Any], pod_uid: str) -> Sandbox:
        return Sandbox(**(await self.call("sandbox_create", net=net, pod_uid=pod_uid))["sandbox"])

    async def delete_sandbox(self, net: dict[str, Any], pod_uid: str) -> None:
        await self.call("sandbox_delete", net=net, pod_uid=pod_uid)

    async def reconcile_sandboxes(self, net: dict[str, Any], live: set[str]) -> list[str]:
        return (await self.call("sandbox_reconcile", net=net, live=sorted(live)))["removed"]

    def of_pod(self, uid: str) -> dict[str, list[tuple[int, dict[str, Any]]]]:
        """container name -> [(attempt, state)] newest first, from the last relist."""
        out: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for cid, st in self.containers.items():
            parsed = parse_container_id(cid)
            if parsed and parsed[0] == uid:
                out.setdefault(parsed[1], []).append((parsed[2], st))
        for attempts in out.values():
            attempts.sort(key=lambda a: -a[0])
        return out
