"""The launcher's exec ops: a command in a running container, its output collected
(``exec``, for probes) or its stdio handed to the client (``exec_attach``, for
pods/exec and a terminal).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import selectors
import signal
import socket
from typing import Any

from runtime import syscalls as sc
from runtime.launch import StartFailed, spawn_exec
from runtime.launcher_containers import output_pipes
from runtime.launcher_loop import LauncherLoop
from runtime.launcher_state import Exec, Live, available
from runtime.protocol import ContainerStatus, ExecResult, LauncherFailed, exit_code_of
from runtime.spec import ContainerSpec, spec_from_dict

__all__ = ["MAX_EXEC_OUTPUT", "ExecOps"]

MAX_EXEC_OUTPUT = 1 << 20  # per stream; probes and nodectl exec read small outputs


def container_pty(pid: int) -> tuple[int, int]:
    """A terminal (master, slave) from the container's own devpts, so the command's
    ``tty`` names a /dev/pts/N that exists in the container.  Falls back to the host's."""
    try:
        return sc.open_pty(f"/proc/{pid}/root/dev/pts/ptmx")
    except OSError:
        master, slave = os.openpty()
        os.set_inheritable(master, False)
        os.set_inheritable(slave, False)
        return master, slave


class ExecOps(LauncherLoop):
    def _exec_target(self, req: dict[str, Any]) -> tuple[Live, list[str], ContainerSpec]:
        live = self.get(req)
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            raise LauncherFailed("BadRequest", "args must be a non-empty list of strings")
        if live.state.status != ContainerStatus.RUNNING or live.spec is None:
            raise LauncherFailed("NotRunning", f"container {live.state.id!r} is not running")
        return live, args, spec_from_dict(live.spec)

    def op_exec(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        """Run a command in a running container; answers when it exits, with its output."""
        live, args, spec = self._exec_target(req)
        env = req.get("env")
        try:
            with output_pipes() as (stdio, (out_r, err_r)):
                started = spawn_exec(live.state.pid, spec, tuple(args),
                                     env=tuple(env) if isinstance(env, list) else None,
                                     cwd=req.get("cwd"), stdio=stdio, cgroups=self.cgroups)
        except StartFailed as exc:
            raise LauncherFailed(exc.reason, str(exc)) from exc
        ex = Exec(conn, {out_r: "stdout", err_r: "stderr"}, {"stdout": bytearray(),
                                                             "stderr": bytearray()})
        self.execs[started.pid] = ex
        for fd in ex.fds:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("exec_out", started.pid))
        timeout = req.get("timeout_s")
        if isinstance(timeout, int | float) and timeout > 0:
            def expire(pid: int = started.pid) -> None:
                if pid in self.execs:
                    self.execs[pid].timed_out = True
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self.after(float(timeout), expire)
        return None

    def op_exec_attach(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        """Start a command in a running container and hand its stdio to the client.

        The client (the agent, for pods/exec) streams them itself, so an interactive shell
        or a ``tail -f`` is not squeezed through this single-threaded loop; the launcher
        only reaps the command and reports its exit code.  runc's console socket hands a
        terminal over the same way."""
        live, args, spec = self._exec_target(req)
        tty, want_stdin = bool(req.get("tty")), bool(req.get("stdin"))
        env = spec.env
        if tty and not any(e.startswith("TERM=") for e in env):
            env = (*env, "TERM=xterm")  # as docker and containerd do for a terminal
        ours: list[int] = []  # passed to the client
        theirs: list[int] = []  # the command's ends, closed here once it has them
        try:
            if tty:
                master, slave = container_pty(live.state.pid)
                ours, theirs, stdio = [master], [slave], (slave, slave, slave)
            else:
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                ours, theirs = [out_r, err_r], [out_w, err_w]
                if want_stdin:
                    in_r, in_w = os.pipe2(os.O_CLOEXEC)
                    ours, theirs = [in_w, *ours], [in_r, *theirs]
                else:
                    in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
                    theirs.append(in_r)
                stdio = (in_r, out_w, err_w)
            started = spawn_exec(live.state.pid, spec, tuple(args), env=env, stdio=stdio,
                                 cgroups=self.cgroups, tty=tty)
        except (StartFailed, OSError) as exc:
            for fd in ours:
                os.close(fd)
            if isinstance(exc, StartFailed):
                raise LauncherFailed(exc.reason, str(exc)) from exc
            raise LauncherFailed("StartError", f"exec: {exc}") from exc
        finally:
            for fd in theirs:
                os.close(fd)
        self.execs[started.pid] = Exec(conn, {}, {}, attached=True)
        try:
            self.pass_fds(conn, {"pid": started.pid}, ours)
        finally:
            for fd in ours:
                os.close(fd)
        return None

    def op_port_dial(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        """A TCP connection to 127.0.0.1:port in the container's network namespace, handed
        to the client while it connects (the client waits for it, not this loop).  The
        socket is made in that namespace and the launcher steps straight back: it is
        single-threaded, so nothing else runs meanwhile."""
        live = self.get(req)
        port = req.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise LauncherFailed("BadRequest", "port must be an integer in 1..65535")
        if live.state.status != ContainerStatus.RUNNING:
            raise LauncherFailed("NotRunning", f"container {live.state.id!r} is not running")
        try:
            theirs = os.open(f"/proc/{live.state.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise LauncherFailed("NotRunning", f"container {live.state.id!r}: "
                                 f"{exc.strerror}") from exc
        home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(theirs, sc.CLONE_NEWNET)
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                sc.setns(home, sc.CLONE_NEWNET)
        except OSError as exc:
            raise LauncherFailed("DialError", f"socket in the pod's network: {exc}") from exc
        finally:
            os.close(theirs)
            os.close(home)
        with sock:
            sock.setblocking(False)
            code = sock.connect_ex(("127.0.0.1", port))
            if code not in (0, errno.EINPROGRESS):
                raise LauncherFailed("DialError", f"connect to 127.0.0.1:{port}: "
                                     f"{os.strerror(code)}")
            self.pass_fds(conn, {}, [sock.fileno()])
        return None

    def on_exec_out(self, fd: int, pid: int) -> None:
        ex = self.execs.get(pid)
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data or ex is None:
            self.sel.unregister(fd)
            os.close(fd)
            if ex is not None:
                ex.fds.pop(fd, None)
            return
        buf = ex.out[ex.fds[fd]]
        if len(buf) < MAX_EXEC_OUTPUT:
            buf += data[:MAX_EXEC_OUTPUT - len(buf)]

    def exec_done(self, ex: Exec, status: int) -> None:
        for fd in list(ex.fds):
            for data in available(fd):
                buf = ex.out[ex.fds[fd]]
                buf += data[:max(0, MAX_EXEC_OUTPUT - len(buf))]
            self.sel.unregister(fd)
            os.close(fd)
        code, _ = exit_code_of(status)
        if ex.attached:
            self.reply(ex.conn, {"exit_code": code})
            return
        self.reply(ex.conn, dataclasses.asdict(ExecResult(
            code, ex.out["stdout"].decode(errors="replace"),
            ex.out["stderr"].decode(errors="replace"), ex.timed_out)))
