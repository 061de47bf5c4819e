"""Starting a container process: fork, new namespaces, the PID-1 child, error reporting.

The caller (the CLI here; a single-threaded launcher process for the agent,
never the Trio process) calls :func:`start`.  It forks a short-lived child
that creates the namespaces (joining any given by path) and forks again: the
grandchild is PID 1 of the new PID namespace, sets up its rootfs and execs.
The short-lived child exits at once, so the container is reparented to the
caller, which made itself a child subreaper: no monitor process per container.

Errors before exec come back through a close-on-exec pipe as
``reason\\tmessage``; an exec that succeeds closes the pipe empty, which is
also the moment the container counts as started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import select
import socket
import struct
import sys
import termios
from collections.abc import Callable
from dataclasses import dataclass

from runtime import seccomp
from runtime import syscalls as sc
from runtime.cgroups import CgroupDriver, detect
from runtime.container_init import CONTAINER_UMASK, SetupError, setup_and_exec
from runtime.protocol import exit_code_of
from runtime.spec import ContainerSpec

__all__ = ["Pending", "StartFailed", "Started", "begin", "spawn_exec", "start", "wait"]


class StartFailed(Exception):
    """The container did not start; ``reason`` is what the pod status shows."""

    def __init__(self, reason: str, message: str, exit_code: int) -> None:
        self.reason = reason
        self.exit_code = exit_code
        super().__init__(message)


@dataclass(frozen=True)
class Started:
    pid: int  # host PID of the container's PID 1


_subreaper_set = False


def _ensure_subreaper() -> None:
    global _subreaper_set
    if not _subreaper_set:
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        _subreaper_set = True


def _child_fail(err_w: int, reason: str, message: str, code: int) -> None:
    try:
        os.write(err_w, f"{reason}\t{message}".encode()[:4000])
    finally:
        os._exit(code)


def _namespaces(spec: ContainerSpec, userns: tuple[int, int] | None = None) -> None:
    """Join the namespaces given by path, then create the rest.

    A new user namespace comes first and alone, so the others are owned by it; its
    id maps need privileges in the parent namespace, so the caller writes them
    while we wait (``userns``: our ready pipe, its done pipe).
    """
    for ns_type, path in spec.join_namespaces:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.NAMESPACE_FLAGS.get(ns_type, 0))
        finally:
            os.close(fd)
    joined = dict(spec.join_namespaces)
    if "user" in spec.namespaces and "user" not in joined and userns is not None:
        sc.unshare(sc.CLONE_NEWUSER)
        os.write(userns[0], b"U")
        if os.read(userns[1], 1) != b"M":
            raise OSError(1, "the user namespace's id maps were not written")
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    flags = 0
    for ns in spec.namespaces:
        if ns not in joined and ns != "user":
            flags |= sc.NAMESPACE_FLAGS[ns]
    sc.unshare(flags)


def _write_id_maps(pid: int, spec: ContainerSpec) -> None:
    def fmt(maps: tuple[tuple[int, int, int], ...]) -> str:
        return "".join(f"{c} {h} {n}\n" for c, h, n in maps)
    with open(f"/proc/{pid}/uid_map", "w") as f:
        f.write(fmt(spec.uid_mappings))
    with open(f"/proc/{pid}/gid_map", "w") as f:
        f.write(fmt(spec.gid_mappings))


def start(spec: ContainerSpec, cgroups: CgroupDriver | None = None,
          stdio: tuple[int, int, int] | None = None) -> Started:
    """Start the container; returns once its command was exec'd.  Raises StartFailed."""
    return begin(spec, cgroups, stdio).finish()


@dataclass
class Pending:
    """A container being set up in its own processes; finish() waits until it runs.

    Made with ``hold``, it stops just before exec: created() waits for that point
    (the container exists, namespaces and rootfs ready, its command not yet run),
    and finish() lets it exec -- crun's create and start.
    """

    mid: int
    pid_r: int
    err_r: int
    cleanup: Callable[[], None]
    ready_r: int | None = None
    go_w: int | None = None
    pid: int = 0
    mid_code: int = 128
    pid_status: int | None = None  # the container process's wait status, if reaped already
    console: socket.socket | None = None  # with spec.terminal: the terminal's master comes here

    def terminal(self) -> int:
        """The master of the container's terminal, sent by its PID 1 before it was held."""
        assert self.console is not None
        with self.console:
            self.console.settimeout(5)
            try:
                _, fds, _, _ = socket.recv_fds(self.console, 1, 1)
            except OSError as exc:
                raise StartFailed("StartError", f"terminal: {exc}", 128) from exc
            finally:
                self.console = None
        if not fds:
            raise StartFailed("StartError", "terminal: the container sent no terminal", 128)
        os.set_inheritable(fds[0], False)
        return fds[0]

    def created(self) -> int:
        """Wait until the container is set up (held before exec); returns its PID 1."""
        try:
            if self.pid_r >= 0:
                self.pid, self.mid_code = _read_pid(self.mid, self.pid_r)
                self.pid_r = -1  # read and closed
            if self.ready_r is not None:
                ready, _, _ = select.select([self.ready_r, self.err_r], [], [])
                if self.ready_r in ready and os.read(self.ready_r, 1) == b"R":
                    os.close(self.ready_r)
                    self.ready_r = None
                    return self.pid
                # It failed: raises.
                _await_exec(self.pid, self.err_r, self.mid_code, self.pid_status)
        except StartFailed:
            self.abandon()
            raise
        return self.pid

    def finish(self) -> Started:
        """Let a held container exec (or wait for an unheld one to); raises StartFailed."""
        try:
            pid = self.created()
            if self.go_w is not None:
                os.write(self.go_w, b"G")
                os.close(self.go_w)
                self.go_w = None
            return _await_exec(pid, self.err_r, self.mid_code, self.pid_status)
        except StartFailed:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Give up on it: a held container exits without running its command."""
        for fd in (self.ready_r, self.go_w):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.ready_r = self.go_w = None
        if self.console is not None:
            self.console.close()
            self.console = None
        self.cleanup()


def begin(spec: ContainerSpec, cgroups: CgroupDriver | None = None,
          stdio: tuple[int, int, int] | None = None, hold: bool = False) -> Pending:
    """Fork the container's set-up and return without waiting for it (see start()).

    Many containers started at once overlap their set-up this way.  With
    ``spec.cgroup_path`` the cgroup is created (or updated) with the spec's resources
    and the container starts inside it: the middle process joins it before it
    forks, so nothing of the container ever runs outside its limits.
    ``stdio`` gives the container's stdin, stdout and stderr (default: the caller's).
    """
    spec.check()
    _ensure_subreaper()
    driver = None
    made_cgroup = False
    if spec.cgroup_path:
        driver = cgroups or detect()
        made_cgroup = not driver.exists(spec.cgroup_path)
        try:
            driver.create(spec.cgroup_path, spec.resources)
        except OSError as exc:
            if made_cgroup:
                with contextlib.suppress(OSError):
                    driver.delete(spec.cgroup_path)
            raise StartFailed("StartError", f"cgroup {spec.cgroup_path}: {exc}", 128) from exc
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    ready_r = ready_w = go_r = go_w = None
    user_r: int | None = None
    user_w: int | None = None
    maps_r: int | None = None
    maps_w: int | None = None
    if "user" in spec.namespaces and "user" not in dict(spec.join_namespaces):
        user_r, user_w = os.pipe2(os.O_CLOEXEC)
        maps_r, maps_w = os.pipe2(os.O_CLOEXEC)
    if hold:
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
    ours, theirs = socket.socketpair() if spec.terminal else (None, None)

    def wait_for_start() -> None:
        assert ready_w is not None and go_r is not None
        os.write(ready_w, b"R")
        if os.read(go_r, 1) != b"G":
            os._exit(0)  # the creator went away or deleted us before start
    sys.stdout.flush()
    sys.stderr.flush()
    mid = os.fork()
    if mid == 0:  # short-lived child: namespaces, then the container's PID 1
        try:
            for fd in (err_r, pid_r, ready_r, go_w, user_r, maps_w):
                if fd is not None:
                    os.close(fd)
            if ours is not None:
                ours.close()
            if stdio is not None:
                for target, fd in enumerate(stdio):
                    os.dup2(fd, target)
            if driver is not None:
                driver.add(spec.cgroup_path, os.getpid())
            _namespaces(spec, (user_w, maps_r) if user_w is not None and maps_r is not None else None)
            pid1 = os.fork()
            if pid1 == 0:
                os.close(pid_w)
                try:
                    setup_and_exec(spec, wait_for_start if hold else None, err_w,
                                   theirs.fileno() if theirs is not None else None)
                except SetupError as exc:
                    _child_fail(err_w, exc.reason, str(exc), exc.exit_code)
                except OSError as exc:
                    _child_fail(err_w, "StartError", str(exc), 128)
                except BaseException as exc:
                    _child_fail(err_w, "StartError", f"{type(exc).__name__}: {exc}", 128)
            os.write(pid_w, struct.pack("<i", pid1))
            os._exit(0)
        except OSError as exc:
            _child_fail(err_w, "StartError", str(exc), 128)
        except BaseException as exc:
            _child_fail(err_w, "StartError", f"{type(exc).__name__}: {exc}", 128)
    for fd in (err_w, pid_w, ready_w, go_r, user_w, maps_r):
        if fd is not None:
            os.close(fd)
    if theirs is not None:
        theirs.close()
    if user_r is not None and maps_w is not None:
        # The middle process has made its user namespace: give it its id maps.
        try:
            if os.read(user_r, 1) == b"U":
                with contextlib.suppress(OSError):
                    _write_id_maps(mid, spec)
                os.write(maps_w, b"M")
        finally:
            os.close(user_r)
            os.close(maps_w)

    def cleanup() -> None:
        if made_cgroup and driver is not None:
            with contextlib.suppress(OSError):
                driver.delete(spec.cgroup_path)
    return Pending(mid, pid_r, err_r, cleanup, ready_r, go_w, console=ours)


def _read_pid(mid: int, pid_r: int) -> tuple[int, int]:
    """(the new process's host PID or 0, the middle process's exit code); reaps the
    middle process.  PID 0: it failed before forking, its error is on the error pipe."""
    try:
        raw = os.read(pid_r, 4)
    finally:
        os.close(pid_r)
    code = os.waitstatus_to_exitcode(os.waitpid(mid, 0)[1])
    return (struct.unpack("<i", raw)[0] if len(raw) == 4 else 0), code


def _await_exec(pid: int, err_r: int, mid_code: int = 128, status: int | None = None) -> Started:
    """EOF on the error pipe means exec happened; data means a failure to report (with
    the process's exit code: ``status`` if its caller reaped it already)."""
    try:
        failure = b""
        while chunk := os.read(err_r, 4096):
            failure += chunk
    finally:
        os.close(err_r)
    if failure:
        if pid and status is None:
            with contextlib.suppress(ChildProcessError):  # reaped elsewhere: code unknown
                status = os.waitpid(pid, 0)[1]
        code = os.waitstatus_to_exitcode(status) if status is not None else (mid_code or 128)
        reason, _, message = failure.decode(errors="replace").partition("\t")
        raise StartFailed(reason, message, code)
    if not pid:
        raise StartFailed("StartError", "container process was not created", 128)
    return Started(pid)


def _collect(mid: int, pid_r: int, err_r: int) -> Started:
    pid, mid_code = _read_pid(mid, pid_r)
    return _await_exec(pid, err_r, mid_code)


def wait(started: Started) -> int:
    """Wait for the container's PID 1; exit code, or 128 + signal as a shell reports it."""
    _, status = os.waitpid(started.pid, 0)
    return exit_code_of(status)[0]


EXEC_NAMESPACES = ("ipc", "uts", "net", "pid", "cgroup", "mnt")  # mnt last: it moves the root
_NS_FLAG = {"ipc": sc.CLONE_NEWIPC, "uts": sc.CLONE_NEWUTS, "net": sc.CLONE_NEWNET,
            "pid": sc.CLONE_NEWPID, "cgroup": sc.CLONE_NEWCGROUP, "mnt": sc.CLONE_NEWNS}


def spawn_exec(target_pid: int, spec: ContainerSpec, args: tuple[str, ...],
               env: tuple[str, ...] | None = None, cwd: str | None = None,
               stdio: tuple[int, int, int] | None = None,
               cgroups: CgroupDriver | None = None, tty: bool = False) -> Started:
    """Start ``args`` inside the running container whose PID 1 is ``target_pid``.

    Joins its cgroup and namespaces (the mount namespace last: joining it makes
    the container's root our root), then forks so the command is inside its PID
    namespace, and drops to the container's privileges.  Returns once exec'd;
    the caller reaps the returned pid.  With ``tty`` its stdio is a terminal's slave end:
    the command leads a new session with that terminal as its controlling terminal, so
    Ctrl-C reaches it as SIGINT and the terminal's hang-up as SIGHUP.  Raises StartFailed.
    """
    from runtime.container_init import drop_privileges, find_executable
    exec_spec = dataclasses.replace(spec, args=args, env=env if env is not None else spec.env,
                                    cwd=cwd or spec.cwd)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    fds: list[tuple[str, int]] = []
    try:
        for name in EXEC_NAMESPACES:
            fds.append((name, os.open(f"/proc/{target_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)))
    except OSError as exc:
        for fd in (err_r, err_w, pid_r, pid_w, *(fd for _, fd in fds)):
            os.close(fd)
        raise StartFailed("ContainerNotRunning", f"container process {target_pid}: "
                          f"{exc.strerror}", 126) from exc
    sys.stdout.flush()
    sys.stderr.flush()
    mid = os.fork()
    if mid == 0:
        try:
            os.close(err_r)
            os.close(pid_r)
            if stdio is not None:
                for target, fd in enumerate(stdio):
                    os.dup2(fd, target)
            if spec.cgroup_path:
                (cgroups or detect()).add(spec.cgroup_path, os.getpid())
            for name, fd in fds:
                sc.setns(fd, _NS_FLAG[name])
            child = os.fork()
            if child == 0:
                os.close(pid_w)
                try:
                    exe = find_executable(exec_spec.args[0], exec_spec.env)
                    if tty:
                        os.setsid()
                        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
                    os.chdir(exec_spec.cwd)
                    drop_privileges(exec_spec)
                    os.umask(CONTAINER_UMASK)
                    if exec_spec.seccomp:  # an exec session is held to the container's filter
                        try:
                            seccomp.install(exec_spec.seccomp)
                        except (OSError, ValueError) as exc:
                            raise SetupError("StartError", f"seccomp: {exc}") from exc
                    environ = {k: v for k, _, v in (e.partition("=") for e in exec_spec.env)}
                    os.execve(exe, list(exec_spec.args), environ)
                except SetupError as exc:
                    _child_fail(err_w, exc.reason, str(exc), exc.exit_code)
                except OSError as exc:
                    _child_fail(err_w, "StartError", f'exec: "{args[0]}": {exc.strerror}', 126)
                except BaseException as exc:
                    _child_fail(err_w, "StartError", f"{type(exc).__name__}: {exc}", 126)
            os.write(pid_w, struct.pack("<i", child))
            os._exit(0)
        except OSError as exc:
            _child_fail(err_w, "StartError", str(exc), 126)
        except BaseException as exc:
            _child_fail(err_w, "StartError", f"{type(exc).__name__}: {exc}", 126)
    for _, fd in fds:
        os.close(fd)
    os.close(err_w)
    os.close(pid_w)
    return _collect(mid, pid_r, err_r)
