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
import logging
import os
import socket
import struct
import termios
from collections.abc import Callable
from typing import Any, NamedTuple

import trio

from netns.sandbox import Sandbox
from nodeagent.containers import LauncherConnection
from nodeagent.podmanager.spec import parse_container_id
from runtime.protocol import (
    ContainerState,
    ContainerStatus,
    ExecResult,
    LauncherError,
    LauncherFailed,
    LauncherUnavailable,
    Op,
    Stats,
    decode_reply,
    encode_request,
    read_line,
)

__all__ = ["Attempt", "ExecSession", "RuntimeClient", "set_window_size"]

log = logging.getLogger("nodeagent.podmanager")
RELIST_S = 1.0
CALL_TIMEOUT_S = 30.0
CONTAINER_LANES = 4


class Attempt(NamedTuple):
    """One run of a pod's container: its number (the restart count when it started) and
    the launcher's state of it."""
    number: int
    state: ContainerState


def set_window_size(fd: int, columns: int, rows: int) -> None:
    """A terminal's size, set through its master (the shell in it gets SIGWINCH)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class ExecSession:
    """A command running in a container whose stdio is ours to stream.

    ``stdin`` (None unless asked), ``stdout`` and ``stderr`` (None with a terminal, whose
    one end carries both) are Trio streams; ``wait()`` returns the exit code once the
    launcher reaped the command.  Closing the session hangs the command up."""

    def __init__(self, sock: trio.socket.SocketType, buffered: bytes, fds: list[int], *,
                 stdin: bool, tty: bool) -> None:
        self._sock, self._buf = sock, bytearray(buffered)
        streams = [trio.lowlevel.FdStream(fd) for fd in fds]
        self.terminal: trio.lowlevel.FdStream | None = streams[0] if tty else None
        self.stdin = streams.pop(0) if stdin or tty else None
        self.stdout = self.stdin if tty else streams[0]
        self.stderr = None if tty else streams[1]
        self._streams = [s for s in (self.stdin, self.stdout, self.stderr) if s is not None]

    def resize(self, columns: int, rows: int) -> None:
        if self.terminal is not None:
            set_window_size(self.terminal.fileno(), columns, rows)

    async def wait(self) -> int:
        try:
            while (line := read_line(self._buf)) is None:
                chunk = await self._sock.recv(4096)
                if not chunk:
                    return 137  # the launcher went away: the command is as good as killed
                self._buf += chunk
            return int(decode_reply(line).get("exit_code", 137))
        except (LauncherError, ValueError, TypeError):
            return 137

    async def aclose(self) -> None:
        for stream in {id(s): s for s in self._streams}.values():
            await stream.aclose()
        self._sock.close()


class RuntimeClient:
    """The launcher's ops as the pod manager needs them, typed; every failure is a
    LauncherError (runtime/protocol.py)."""

    def __init__(self, launcher: LauncherConnection, socket_path: str) -> None:
        self.socket_path = socket_path
        # Connections by lane.  The launcher serves whichever connection has a request and
        # answers a container's run when its set-up (done by the container's own processes)
        # reports in; so with a few connections for containers and one for sandboxes, a
        # burst of 30 pods is a pipeline: one pod's container sets up while the next pod's
        # sandbox is made, instead of every sandbox first and every container after.
        self.idle: dict[str, list[LauncherConnection]] = {"containers": [launcher],
                                                          "sandboxes": []}
        self.limits = {"containers": trio.CapacityLimiter(CONTAINER_LANES),
                       "sandboxes": trio.CapacityLimiter(1)}
        self.containers: dict[str, ContainerState] = {}  # by id, as of the last relist

    async def call(self, op: Op, **args: Any) -> dict[str, Any]:
        lane = "sandboxes" if op.is_sandbox else "containers"
        async with self.limits[lane]:
            conn = self.idle[lane].pop() if self.idle[lane] else \
                await LauncherConnection.connect(self.socket_path)
            with trio.move_on_after(CALL_TIMEOUT_S):
                try:
                    reply = await conn.call(op, **args)
                except LauncherUnavailable:
                    await conn.aclose()  # a restarted launcher: the next call reconnects
                    raise
                except LauncherError:
                    self.idle[lane].append(conn)  # it answered: the connection is good
                    raise
                self.idle[lane].append(conn)
                return reply
            # The connection may hold a late answer: it is not used again.
            await conn.aclose()
        raise LauncherUnavailable(f"the launcher did not answer {op} in {CALL_TIMEOUT_S:g}s",
                                  "Timeout")

    async def run(self, cid: str, spec: dict[str, Any], log_path: str, *, stdin: bool = False,
                  stdin_once: bool = False) -> ContainerState:
        """Start a container; its state is noted here until the next relist (a relist per
        start would list 30 times for 30 starts).  ``stdin``: its stdin is kept open for
        pods/attach."""
        st = ContainerState.from_dict((await self.call(
            Op.RUN, id=cid, spec=spec, log_path=log_path, stdin=stdin,
            stdin_once=stdin_once)).get("state"))
        self.containers[cid] = st
        return st

    async def stop(self, cid: str, grace_s: float) -> None:
        await self.call(Op.STOP, id=cid, grace_s=grace_s)

    async def delete(self, cid: str) -> None:
        await self.call(Op.DELETE, id=cid, force=True)

    async def stats(self, cid: str) -> Stats:
        return Stats.from_dict(await self.call(Op.STATS, id=cid))

    async def exec(self, cid: str, args: list[str], timeout_s: float) -> tuple[int, str]:
        """(exit code, output); a command that outlives the timeout is killed (137)."""
        result = await self.exec_streams(cid, args, timeout_s)
        return result.exit_code, result.stdout + result.stderr

    async def exec_streams(self, cid: str, args: list[str],
                           timeout_s: float | None = None) -> ExecResult:
        """The command's exit code and output, on a connection of its own: the launcher
        answers an exec when the command ends.  A command that could not run exits 126,
        as a shell's does."""
        try:
            conn = await LauncherConnection.connect(self.socket_path)
        except LauncherUnavailable as exc:
            return ExecResult(126, stderr=str(exc))
        try:
            return ExecResult.from_dict(await conn.call(Op.EXEC, id=cid, args=args,
                                                        timeout_s=timeout_s))
        except LauncherError as exc:
            return ExecResult(126, stderr=str(exc))
        finally:
            await conn.aclose()

    async def exec_attach(self, cid: str, args: list[str], *, stdin: bool,
                          tty: bool) -> ExecSession:
        """Start a command whose stdio this process streams (pods/exec); see ExecSession."""
        sock, fds, rest = await self._passing_fds(Op.EXEC_ATTACH, id=cid, args=args,
                                                  stdin=stdin, tty=tty)
        return ExecSession(sock, rest, fds, stdin=stdin, tty=tty)

    async def attach_stdin(self, cid: str) -> trio.lowlevel.FdStream:
        """The write end of a running container's stdin (pods/attach)."""
        sock, fds, _ = await self._passing_fds(Op.ATTACH, id=cid)
        sock.close()
        return trio.lowlevel.FdStream(fds[0])

    async def dial(self, cid: str, port: int) -> trio.SocketStream:
        """A TCP connection to 127.0.0.1:port in the container's network namespace
        (pods/portforward); OSError if nothing listens there."""
        sock, fds, _ = await self._passing_fds(Op.PORT_DIAL, id=cid, port=port)
        sock.close()
        conn = trio.socket.from_stdlib_socket(socket.socket(fileno=fds[0]))
        try:
            await trio.lowlevel.wait_writable(conn)  # the launcher started the connect
            code = conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
        except BaseException:
            conn.close()
            raise
        return trio.SocketStream(conn)

    async def _passing_fds(self, op: Op, **args: Any) -> tuple[Any, list[int], bytes]:
        """Ask the launcher for descriptors (SCM_RIGHTS) on a connection of its own:
        (that connection, the descriptors, what followed the answer line)."""
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.connect(self.socket_path)
            await sock.send(encode_request(op, **args))
            with trio.fail_after(CALL_TIMEOUT_S):
                data, ancdata, _, _ = await sock.recvmsg(65536, socket.CMSG_SPACE(3 * 4))
        except (OSError, trio.TooSlowError) as exc:
            sock.close()
            raise LauncherUnavailable(f"the launcher: {exc}") from exc
        fds = [fd for level, kind, raw in ancdata
               if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS
               for fd in array.array("i", raw[:len(raw) - len(raw) % 4])]
        line, _, rest = data.partition(b"\n")
        try:
            reply = decode_reply(line)
            if len(fds) != reply.get("fds"):
                raise LauncherFailed("BadAnswer", "the launcher passed no descriptors")
        except LauncherError:
            for fd in fds:
                os.close(fd)
            sock.close()
            raise
        return sock, fds, rest

    async def relist(self) -> set[str]:
        """Refresh ``containers``; returns the pod uids whose containers changed."""
        listed = {st.id: st for st in map(ContainerState.from_dict,
                                          (await self.call(Op.LIST)).get("containers") or [])}
        changed = set()
        for cid in set(listed) | set(self.containers):
            before, now = self.containers.get(cid), listed.get(cid)
            if before is None or now is None or before.status != now.status or \
                    before.pid != now.pid:
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
            except LauncherError as exc:
                log.warning("relist failed: %s", exc)
                continue
            if changed:
                wake(changed)

    # --- pod sandboxes (made by the launcher: making a network namespace forks) -------------

    async def ensure_bridge(self, net: dict[str, Any]) -> None:
        await self.call(Op.SANDBOX_BRIDGE, net=net)

    async def create_sandbox(self, net: dict[str, Any], pod_uid: str) -> Sandbox:
        reply = await self.call(Op.SANDBOX_CREATE, net=net, pod_uid=pod_uid)
        try:
            return Sandbox(**reply["sandbox"])
        except (KeyError, TypeError) as exc:
            raise LauncherFailed("BadAnswer", f"sandbox of pod {pod_uid}: {exc}") from exc

    async def delete_sandbox(self, net: dict[str, Any], pod_uid: str) -> None:
        await self.call(Op.SANDBOX_DELETE, net=net, pod_uid=pod_uid)

    async def reconcile_sandboxes(self, net: dict[str, Any], live: set[str]) -> list[str]:
        return list((await self.call(Op.SANDBOX_RECONCILE, net=net, live=sorted(live)))
                    .get("removed") or [])

    def of_pod(self, uid: str) -> dict[str, list[Attempt]]:
        """container name -> its attempts newest first, as of the last relist."""
        out: dict[str, list[Attempt]] = {}
        for cid, st in self.containers.items():
            parsed = parse_container_id(cid)
            if parsed and parsed[0] == uid:
                out.setdefault(parsed[1], []).append(Attempt(parsed[2], st))
        for attempts in out.values():
            attempts.sort(key=lambda a: -a.number)
        return out

    def running(self, uid: str) -> dict[str, ContainerState]:
        """container name -> its running attempt's state, for the pod's running containers."""
        return {name: at[0].state for name, at in self.of_pod(uid).items()
                if at and at[0].state.status == ContainerStatus.RUNNING}
