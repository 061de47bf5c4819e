"""Inside the new namespaces, before exec: mounts, pivot_root, hostname, limits, privileges.

Runs in the forked process that becomes the container's PID 1, so it must not
touch Trio, threads or anything that allocates locks another thread may hold.
Every failure raises :class:`SetupError` with the reason the pod status shows
(StartError, like runc/crun's exit 127/128) and what failed; the caller writes
it to the error pipe and exits.
"""

from __future__ import annotations

import fcntl
import os
import resource
import signal
import socket
import stat
import termios
from collections.abc import Callable

from runtime import seccomp
from runtime import syscalls as sc
from runtime.protocol import exit_code_of
from runtime.spec import CAPABILITY_NUMBERS, RLIMITS, ContainerSpec, Mount

# The mounts every container gets unless its spec mounts something at the same place
# (runc's and crun's default spec).
DEFAULT_MOUNTS = (
    Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
    Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
    Mount("/dev/pts", "devpts", "devpts",
          ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
    Mount("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
    Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
    Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore"), ("ptmx", "pts/ptmx"))

_FLAGS = {
    "ro": (sc.MS_RDONLY, True), "rw": (sc.MS_RDONLY, False),
    "nosuid": (sc.MS_NOSUID, True), "suid": (sc.MS_NOSUID, False),
    "nodev": (sc.MS_NODEV, True), "dev": (sc.MS_NODEV, False),
    "noexec": (sc.MS_NOEXEC, True), "exec": (sc.MS_NOEXEC, False),
    "sync": (sc.MS_SYNCHRONOUS, True), "async": (sc.MS_SYNCHRONOUS, False),
    "noatime": (sc.MS_NOATIME, True), "nodiratime": (sc.MS_NODIRATIME, True),
    "relatime": (sc.MS_RELATIME, True), "strictatime": (sc.MS_STRICTATIME, True),
    "bind": (sc.MS_BIND, True), "rbind": (sc.MS_BIND | sc.MS_REC, True),
    "private": (sc.MS_PRIVATE, True), "rprivate": (sc.MS_PRIVATE | sc.MS_REC, True),
    "slave": (sc.MS_SLAVE, True), "rslave": (sc.MS_SLAVE | sc.MS_REC, True),
    "shared": (sc.MS_SHARED, True), "rshared": (sc.MS_SHARED | sc.MS_REC, True),
}
_PROPAGATION = sc.MS_PRIVATE | sc.MS_SLAVE | sc.MS_SHARED | sc.MS_UNBINDABLE


class SetupError(Exception):
    def __init__(self, reason: str, message: str, exit_code: int = 128) -> None:
        self.reason = reason
        self.exit_code = exit_code
        super().__init__(message)


def _locked(path: str) -> int:
    """nosuid/nodev/noexec a mount already has: a remount must keep them (in a user
    namespace the kernel refuses to drop them)."""
    f = os.statvfs(path).f_flag
    return f & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


CONTAINER_UMASK = 0o022


def mount_options(options: tuple[str, ...]) -> tuple[int, str]:
    flags, data = 0, []
    for opt in options:
        if opt in _FLAGS:
            bit, on = _FLAGS[opt]
            flags = flags | bit if on else flags & ~bit
        else:
            data.append(opt)
    return flags, ",".join(data)


def _inside(rootfs: str, path: str) -> str:
    """``path`` in the container as a host path, refusing to leave the rootfs via symlinks."""
    target = os.path.normpath(os.path.join(rootfs, path.lstrip("/")))
    real = os.path.realpath(target)
    if real != rootfs and not real.startswith(rootfs + "/"):
        raise SetupError("StartError", f"mount destination {path} resolves outside the rootfs")
    return real


def _ensure(path: str, directory: bool) -> None:
    if os.path.lexists(path):
        return
    if directory:
        os.makedirs(path, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def do_mount(rootfs: str, m: Mount) -> None:
    flags, data = mount_options(m.options)
    target = _inside(rootfs, m.destination)
    is_bind = m.type == "bind" or bool(flags & sc.MS_BIND)
    if is_bind:
        try:
            st = os.stat(m.source)
        except OSError as exc:
            raise SetupError("StartError", f"mount source {m.source}: {exc.strerror}") from exc
        _ensure(target, stat.S_ISDIR(st.st_mode))
        sc.mount(m.source, target, None, flags & (sc.MS_BIND | sc.MS_REC) | sc.MS_BIND)
        extra = flags & ~(sc.MS_BIND | sc.MS_REC | _PROPAGATION)
        if extra:  # a bind mount takes its flags only on a remount
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | extra | _locked(target))
    else:
        _ensure(target, True)
        sc.mount(m.source or m.type, target, m.type, flags & ~_PROPAGATION, data or None)
    if flags & _PROPAGATION:
        sc.mount(None, target, None, flags & (_PROPAGATION | sc.MS_REC))


def setup_dev(rootfs: str) -> None:
    dev = os.path.join(rootfs, "dev")
    for name in DEVICES:
        target = os.path.join(dev, name)
        if not os.path.lexists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
        sc.mount(f"/dev/{name}", target, None, sc.MS_BIND)
    for name, link in DEV_LINKS:
        path = os.path.join(dev, name)
        if not os.path.lexists(path):
            os.symlink(link, path)


def mask_paths(rootfs: str, spec: ContainerSpec) -> None:
    for path in spec.masked_paths:
        target = os.path.join(rootfs, path.lstrip("/"))
        if os.path.isdir(target) and not os.path.islink(target):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY)
        elif os.path.exists(target):
            sc.mount("/dev/null", target, None, sc.MS_BIND)
    for path in spec.readonly_paths:
        target = os.path.join(rootfs, path.lstrip("/"))
        if os.path.exists(target):
            sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, target, None,
                     sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC | _locked(target))


def setup_rootfs(spec: ContainerSpec) -> None:
    rootfs = os.path.realpath(spec.rootfs)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    try:
        sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)
    except PermissionError as exc:
        raise SetupError("StartError", f"rootfs {rootfs} cannot be reached from the container's "
                         "user namespace: every directory above it must be searchable by "
                         "the mapped host id") from exc
    own = {os.path.normpath(m.destination) for m in spec.mounts}
    for m in DEFAULT_MOUNTS:
        if m.destination not in own:
            try:
                do_mount(rootfs, m)
            except OSError:
                if m.type == "sysfs":
                    # A user namespace that does not own the network namespace may not mount
                    # sysfs: show the host's, read-only, as runc does.
                    do_mount(rootfs, Mount("/sys", "bind", "/sys", ("rbind", "ro", "nosuid",
                                                                    "noexec", "nodev")))
                elif m.type != "mqueue":  # mqueue is optional (not every kernel has it)
                    raise
    for m in spec.mounts:
        do_mount(rootfs, m)
    if os.path.ismount(os.path.join(rootfs, "dev")):
        setup_dev(rootfs)
    mask_paths(rootfs, spec)
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    if spec.readonly_rootfs:
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _locked("/"))


def find_executable(name: str, env: tuple[str, ...]) -> str:
    if "/" in name:
        return name
    path = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/bin:/bin")
    for d in path.split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SetupError("StartError", f'exec: "{name}": executable file not found in $PATH', 127)


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def drop_privileges(spec: ContainerSpec) -> None:
    for name, soft, hard in spec.rlimits:
        if name == "RLIMIT_NOFILE":  # the kernel refuses more than fs.nr_open
            most = _nr_open()
            soft, hard = min(soft, most), min(hard, most)
        try:
            resource.setrlimit(RLIMITS[name], (soft, hard))
        except (ValueError, PermissionError):
            # Raising a hard limit needs CAP_SYS_RESOURCE, which a node in a sandbox may lack:
            # the container gets the most the node has, as Docker's default does there.
            current = resource.getrlimit(RLIMITS[name])[1]
            limit = current if current != resource.RLIM_INFINITY else hard
            resource.setrlimit(RLIMITS[name], (min(soft, limit), min(hard, limit)))
    keep = 0
    for cap in spec.capabilities:
        keep |= 1 << CAPABILITY_NUMBERS[cap]
    for n in range(sc.last_cap() + 1):
        if not keep & (1 << n):
            sc.prctl(sc.PR_CAPBSET_DROP, n)
    os.setgroups(list(spec.additional_gids))
    os.setgid(spec.gid)
    os.setuid(spec.uid)
    if spec.uid == 0:
        sc.capset(keep)
    if spec.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)


FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                     signal.SIGUSR2, signal.SIGWINCH)


def run_as_init(exe: str, args: list[str], env: dict[str, str], close_fd: int | None) -> None:
    """PID 1 as a minimal init (docker run --init): the command runs as PID 2; signals are
    forwarded to it; every orphan that lands on PID 1 is reaped; exits with its status."""
    child = os.fork()
    if child == 0:
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.execve(exe, args, env)
        except OSError as exc:
            if close_fd is not None:
                os.write(close_fd, f"StartError\texec: {args[0]!r}: {exc.strerror}".encode())
            os._exit(127)
    # A long-lived init forked from the launcher must not keep the launcher's sockets,
    # pipes or signal wake-up fd: only stdio stays.
    signal.set_wakeup_fd(-1)
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") < 65536 else 65536)
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            os._exit(exit_code_of(status)[0])


def take_terminal(console: int, uid: int) -> None:
    """Make a terminal of the container's own devpts this process's stdio and controlling
    terminal, and send its master to the launcher over ``console`` (runc's console
    socket), so that the tty a shell names (/dev/pts/0) exists in the container."""
    try:
        master, slave = sc.open_pty("/dev/pts/ptmx")
        os.fchown(slave, uid, -1)  # the user's own terminal, as login gives it
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for target in (0, 1, 2):
            os.dup2(slave, target)
        os.close(slave)
        with socket.socket(fileno=console) as sock:
            socket.send_fds(sock, [b"T"], [master])
        os.close(master)
    except OSError as exc:
        raise SetupError("StartError", f"terminal: {exc}") from exc


def setup_and_exec(spec: ContainerSpec, before_exec: Callable[[], None] | None = None,
                   error_fd: int | None = None, console: int | None = None) -> None:
    """In the container's PID 1: build its world and exec its command.  Never returns.

    ``before_exec`` runs last, once everything is ready: a created-but-not-started
    container waits there for its start.  ``console``: where a terminal's master goes
    (with ``spec.terminal``).
    """
    setup_rootfs(spec)
    if "uts" in spec.namespaces and spec.hostname:
        sc.sethostname(spec.hostname)
    if console is not None:
        take_terminal(console, spec.uid)
    exe = find_executable(spec.args[0], spec.env)
    try:
        os.chdir(spec.cwd)
    except OSError as exc:
        raise SetupError("StartError", f"chdir to cwd ({spec.cwd}) set in config.json failed: "
                         f"{exc.strerror}") from exc
    drop_privileges(spec)
    os.umask(CONTAINER_UMASK)  # not the agent's 077 (runc's default for a process)
    if spec.seccomp:  # last: after it, this process may no longer mount or unshare
        try:
            seccomp.install(spec.seccomp)
        except (OSError, ValueError) as exc:
            raise SetupError("StartError", f"seccomp: {exc}") from exc
    env = {k: v for k, _, v in (e.partition("=") for e in spec.env)}
    if before_exec is not None:
        before_exec()
    if spec.init:
        run_as_init(exe, list(spec.args), env, error_fd)
    try:
        os.execve(exe, list(spec.args), env)
    except FileNotFoundError as exc:
        raise SetupError("StartError", f'exec: "{spec.args[0]}": no such file or directory',
                         127) from exc
    except PermissionError as exc:
        raise SetupError("StartError", f'exec: "{spec.args[0]}": permission denied', 126) from exc
    except OSError as exc:
        raise SetupError("StartError", f'exec: "{spec.args[0]}": {exc.strerror}') from exc
