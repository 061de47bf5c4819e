"""The launcher's loop: one selector over the socket, the containers' pipes and SIGCHLD;
reaping; each container's state on disk; reading requests and writing answers.

Single-threaded on purpose: the launcher forks (containers, execs, network
namespaces), and a forking process with threads is a deadlock waiting for a lock
held by a thread that did not survive the fork.  Everything that waits (a
container's set-up, an exec, a stop's grace period) is an fd in the selector or a
timer, never a blocking call.  The ops themselves are in launcher_containers.py and
launcher_exec.py; runtime/launcher.py puts them together.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from runtime.cgroups import CgroupDriver, detect
from runtime.launcher_state import Exec, Live, available, now_text, proc_start_time, read_output
from runtime.protocol import (
    ContainerState,
    ContainerStatus,
    LauncherError,
    LauncherFailed,
    LauncherNotFound,
    Op,
    decode_request,
    encode_error,
    encode_reply,
    exit_code_of,
    read_line,
)

__all__ = ["ExtraOp", "LauncherLoop"]

log = logging.getLogger("runtime.launcher")

# An op the launcher serves for another library (the pods' sandboxes): request -> result.
ExtraOp = Callable[[dict[str, Any]], dict[str, Any]]


class LauncherLoop:
    def __init__(self, state_dir: str, socket_path: str, cgroups: CgroupDriver | None = None,
                 extra_ops: Mapping[Op, ExtraOp] | None = None) -> None:
        self.state_dir = state_dir
        self.socket_path = socket_path
        self.cgroups = cgroups
        self.extra_ops = dict(extra_ops or {})
        self.live: dict[str, Live] = {}
        self.by_pid: dict[int, Live] = {}
        self.execs: dict[int, Exec] = {}
        # Processes of containers being set up, and their wait status once _reap took it:
        # the middle processes (which exit once they forked the container's PID 1), and the
        # PID 1s until they are held before exec (one that fails exits).
        self.setting_up: dict[int, int | None] = {}
        # Children reaped before anyone claimed them: a container's PID 1 that failed at
        # once can exit before its middle process's report of its PID is read.
        self.unclaimed: dict[int, int] = {}
        self.sel = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self._buffers: dict[socket.socket, bytearray] = {}
        self.running = True

    # --- hooks of the ops -------------------------------------------------------------------

    def on_setup_pid(self, cid: str) -> None:
        raise NotImplementedError

    def on_setup_held(self, cid: str) -> None:
        raise NotImplementedError

    def on_exec_out(self, fd: int, pid: int) -> None:
        raise NotImplementedError

    def exec_done(self, ex: Exec, status: int) -> None:
        raise NotImplementedError

    # --- state on disk ----------------------------------------------------------------------

    def dir_of(self, cid: str) -> str:
        return os.path.join(self.state_dir, cid)

    def save(self, st: ContainerState) -> None:
        d = self.dir_of(st.id)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(st.to_dict(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(d, "state.json"))

    def _reattach(self) -> None:
        """Containers from a previous launcher: still running ones are watched by pidfd."""
        os.makedirs(self.state_dir, exist_ok=True)
        for cid in sorted(os.listdir(self.state_dir)):
            if not os.path.isdir(self.dir_of(cid)):  # the agent keeps the launcher's log here
                continue
            try:
                with open(os.path.join(self.dir_of(cid), "state.json")) as f:
                    st = ContainerState.from_dict(json.load(f))
            except (OSError, ValueError, LauncherError) as exc:
                log.warning("launcher: container %r has no readable state: %s", cid, exc)
                continue
            live = Live(st)
            with contextlib.suppress(OSError, ValueError):
                with open(os.path.join(self.dir_of(cid), "spec.json")) as f:
                    live.spec = json.load(f)
            self.live[cid] = live
            if st.status != ContainerStatus.RUNNING:
                continue
            if st.pid and proc_start_time(st.pid) == st.pid_start:
                try:
                    live.pidfd = os.pidfd_open(st.pid)
                    self.sel.register(live.pidfd, selectors.EVENT_READ, ("pidfd", cid))
                    continue
                except OSError:
                    pass
            self.finish(live, None, "Unknown", "the container exited while no launcher was "
                        "watching it; its exit code is not known")

    # --- the loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        from runtime import syscalls as sc
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        if self.cgroups is None:
            self.cgroups = detect()
        self._reattach()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        private_parent(self.socket_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # made 0600: no moment in which others may connect
        try:
            listener.bind(self.socket_path)
        finally:
            os.umask(old)
        os.chmod(self.socket_path, 0o600)
        listener.listen(1024)  # bursts: a client per pod being started at once
        listener.setblocking(False)
        self.sel.register(listener, selectors.EVENT_READ, ("listen", None))
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        self.sel.register(wake_r, selectors.EVENT_READ, ("signal", None))
        self._reap()  # children that exited before the handler was installed
        while self.running:
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
            for key, _ in self.sel.select(timeout):
                # An earlier event of this batch may have closed this fd (a reaped exec's pipes).
                if self.sel.get_map().get(key.fd) is not key:
                    continue
                try:
                    self._dispatch(key, listener, wake_r)
                except Exception:  # one bad event must not take down every container's keeper
                    log.exception("launcher: event %s failed", key.data)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, fn = heapq.heappop(self.timers)
                fn()
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    def _dispatch(self, key: selectors.SelectorKey, listener: socket.socket, wake_r: int) -> None:
        kind, arg = key.data
        if kind == "listen":
            conn, _ = listener.accept()
            conn.setblocking(False)
            self._buffers[conn] = bytearray()
            self.sel.register(conn, selectors.EVENT_READ, ("client", None))
        elif kind == "client":
            assert isinstance(key.fileobj, socket.socket)
            self._client_readable(key.fileobj)
        elif kind == "signal":
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            self._reap()
        elif kind == "log":
            self._log_readable(key.fd, arg)
        elif kind == "exec_out":
            self.on_exec_out(key.fd, arg)
        elif kind == "setup_pid":
            self.on_setup_pid(arg)
        elif kind == "setup_held":
            self.on_setup_held(arg)
        elif kind == "pidfd":
            self.sel.unregister(key.fd)
            os.close(key.fd)
            live = self.live[arg]
            live.pidfd = None
            self.finish(live, None, "Unknown", "the container exited while the launcher "
                        "was not its parent; its exit code is not known")

    def after(self, delay_s: float, fn: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay_s, self._timer_seq, fn))

    # --- children and logs ------------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            ex = self.execs.pop(pid, None)
            if ex is not None:
                self.exec_done(ex, status)
                continue
            if pid in self.setting_up:
                self.setting_up[pid] = status
                continue
            live = self.by_pid.pop(pid, None)
            if live is not None:
                self.drain_logs(live)
                self.finish(live, status, "", "")
            else:
                self.unclaimed[pid] = status
                while len(self.unclaimed) > 1024:  # orphans nobody will ask about
                    del self.unclaimed[next(iter(self.unclaimed))]

    def finish(self, live: Live, status: int | None, reason: str, message: str) -> None:
        """The container exited (``status`` is its wait status; None: not known how)."""
        st = live.state
        st.status = ContainerStatus.EXITED
        st.finished_at = now_text()
        if status is not None:
            st.exit_code, st.signal = exit_code_of(status)
            oom = False
            if st.cgroup_path and self.cgroups is not None:
                with contextlib.suppress(OSError):
                    oom = self.cgroups.usage(st.cgroup_path).oom_kills > st.oom_kills_before
            st.reason = "OOMKilled" if oom else ("Completed" if st.exit_code == 0 else "Error")
        else:
            st.exit_code = 137 if reason == "Unknown" else st.exit_code
            st.reason, st.message = reason, message
        self.close_io(live)
        self.save(st)
        for w in live.waiters:
            self.reply(w, {"state": st.to_dict()})
        live.waiters.clear()

    def close_io(self, live: Live) -> None:
        """The container ended (or never started): its log and kept stdin are closed."""
        if live.stdin_w is not None:
            os.close(live.stdin_w)
            live.stdin_w = None
        if live.writer is not None:
            live.writer.close()
            live.writer = None

    def _log_readable(self, fd: int, arg: tuple[str, str]) -> None:
        cid, stream = arg
        live = self.live.get(cid)
        data = read_output(fd)
        if data is None:
            return
        if not data:
            self.sel.unregister(fd)
            os.close(fd)
            if live is not None:
                live.fds.pop(fd, None)
            return
        if live is not None and live.writer is not None:
            live.writer.write(stream, data)

    def drain_logs(self, live: Live) -> None:
        for fd, stream in list(live.fds.items()):
            for data in available(fd):
                if live.writer is not None:
                    live.writer.write(stream, data)

    # --- requests ---------------------------------------------------------------------------

    def _client_readable(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        buf = self._buffers.setdefault(conn, bytearray())
        buf += data
        while True:
            try:
                line = read_line(buf)
            except LauncherError as exc:
                self.reply_error(conn, exc)
                self.drop(conn)
                return
            if line is None:
                return
            self._handle(conn, line)

    def drop(self, conn: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn)
        self._buffers.pop(conn, None)
        for live in self.live.values():
            if conn in live.waiters:
                live.waiters.remove(conn)
        for pid, ex in self.execs.items():
            if ex.conn is conn:  # nobody is left to read its output: hang it up
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        conn.close()

    def _send(self, conn: socket.socket, line: bytes) -> None:
        try:
            conn.setblocking(True)
            conn.sendall(line)
            conn.setblocking(False)
        except OSError:
            self.drop(conn)

    def pass_fds(self, conn: socket.socket, result: dict[str, Any], fds: list[int]) -> bool:
        """Answer with descriptors (SCM_RIGHTS) beside the line; False (the client dropped)
        if the client is gone.  The caller still owns and closes its copies."""
        try:
            conn.setblocking(True)
            socket.send_fds(conn, [encode_reply({**result, "fds": len(fds)})], fds)
            conn.setblocking(False)
            return True
        except OSError:
            self.drop(conn)
            return False

    def reply(self, conn: socket.socket, result: dict[str, Any]) -> None:
        self._send(conn, encode_reply(result))

    def reply_error(self, conn: socket.socket, exc: LauncherError) -> None:
        self._send(conn, encode_error(exc))

    def _handle(self, conn: socket.socket, line: bytes) -> None:
        try:
            op, req = decode_request(line)
            method: Callable[[socket.socket, dict[str, Any]], dict[str, Any] | None] | None = \
                getattr(self, f"op_{op.value}", None)
            if method is not None:
                result = method(conn, req)
            elif op in self.extra_ops:
                result = self.extra_ops[op](req)
            else:
                raise LauncherFailed("NotSupported", f"this launcher does not serve {op}")
            if result is not None:
                self.reply(conn, result)
        except LauncherError as exc:
            self.reply_error(conn, exc)
        except ValueError as exc:
            self.reply_error(conn, LauncherFailed("BadRequest", str(exc)))
        except Exception as exc:  # a bug: still an answer, or the client waits forever
            log.exception("launcher: request failed")
            self.reply_error(conn, LauncherFailed("InternalError", f"{type(exc).__name__}: {exc}"))

    def get(self, req: dict[str, Any]) -> Live:
        cid = req.get("id")
        if not isinstance(cid, str) or cid not in self.live:
            raise LauncherNotFound("NotFound", f"container {cid!r} not found")
        return self.live[cid]

    def kill_container(self, st: ContainerState, sig: int, *, every_process: bool) -> None:
        """Signal the container's PID 1, or with ``every_process`` all of its cgroup (a
        container without a cgroup has only its PID 1 to signal)."""
        if every_process and st.cgroup_path and self.cgroups is not None:
            self.cgroups.kill_all(st.cgroup_path, sig)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(st.pid, sig)


def private_parent(socket_path: str) -> None:
    """The socket's directory, root's alone (0700): whoever reaches the socket runs
    anything as root on this machine.  Made so if missing; a directory others may write
    to (/tmp) is refused -- the socket needs one of its own."""
    parent = os.path.dirname(os.path.abspath(socket_path))
    os.makedirs(parent, mode=0o700, exist_ok=True)
    st = os.stat(parent)
    if st.st_mode & 0o002:
        raise SystemExit(f"launcher: {parent} is writable by everyone: put the socket in a "
                         "directory of its own")
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        os.chmod(parent, 0o700)
