"""The launcher: one small single-threaded process per node that starts and keeps containers.

Why a separate process: nothing may fork inside the agent's Trio process, and
containers must outlive the agent (kill -9 included) with their exit statuses
and logs still collected.  The launcher is a child subreaper, so every
container it starts is its child and it reaps them all -- no monitor process
per container (containerd runs a shim each, conmon does the same for podman).
It relays each container's stdout/stderr into a CRI log file and writes each
container's state to ``STATE_DIR/<id>/state.json`` atomically, so a restarted
agent reads it back.  If the launcher itself restarts, containers still running
are re-attached by PID and start time (guarding against PID reuse) and watched
with a pidfd; their exit code is then unknown and recorded as such.

Protocol: one JSON object per line over a Unix stream socket; each request
gets one response line.  Requests (``op``): ``create`` {id, spec, log_path?} (set up, held before exec),
``start`` {id}, ``run`` (create + start), ``stats`` {id},
``kill`` {id, signal, all?}, ``stop`` {id, grace_s}, ``state`` {id},
``list``, ``wait`` {id} (answers when the container has exited), ``exec`` {id, args,
env?, cwd?, timeout_s?} (answers when the command exits, with its output),
``exec_attach`` {id, args, stdin?, tty?} (answers at once with the command's ends -- stdin's
write end if asked, stdout's and stderr's read ends, or a terminal's master end with tty --
passed as SCM_RIGHTS, then a second line with its exit code; closing the connection
hangs the command up, as closing a terminal does),
``delete`` {id, force?}; and the pods' network sandboxes (netns/sandbox.py), done here
because making a network namespace forks and the agent's Trio process must not:
``sandbox_bridge`` {net}, ``sandbox_create`` {net, pod_uid}, ``sandbox_delete`` {net,
pod_uid}, ``sandbox_reconcile`` {net, live}, where net is {cidr, bridge?, netns_prefix?,
mtu?, ipam_dir}.  Errors: ``{"ok": false, "reason", "message"}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import logging
import os
import selectors
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from runtime.cgroups import CgroupDriver, detect
from runtime.launch import Pending, StartFailed, begin, spawn_exec
from runtime.logs import CriLogWriter, format_time
from runtime.spec import ContainerSpec, SpecError, spec_from_dict

__all__ = ["ContainerState", "Launcher", "LauncherClient", "LauncherError"]

log = logging.getLogger("runtime.launcher")

MAX_REQUEST_BYTES = 1 << 20
MAX_EXEC_OUTPUT = 1 << 20  # per stream; probes and nodectl exec read small outputs


@dataclass
class ContainerState:
    id: str
    status: str = "created"  # created | running | exited
    pid: int = 0
    pid_start: int = 0  # /proc/<pid>/stat starttime: a reused PID has another
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""  # Completed | Error | OOMKilled | StartError | Unknown
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    log_path: str = ""
    cgroup_path: str = ""
    oom_kills_before: int = 0


@dataclass
class _Exec:
    conn: socket.socket
    fds: dict[int, str]
    out: dict[str, bytearray]
    timed_out: bool = False
    attached: bool = False  # its ends went to the client: reply with the exit code only


@dataclass
class _Setup:
    conn: socket.socket
    start: bool  # run: start the container as soon as it is held


@dataclass
class _Live:
    state: ContainerState
    spec: dict[str, Any] | None = None
    writer: CriLogWriter | None = None
    fds: dict[int, str] = field(default_factory=dict)  # pipe read end -> stream
    pidfd: int | None = None
    waiters: list[socket.socket] = field(default_factory=list)
    pending: Pending | None = None  # created, held before exec until start
    setup: _Setup | None = None  # being set up: who is waiting for the answer


class LauncherError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@contextlib.contextmanager
def _output_pipes() -> Iterator[tuple[tuple[int, int, int], tuple[int, int]]]:
    """stdin /dev/null and stdout/stderr pipes for a new process: yields (its stdio, our
    read ends).  Its ends are closed after the block; ours too if the block fails."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield (null, out_w, err_w), (out_r, err_r)
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        for fd in (out_w, err_w, null):
            os.close(fd)


TIOCSPTLCK, TIOCGPTPEER = 0x40045431, 0x5441


def _container_pty(pid: int) -> tuple[int, int]:
    """A terminal (master, slave) from the container's own devpts, as runc makes one, so
    the command's ``tty`` names a /dev/pts/N that exists in the container; the slave is
    opened through the master (TIOCGPTPEER), never by a path.  Falls back to the host's."""
    try:
        master = os.open(f"/proc/{pid}/root/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        master, slave = os.openpty()
        os.set_inheritable(master, False)
        os.set_inheritable(slave, False)
        return master, slave
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        os.close(master)
        raise
    return master, slave


def _available(fd: int) -> Iterator[bytes]:
    """What a non-blocking pipe holds right now, up to its EOF."""
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            return
        yield data


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot); 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    return int(data[data.rindex(b")") + 2:].split()[19])


def _now() -> str:
    return format_time(time.time_ns())


class Launcher:
    def __init__(self, state_dir: str, socket_path: str,
                 cgroups: CgroupDriver | None = None) -> None:
        self.state_dir = state_dir
        self.socket_path = socket_path
        self.cgroups = cgroups
        self.live: dict[str, _Live] = {}
        self.by_pid: dict[int, _Live] = {}
        self.execs: dict[int, _Exec] = {}
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
        self._buffers: dict[socket.socket, bytes] = {}
        self.running = True

    # --- state on disk ------------------------------------------------------------------

    def _dir(self, cid: str) -> str:
        return os.path.join(self.state_dir, cid)

    def _save(self, st: ContainerState) -> None:
        d = self._dir(st.id)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(st), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(d, "state.json"))

    def _reattach(self) -> None:
        """Containers from a previous launcher: still running ones are watched by pidfd."""
        os.makedirs(self.state_dir, exist_ok=True)
        for cid in sorted(os.listdir(self.state_dir)):
            try:
                with open(os.path.join(self._dir(cid), "state.json")) as f:
                    st = ContainerState(**json.load(f))
            except (OSError, ValueError, TypeError):
                continue
            live = _Live(st)
            with contextlib.suppress(OSError, ValueError):
                with open(os.path.join(self._dir(cid), "spec.json")) as f:
                    live.spec = json.load(f)
            self.live[cid] = live
            if st.status != "running":
                continue
            if st.pid and proc_start_time(st.pid) == st.pid_start:
                try:
                    live.pidfd = os.pidfd_open(st.pid)
                    self.sel.register(live.pidfd, selectors.EVENT_READ, ("pidfd", cid))
                    continue
                except OSError:
                    pass
            self._finish(live, None, "Unknown", "the container exited while no launcher was "
                         "watching it; its exit code is not known")

    # --- the loop ------------------------------------------------------------------------

    def serve(self) -> None:
        from runtime import syscalls as sc
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        if self.cgroups is None:
            self.cgroups = detect()
        self._reattach()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        os.makedirs(os.path.dirname(self.socket_path) or ".", exist_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
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
            self._buffers[conn] = b""
            self.sel.register(conn, selectors.EVENT_READ, ("client", None))
        elif kind == "client":
            self._client_readable(key.fileobj)  # type: ignore[arg-type]
        elif kind == "signal":
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            self._reap()
        elif kind == "log":
            self._log_readable(key.fd, arg)
        elif kind == "exec_out":
            self._exec_readable(key.fd, arg)
        elif kind == "setup_pid":
            self._setup_pid(arg)
        elif kind == "setup_held":
            self._setup_held(arg)
        elif kind == "pidfd":
            self.sel.unregister(key.fd)
            os.close(key.fd)
            live = self.live[arg]
            live.pidfd = None
            self._finish(live, None, "Unknown", "the container exited while the launcher "
                         "was not its parent; its exit code is not known")

    def _after(self, delay_s: float, fn: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay_s, self._timer_seq, fn))

    # --- children and logs ----------------------------------------------------------------

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
                self._exec_done(ex, status)
                continue
            if pid in self.setting_up:
                self.setting_up[pid] = status
                continue
            live = self.by_pid.pop(pid, None)
            if live is not None:
                self._drain_logs(live)
                self._finish(live, status, "", "")
            else:
                self.unclaimed[pid] = status
                while len(self.unclaimed) > 1024:  # orphans nobody will ask about
                    del self.unclaimed[next(iter(self.unclaimed))]

    def _finish(self, live: _Live, status: int | None, reason: str, message: str) -> None:
        st = live.state
        st.status = "exited"
        st.finished_at = _now()
        if status is not None:
            code = os.waitstatus_to_exitcode(status)
            st.signal = -code if code < 0 else None
            st.exit_code = 128 - code if code < 0 else code
            oom = False
            if st.cgroup_path and self.cgroups is not None:
                with contextlib.suppress(OSError):
                    oom = self.cgroups.usage(st.cgroup_path).oom_kills > st.oom_kills_before
            st.reason = "OOMKilled" if oom else ("Completed" if st.exit_code == 0 else "Error")
        else:
            st.exit_code = 137 if reason == "Unknown" else st.exit_code
            st.reason, st.message = reason, message
        if live.writer is not None:
            live.writer.close()
            live.writer = None
        self._save(st)
        for w in live.waiters:
            self._reply(w, {"ok": True, "state": asdict(st)})
        live.waiters.clear()

    def _log_readable(self, fd: int, arg: tuple[str, str]) -> None:
        cid, stream = arg
        live = self.live.get(cid)
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            self.sel.unregister(fd)
            os.close(fd)
            if live is not None:
                live.fds.pop(fd, None)
            return
        if live is not None and live.writer is not None:
            live.writer.write(stream, data)

    def _drain_logs(self, live: _Live) -> None:
        for fd, stream in list(live.fds.items()):
            for data in _available(fd):
                if live.writer is not None:
                    live.writer.write(stream, data)

    # --- requests --------------------------------------------------------------------------

    def _client_readable(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = self._buffers.get(conn, b"") + data
        if len(buf) > MAX_REQUEST_BYTES:
            self._reply(conn, {"ok": False, "reason": "BadRequest", "message": "request too large"})
            self._drop(conn)
            return
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            self._handle(conn, line)
        self._buffers[conn] = buf

    def _drop(self, conn: socket.socket) -> None:
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

    def _reply(self, conn: socket.socket, obj: dict[str, Any]) -> None:
        try:
            conn.setblocking(True)
            conn.sendall(json.dumps(obj).encode() + b"\n")
            conn.setblocking(False)
        except OSError:
            self._drop(conn)

    def _handle(self, conn: socket.socket, line: bytes) -> None:
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("op"), str):
                raise LauncherError("BadRequest", "a request is an object with an op")
            op = req["op"]
            fn = getattr(self, f"op_{op}", None)
            if fn is None:
                raise LauncherError("BadRequest", f"unknown op {op!r}")
            result = fn(conn, req)
            if result is not None:
                self._reply(conn, {"ok": True, **result})
        except LauncherError as exc:
            self._reply(conn, {"ok": False, "reason": exc.reason, "message": str(exc)})
        except ValueError as exc:
            self._reply(conn, {"ok": False, "reason": "BadRequest", "message": str(exc)})
        except Exception as exc:  # a bug: still an answer, or the client waits forever
            log.exception("launcher: request failed")
            self._reply(conn, {"ok": False, "reason": "InternalError",
                               "message": f"{type(exc).__name__}: {exc}"})

    def _get(self, req: dict[str, Any]) -> _Live:
        cid = req.get("id")
        if not isinstance(cid, str) or cid not in self.live:
            raise LauncherError("NotFound", f"container {cid!r} not found")
        return self.live[cid]

    def op_run(self, conn: socket.socket, req: dict[str, Any]) -> None:
        """create + start; answered once the container runs."""
        self._create(conn, req, start=True)

    def op_create(self, conn: socket.socket, req: dict[str, Any]) -> None:
        """Set the container up (namespaces, cgroup, rootfs) and hold it before exec;
        answered once it is held."""
        self._create(conn, req, start=False)

    def _create(self, conn: socket.socket, req: dict[str, Any], start: bool) -> None:
        """Fork the container's set-up and go back to serving: its processes mount and
        pivot on the other core while this loop makes the next pod's sandbox.  The answer
        follows from _setup_pid and _setup_held as the set-up reports in."""
        cid = req.get("id")
        if not isinstance(cid, str) or not cid or "/" in cid or cid.startswith("."):
            raise LauncherError("BadRequest", f"invalid container id {cid!r}")
        if cid in self.live:
            raise LauncherError("AlreadyExists", f"container {cid!r} already exists")
        try:
            spec = spec_from_dict(req.get("spec"))  # type: ignore[arg-type]
        except SpecError as exc:
            raise LauncherError("InvalidSpec", str(exc)) from None
        log_path = req.get("log_path") or os.path.join(self._dir(cid), "container.log")
        st = ContainerState(cid, log_path=log_path, cgroup_path=spec.cgroup_path)
        live = _Live(st, spec=req["spec"])
        self.live[cid] = live
        os.makedirs(self._dir(cid), exist_ok=True)
        with open(os.path.join(self._dir(cid), "spec.json"), "w") as f:
            json.dump(req["spec"], f)
        live.writer = CriLogWriter(log_path)
        if spec.cgroup_path and self.cgroups is not None and self.cgroups.exists(spec.cgroup_path):
            with contextlib.suppress(OSError):
                st.oom_kills_before = self.cgroups.usage(spec.cgroup_path).oom_kills
        try:
            with _output_pipes() as (stdio, (out_r, err_r)):
                pending = begin(spec, self.cgroups, stdio=stdio, hold=True)
        except StartFailed as exc:
            self._failed(live, exc)
            raise LauncherError(exc.reason, str(exc)) from None
        live.pending, live.setup = pending, _Setup(conn, start)
        self.setting_up[pending.mid] = None
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            os.set_blocking(fd, False)
            live.fds[fd] = stream
            self.sel.register(fd, selectors.EVENT_READ, ("log", (cid, stream)))
        self.sel.register(pending.pid_r, selectors.EVENT_READ, ("setup_pid", cid))

    def _setup_pid(self, cid: str) -> None:
        """The middle process forked the container's PID 1 (or failed) and exits."""
        live = self.live[cid]
        pending = live.pending
        assert pending is not None
        self.sel.unregister(pending.pid_r)
        try:
            raw = os.read(pending.pid_r, 4)
        finally:
            os.close(pending.pid_r)
            pending.pid_r = -1
        status = self.setting_up.pop(pending.mid, None)
        if status is None:
            with contextlib.suppress(ChildProcessError):
                status = os.waitpid(pending.mid, 0)[1]  # it is exiting: a moment at most
        pending.mid_code = os.waitstatus_to_exitcode(status) if status is not None else 128
        pending.pid = struct.unpack("<i", raw)[0] if len(raw) == 4 else 0
        if pending.pid:
            live.state.pid = pending.pid
            self.setting_up[pending.pid] = self.unclaimed.pop(pending.pid, None)
        assert pending.ready_r is not None
        self.sel.register(pending.ready_r, selectors.EVENT_READ, ("setup_held", cid))

    def _setup_held(self, cid: str) -> None:
        """The container is held before exec (or its set-up failed): answer the request."""
        live = self.live[cid]
        pending, setup = live.pending, live.setup
        assert pending is not None and setup is not None and pending.ready_r is not None
        live.setup = None
        self.sel.unregister(pending.ready_r)
        st = live.state
        pending.pid_status = self.setting_up.pop(st.pid, None) if st.pid else None
        try:
            pending.created()  # ready to read: at once
        except StartFailed as exc:
            live.pending = None
            self._failed(live, exc)
            self._reply(setup.conn, {"ok": False, "reason": exc.reason, "message": str(exc)})
            return
        st.pid_start = proc_start_time(st.pid)
        self.by_pid[st.pid] = live
        self._save(st)
        if not setup.start:
            self._reply(setup.conn, {"ok": True, "state": asdict(st)})
            return
        try:
            self._reply(setup.conn, {"ok": True, **self.op_start(setup.conn, {"id": cid})})
        except LauncherError as exc:
            self._reply(setup.conn, {"ok": False, "reason": exc.reason, "message": str(exc)})

    def op_start(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        """Let a created container exec its command."""
        live = self._get(req)
        if live.pending is None or live.setup is not None or live.state.status != "created":
            raise LauncherError("NotCreated", f"container {live.state.id!r} is "
                                f"{live.state.status}, not created")
        pending, live.pending = live.pending, None
        st = live.state
        try:
            pending.finish()
        except StartFailed as exc:
            self.by_pid.pop(st.pid, None)
            self._failed(live, exc)
            raise LauncherError(exc.reason, str(exc)) from None
        st.status, st.started_at = "running", _now()
        self._save(st)
        return {"state": asdict(st)}

    def _failed(self, live: _Live, exc: StartFailed) -> None:
        st = live.state
        st.status, st.reason, st.message = "exited", exc.reason, str(exc)
        st.exit_code = exc.exit_code
        st.finished_at = _now()
        if live.writer is not None:
            live.writer.close()
            live.writer = None
        self._save(st)

    def _exec_target(self, req: dict[str, Any]) -> tuple[_Live, list[str], ContainerSpec]:
        live = self._get(req)
        args = req.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            raise LauncherError("BadRequest", "args must be a non-empty list of strings")
        if live.state.status != "running" or live.spec is None:
            raise LauncherError("NotRunning", f"container {live.state.id!r} is not running")
        return live, args, spec_from_dict(live.spec)

    def op_exec(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        """Run a command in a running container; answers when it exits, with its output."""
        live, args, spec = self._exec_target(req)
        env = req.get("env")
        try:
            with _output_pipes() as (stdio, (out_r, err_r)):
                started = spawn_exec(live.state.pid, spec, tuple(args),
                                     env=tuple(env) if isinstance(env, list) else None,
                                     cwd=req.get("cwd"), stdio=stdio, cgroups=self.cgroups)
        except StartFailed as exc:
            raise LauncherError(exc.reason, str(exc)) from None
        ex = _Exec(conn, {out_r: "stdout", err_r: "stderr"}, {"stdout": bytearray(),
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
            self._after(float(timeout), expire)
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
                master, slave = _container_pty(live.state.pid)
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
                raise LauncherError(exc.reason, str(exc)) from None
            raise LauncherError("StartError", f"exec: {exc}") from None
        finally:
            for fd in theirs:
                os.close(fd)
        self.execs[started.pid] = _Exec(conn, {}, {}, attached=True)
        line = json.dumps({"ok": True, "pid": started.pid, "fds": len(ours)}).encode() + b"\n"
        try:
            conn.setblocking(True)
            socket.send_fds(conn, [line], ours)
            conn.setblocking(False)
        except OSError:
            self._drop(conn)
        finally:
            for fd in ours:
                os.close(fd)
        return None

    def _exec_readable(self, fd: int, pid: int) -> None:
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

    def _exec_done(self, ex: _Exec, status: int) -> None:
        for fd in list(ex.fds):
            for data in _available(fd):
                buf = ex.out[ex.fds[fd]]
                buf += data[:max(0, MAX_EXEC_OUTPUT - len(buf))]
            self.sel.unregister(fd)
            os.close(fd)
        code = os.waitstatus_to_exitcode(status)
        if ex.attached:
            self._reply(ex.conn, {"ok": True, "exit_code": 128 - code if code < 0 else code})
            return
        self._reply(ex.conn, {"ok": True, "exit_code": 128 - code if code < 0 else code,
                              "timed_out": ex.timed_out,
                              "stdout": ex.out["stdout"].decode(errors="replace"),
                              "stderr": ex.out["stderr"].decode(errors="replace")})

    def op_state(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        return {"state": asdict(self._get(req).state)}

    def op_stats(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        """cpu (ns) and memory (bytes) from the container's cgroup."""
        live = self._get(req)
        if not live.state.cgroup_path or self.cgroups is None or \
                not self.cgroups.exists(live.state.cgroup_path):
            raise LauncherError("NoCgroup", f"container {live.state.id!r} has no cgroup")
        usage = self.cgroups.usage(live.state.cgroup_path)
        return {"cpu_ns": usage.cpu_ns, "memory_bytes": usage.memory_bytes,
                "oom_kills": usage.oom_kills}

    def op_list(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        return {"containers": [asdict(v.state) for v in self.live.values()]}

    def op_wait(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        live = self._get(req)
        if live.state.status == "exited":
            return {"state": asdict(live.state)}
        live.waiters.append(conn)
        return None

    def op_kill(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        live = self._get(req)
        sig = int(req.get("signal", signal.SIGTERM))
        if live.state.status != "running":
            raise LauncherError("NotRunning", f"container {live.state.id!r} is not running")
        if req.get("all") and live.state.cgroup_path and self.cgroups is not None:
            self.cgroups.kill_all(live.state.cgroup_path, sig)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(live.state.pid, sig)
        return {}

    def op_stop(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        """SIGTERM, then after the grace period SIGKILL to every process of the container."""
        live = self._get(req)
        grace = float(req.get("grace_s", 30))
        if live.state.status != "running":
            return {"state": asdict(live.state)}
        with contextlib.suppress(ProcessLookupError):
            os.kill(live.state.pid, signal.SIGTERM)
        pid = live.state.pid

        def escalate() -> None:
            if live.state.status == "running" and live.state.pid == pid:
                if live.state.cgroup_path and self.cgroups is not None:
                    self.cgroups.kill_all(live.state.cgroup_path, signal.SIGKILL)
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        self._after(grace, escalate)
        return {}

    def op_delete(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        live = self._get(req)
        st = live.state
        if live.setup is not None:
            raise LauncherError("Busy", f"container {st.id!r} is being created; delete it "
                                "once its create is answered")
        if live.pending is not None:  # created, never started: it exits without running
            live.pending.abandon()
            live.pending = None
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(st.pid, 0)
                self.by_pid.pop(st.pid, None)
                self._finish(live, status, "", "")
        if st.status == "running":
            if not req.get("force"):
                raise LauncherError("Running", f"container {st.id!r} is running; stop it first "
                                    "or delete with force")
            if st.cgroup_path and self.cgroups is not None:
                self.cgroups.kill_all(st.cgroup_path, signal.SIGKILL)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(st.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(st.pid, 0)
                self.by_pid.pop(st.pid, None)
                self._drain_logs(live)
                self._finish(live, status, "", "")
        for fd in list(live.fds):
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(fd)
            os.close(fd)
        live.fds.clear()
        if st.cgroup_path and self.cgroups is not None and self.cgroups.exists(st.cgroup_path):
            self.cgroups.delete(st.cgroup_path)
        d = self._dir(st.id)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            os.unlink(os.path.join(d, name))
        with contextlib.suppress(OSError):
            os.rmdir(d)
        del self.live[st.id]
        return {}

    # --- pod sandboxes --------------------------------------------------------------------

    def op_sandbox_bridge(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        with _sandboxes(req) as mgr:
            mgr.ensure_bridge()
        return {}

    def op_sandbox_create(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        with _sandboxes(req) as mgr:
            return {"sandbox": asdict(mgr.create(_pod_uid(req)))}

    def op_sandbox_delete(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        with _sandboxes(req) as mgr:
            mgr.delete(_pod_uid(req))
        return {}

    def op_sandbox_reconcile(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        live = req.get("live")
        if not isinstance(live, list):
            raise LauncherError("BadRequest", "live must be a list of pod uids")
        with _sandboxes(req) as mgr:
            return {"removed": mgr.reconcile({str(u) for u in live})}


@contextlib.contextmanager
def _sandboxes(req: dict[str, Any]) -> Iterator[Any]:
    """A SandboxManager for the request's node network; its errors as LauncherErrors."""
    from netns.ipam import Ipam, IpamError
    from netns.sandbox import NodeNet, SandboxError, SandboxManager
    net = req.get("net")
    if not isinstance(net, dict) or not isinstance(net.get("cidr"), str) or \
            not isinstance(net.get("ipam_dir"), str):
        raise LauncherError("BadRequest", "net must be an object with cidr and ipam_dir")
    try:
        key = json.dumps(net, sort_keys=True)
        mgr = _MANAGERS.get(key)
        if mgr is None:
            node = NodeNet(cidr=net["cidr"], bridge=str(net.get("bridge") or "cni0"),
                           netns_prefix=str(net.get("netns_prefix") or "nodeagent-"),
                           mtu=int(net.get("mtu") or 1500))
            # The launcher is single-threaded: namespaces are made in-process, without forks.
            mgr = SandboxManager(node, Ipam(net["ipam_dir"], node.cidr), in_process=True)
            _MANAGERS[key] = mgr
        yield mgr
    except (IpamError, SandboxError, OSError, ValueError) as exc:
        raise LauncherError("SandboxError", str(exc)) from None


_MANAGERS: dict[str, Any] = {}  # one per node network: it keeps a netlink socket open


def _pod_uid(req: dict[str, Any]) -> str:
    uid = req.get("pod_uid")
    if not isinstance(uid, str) or not uid or "/" in uid or uid.startswith("."):
        raise LauncherError("BadRequest", f"invalid pod_uid {uid!r}")
    return uid


class LauncherClient:
    """Blocking client (CLI, tests); the agent will speak the same lines from Trio."""

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
                    raise
                time.sleep(0.005)
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> LauncherClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        self.sock.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise LauncherError("Unavailable", "the launcher closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        resp = json.loads(line)
        if not resp.get("ok"):
            raise LauncherError(resp.get("reason", "Error"), resp.get("message", ""))
        return resp
