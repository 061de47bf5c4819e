"""The launcher's container ops: create, start, run, state, list, wait, stats, kill, stop,
delete.

A create forks the container's set-up and goes back to serving: its processes
mount and pivot on the other core while the loop makes the next pod's sandbox.
The answer follows from on_setup_pid and on_setup_held as the set-up reports in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import selectors
import signal
import socket
import struct
from collections.abc import Iterator
from typing import Any

from runtime.launch import StartFailed, begin
from runtime.launcher_loop import LauncherLoop
from runtime.launcher_state import Live, Setup, now_text, proc_start_time
from runtime.logs import CriLogWriter
from runtime.protocol import ContainerState, ContainerStatus, LauncherError, LauncherFailed, Stats
from runtime.spec import SpecError, spec_from_dict

__all__ = ["ContainerOps", "output_pipes"]


@contextlib.contextmanager
def output_pipes() -> Iterator[tuple[tuple[int, int, int], tuple[int, int]]]:
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


def _failure(exc: StartFailed) -> LauncherFailed:
    return LauncherFailed(exc.reason, str(exc))


class ContainerOps(LauncherLoop):
    def op_run(self, conn: socket.socket, req: dict[str, Any]) -> None:
        """create + start; answered once the container runs."""
        self._create(conn, req, start=True)

    def op_create(self, conn: socket.socket, req: dict[str, Any]) -> None:
        """Set the container up (namespaces, cgroup, rootfs) and hold it before exec;
        answered once it is held."""
        self._create(conn, req, start=False)

    def _create(self, conn: socket.socket, req: dict[str, Any], start: bool) -> None:
        cid = req.get("id")
        if not isinstance(cid, str) or not cid or "/" in cid or cid.startswith("."):
            raise LauncherFailed("BadRequest", f"invalid container id {cid!r}")
        if cid in self.live:
            raise LauncherFailed("AlreadyExists", f"container {cid!r} already exists")
        raw_spec = req.get("spec")
        try:
            spec = spec_from_dict(raw_spec)
        except SpecError as exc:
            raise LauncherFailed("InvalidSpec", str(exc)) from exc
        log_path = req.get("log_path") or os.path.join(self.dir_of(cid), "container.log")
        st = ContainerState(cid, log_path=log_path, cgroup_path=spec.cgroup_path)
        live = Live(st, spec=raw_spec)
        self.live[cid] = live
        os.makedirs(self.dir_of(cid), exist_ok=True)
        with open(os.path.join(self.dir_of(cid), "spec.json"), "w") as f:
            json.dump(raw_spec, f)
        live.writer = CriLogWriter(log_path)
        if spec.cgroup_path and self.cgroups is not None and self.cgroups.exists(spec.cgroup_path):
            with contextlib.suppress(OSError):
                st.oom_kills_before = self.cgroups.usage(spec.cgroup_path).oom_kills
        stdin_r = -1
        live.keep_stdin = req.get("stdin") is True  # for pods/attach (a container's stdin)
        live.stdin_once = req.get("stdin_once") is True
        if live.keep_stdin and not spec.terminal:
            stdin_r, live.stdin_w = os.pipe2(os.O_CLOEXEC)
        try:
            with output_pipes() as (stdio, (out_r, err_r)):
                if stdin_r >= 0:
                    stdio = (stdin_r, *stdio[1:])
                pending = begin(spec, self.cgroups, stdio=stdio, hold=True)
        except StartFailed as exc:
            self._failed(live, exc)
            raise _failure(exc) from exc
        finally:
            if stdin_r >= 0:
                os.close(stdin_r)
        live.pending, live.setup = pending, Setup(conn, start)
        self.setting_up[pending.mid] = None
        # With a terminal these pipes only see EOF: its PID 1 puts the terminal in their place.
        for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
            self._log_from(live, fd, stream)
        self.sel.register(pending.pid_r, selectors.EVENT_READ, ("setup_pid", cid))

    def _log_from(self, live: Live, fd: int, stream: str) -> None:
        os.set_blocking(fd, False)
        live.fds[fd] = stream
        self.sel.register(fd, selectors.EVENT_READ, ("log", (live.state.id, stream)))

    def on_setup_pid(self, cid: str) -> None:
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

    def on_setup_held(self, cid: str) -> None:
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
            if pending.console is not None:
                self._take_terminal(live, pending.terminal())
        except StartFailed as exc:
            live.pending = None
            self._failed(live, exc)
            self.reply_error(setup.conn, _failure(exc))
            return
        st.pid_start = proc_start_time(st.pid)
        self.by_pid[st.pid] = live
        self.save(st)
        if not setup.start:
            self.reply(setup.conn, {"state": st.to_dict()})
            return
        try:
            self.reply(setup.conn, self.op_start(setup.conn, {"id": cid}))
        except LauncherError as exc:
            self.reply_error(setup.conn, exc)

    def _take_terminal(self, live: Live, master: int) -> None:
        """The container's output is what its terminal shows (one stream, stdout, as
        containerd logs a tty), and its kept stdin is the terminal's input."""
        assert live.writer is not None
        live.writer.flush_each = True  # a prompt has no newline, and must show at once
        if live.keep_stdin:
            live.stdin_w = os.dup(master)
        self._log_from(live, master, "stdout")

    def op_start(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        """Let a created container exec its command."""
        live = self.get(req)
        st = live.state
        if live.pending is None or live.setup is not None or st.status != ContainerStatus.CREATED:
            raise LauncherFailed("NotCreated", f"container {st.id!r} is {st.status}, not created")
        pending, live.pending = live.pending, None
        try:
            pending.finish()
        except StartFailed as exc:
            self.by_pid.pop(st.pid, None)
            self._failed(live, exc)
            raise _failure(exc) from exc
        st.status, st.started_at = ContainerStatus.RUNNING, now_text()
        self.save(st)
        return {"state": st.to_dict()}

    def _failed(self, live: Live, exc: StartFailed) -> None:
        st = live.state
        st.status, st.reason, st.message = ContainerStatus.EXITED, exc.reason, str(exc)
        st.exit_code = exc.exit_code
        st.finished_at = now_text()
        self.close_io(live)
        self.save(st)

    def op_attach(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        """The write end of a running container's stdin, passed as SCM_RIGHTS
        (pods/attach).  With stdinOnce the launcher lets go of its own end, so the
        container reads EOF when that one attached client closes it."""
        live = self.get(req)
        if live.state.status != ContainerStatus.RUNNING:
            raise LauncherFailed("NotRunning", f"container {live.state.id!r} is not running")
        if live.stdin_w is None:
            raise LauncherFailed("NoStdin", f"container {live.state.id!r} takes no stdin "
                                 "(its spec does not set stdin, or stdinOnce was used)")
        if self.pass_fds(conn, {}, [live.stdin_w]) and live.stdin_once:
            os.close(live.stdin_w)
            live.stdin_w = None
        return None

    def op_state(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        return {"state": self.get(req).state.to_dict()}

    def op_stats(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        """cpu (ns) and memory (bytes) from the container's cgroup."""
        st = self.get(req).state
        if not st.cgroup_path or self.cgroups is None or not self.cgroups.exists(st.cgroup_path):
            raise LauncherFailed("NoCgroup", f"container {st.id!r} has no cgroup")
        usage = self.cgroups.usage(st.cgroup_path)
        return dataclasses.asdict(Stats(usage.cpu_ns, usage.memory_bytes, usage.oom_kills))

    def op_list(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        return {"containers": [v.state.to_dict() for v in self.live.values()]}

    def op_wait(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any] | None:
        live = self.get(req)
        if live.state.status == ContainerStatus.EXITED:
            return {"state": live.state.to_dict()}
        live.waiters.append(conn)
        return None

    def op_kill(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        st = self.get(req).state
        sig = int(req.get("signal", signal.SIGTERM))
        if st.status != ContainerStatus.RUNNING:
            raise LauncherFailed("NotRunning", f"container {st.id!r} is not running")
        self.kill_container(st, sig, every_process=bool(req.get("all")))
        return {}

    def op_stop(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        """SIGTERM, then after the grace period SIGKILL to every process of the container."""
        st = self.get(req).state
        grace = float(req.get("grace_s", 30))
        if st.status != ContainerStatus.RUNNING:
            return {"state": st.to_dict()}
        self.kill_container(st, signal.SIGTERM, every_process=False)
        pid = st.pid

        def escalate() -> None:
            if st.status == ContainerStatus.RUNNING and st.pid == pid:
                self.kill_container(st, signal.SIGKILL, every_process=True)
        self.after(grace, escalate)
        return {}

    def op_delete(self, conn: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
        live = self.get(req)
        st = live.state
        if live.setup is not None:
            raise LauncherFailed("Busy", f"container {st.id!r} is being created; delete it "
                                 "once its create is answered")
        if live.pending is not None:  # created, never started: it exits without running
            live.pending.abandon()
            live.pending = None
            self._wait_gone(live)
        if st.status == ContainerStatus.RUNNING:
            if not req.get("force"):
                raise LauncherFailed("Running", f"container {st.id!r} is running; stop it "
                                     "first or delete with force")
            self.kill_container(st, signal.SIGKILL, every_process=True)
            self._wait_gone(live)
        for fd in list(live.fds):
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(fd)
            os.close(fd)
        live.fds.clear()
        if st.cgroup_path and self.cgroups is not None and self.cgroups.exists(st.cgroup_path):
            self.cgroups.delete(st.cgroup_path)
        d = self.dir_of(st.id)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            os.unlink(os.path.join(d, name))
        with contextlib.suppress(OSError):
            os.rmdir(d)
        del self.live[st.id]
        return {}

    def _wait_gone(self, live: Live) -> None:
        """Reap a container's PID 1 that was just told to go (SIGKILL, or abandoned)."""
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(live.state.pid, 0)
            self.by_pid.pop(live.state.pid, None)
            self.drain_logs(live)
            self.finish(live, status, "", "")
