"""The launcher process: containers that outlive their clients, logs, stop, re-attach, delete.

Needs root; a real launcher process with its own state dir and socket, killed
and its containers removed after each test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import needs_root

from containers import build_bundle, remove_cgroup_tree
from runtime.client import LauncherClient
from runtime.logs import read_logs
from runtime.protocol import LauncherError
from runtime.spec import load_bundle, spec_to_dict

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_root("containers")


@pytest.fixture(scope="module")
def base_spec(tmp_path_factory: pytest.TempPathFactory):
    return load_bundle(str(build_bundle(tmp_path_factory.mktemp("bundle"))))


class LauncherProc:
    def __init__(self, tmp: Path) -> None:
        self.state = tmp / "state"
        self.sock = str(tmp / "launcher.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.cgroup_parent = f"nodeagent-test-{uuid.uuid4().hex[:8]}"

    def start(self) -> LauncherProc:
        self.proc = subprocess.Popen([sys.executable, "-m", "runtime", "launcher", "--state-dir",
                                      str(self.state), "--socket", self.sock], cwd=ROOT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            assert time.monotonic() < deadline, "launcher did not start"
            time.sleep(0.02)
        return self

    def client(self) -> LauncherClient:
        return LauncherClient(self.sock)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        os.unlink(self.sock)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[LauncherProc]:
    lp = LauncherProc(tmp_path).start()
    try:
        yield lp
    finally:
        if lp.proc is not None and lp.proc.poll() is None:
            with lp.client() as c:
                for st in c.call("list")["containers"]:
                    c.call("delete", id=st["id"], force=True)
            lp.proc.terminate()
            lp.proc.wait(10)
        # Whatever state the launcher was left in, no process or cgroup outlives the test.
        remove_cgroup_tree(lp.cgroup_parent)


def spec(base, launcher: LauncherProc, cid: str, *args: str) -> dict:
    return spec_to_dict(dataclasses.replace(base, args=args,
                                            cgroup_path=f"{launcher.cgroup_parent}/{cid}"))


def test_output_goes_to_a_cri_log_and_the_exit_is_recorded(base_spec, launcher):
    with launcher.client() as c:
        c.call("run", id="echo", spec=spec(base_spec, launcher, "echo", "sh", "-c",
                                            "echo out1; echo err1 >&2; printf tail; exit 3"))
        st = c.call("wait", id="echo")["state"]
    assert (st["status"], st["exit_code"], st["reason"]) == ("exited", 3, "Error")
    lines = read_logs(st["log_path"])
    assert {(ln.stream, ln.text) for ln in lines} == {("stdout", b"out1"), ("stderr", b"err1"),
                                                      ("stdout", b"tail")}
    raw = Path(st["log_path"]).read_bytes()
    assert b" stdout F out1\n" in raw and b" stdout P tail\n" in raw


def test_containers_keep_running_and_are_reaped_without_a_client(base_spec, launcher):
    with launcher.client() as c:
        c.call("run", id="short", spec=spec(base_spec, launcher, "short", "sh", "-c",
                                             "sleep 0.3; exit 5"))
    time.sleep(1.0)  # no client connected while it exits
    with launcher.client() as c:
        st = c.call("state", id="short")["state"]
    assert (st["status"], st["exit_code"]) == ("exited", 5)
    state_file = launcher.state / "short" / "state.json"
    assert '"exit_code": 5' in state_file.read_text()


def test_stop_waits_for_the_grace_period_then_kills_everything(base_spec, launcher):
    with launcher.client() as c:
        c.call("run", id="polite", spec=spec(base_spec, launcher, "polite", "sh", "-c",
                                              "trap 'exit 0' TERM; sleep 30 & wait"))
        c.call("run", id="stubborn", spec=spec(base_spec, launcher, "stubborn", "sh", "-c",
                                                "sleep 30 & sleep 30 & wait"))
        time.sleep(0.3)
        t0 = time.monotonic()
        c.call("stop", id="polite", grace_s=10)
        c.call("stop", id="stubborn", grace_s=0.5)
        polite = c.call("wait", id="polite")["state"]
        stubborn = c.call("wait", id="stubborn")["state"]
        waited = time.monotonic() - t0
    assert polite["exit_code"] == 0 and polite["reason"] == "Completed"
    # PID 1 without a TERM handler ignores SIGTERM; after the grace it is SIGKILLed.
    assert stubborn["exit_code"] == 137 and stubborn["signal"] == signal.SIGKILL
    assert waited >= 0.5
    cg = Path("/sys/fs/cgroup/pids") / launcher.cgroup_parent / "stubborn" / "cgroup.procs"
    assert cg.read_text() == ""


def test_oom_kill_is_reported(base_spec, launcher):
    s = spec(base_spec, launcher, "hog", "sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' x)")
    s["resources"]["memory_limit_bytes"] = 16 * 2**20
    with launcher.client() as c:
        c.call("run", id="hog", spec=s)
        st = c.call("wait", id="hog")["state"]
    assert (st["exit_code"], st["reason"]) == (137, "OOMKilled")


def test_a_restarted_launcher_reattaches_running_containers(base_spec, launcher):
    # Orphaned by the launcher's death, the container comes to us rather than to init
    # (as it would come to systemd on a node); we reap it at the end.
    from runtime import syscalls as sc
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    with launcher.client() as c:
        st = c.call("run", id="long", spec=spec(base_spec, launcher, "long", "sleep", "30"))["state"]
    pid = st["pid"]
    launcher.kill9()
    assert Path(f"/proc/{pid}").exists()  # the container outlived its launcher
    launcher.start()
    with launcher.client() as c:
        assert c.call("state", id="long")["state"]["status"] == "running"
        c.call("kill", id="long", signal=signal.SIGKILL)
        after = c.call("wait", id="long")["state"]
    assert after["status"] == "exited" and after["reason"] == "Unknown"
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def test_bad_requests_are_answered_and_the_launcher_keeps_serving(base_spec, launcher):
    with launcher.client() as c:
        for bad in ({"op": "nope"}, {"op": "run", "id": "../x", "spec": {}},
                    {"op": "run", "id": "x", "spec": {"rootfs": "/", "args": []}},
                    {"op": "state", "id": "missing"}):
            with pytest.raises(LauncherError):
                c.call(**bad)
        c.sock.sendall(b"{not json\n")
        assert b'"reason": "BadRequest"' in c.sock.recv(65536)
        with pytest.raises(LauncherError) as info:
            c.call("run", id="nobin", spec=spec(base_spec, launcher, "nobin", "no-such-binary"))
        assert info.value.reason == "StartError"
        assert c.call("list")["containers"][0]["reason"] == "StartError"


def test_delete_removes_cgroup_state_and_logs(base_spec, launcher):
    with launcher.client() as c:
        c.call("run", id="gone", spec=spec(base_spec, launcher, "gone", "sleep", "30"))
        with pytest.raises(LauncherError) as info:
            c.call("delete", id="gone")
        assert info.value.reason == "Running"
        c.call("delete", id="gone", force=True)
        assert c.call("list")["containers"] == []
    assert not (launcher.state / "gone").exists()
    assert not (Path("/sys/fs/cgroup/memory") / launcher.cgroup_parent / "gone").exists()


def test_exec_runs_inside_the_container_with_output_exit_code_and_timeout(base_spec, launcher):
    with launcher.client() as c:
        c.call("run", id="box", spec=spec(base_spec, launcher, "box", "sleep", "30"))
        r = c.call("exec", id="box", args=["sh", "-c", "hostname; echo $$; cat /proc/1/cmdline; "
                                                       "echo oops >&2; exit 4"])
        assert r["exit_code"] == 4 and not r["timed_out"]
        host, pid, cmdline = r["stdout"].splitlines()
        assert host == "busybox" and int(pid) > 1 and cmdline.startswith("sleep")
        assert r["stderr"] == "oops\n"
        procs = (Path("/sys/fs/cgroup/pids") / launcher.cgroup_parent / "box" / "cgroup.procs")
        r = c.call("exec", id="box", args=["cat", "/proc/self/cgroup"])
        assert r["exit_code"] == 0 and procs.exists()
        r = c.call("exec", id="box", args=["sleep", "10"], timeout_s=0.3)
        assert r["timed_out"] and r["exit_code"] == 137
        with pytest.raises(LauncherError) as info:
            c.call("exec", id="box", args=["no-such-cmd"])
        assert info.value.reason == "StartError" and "executable file not found" in str(info.value)


def attach(launcher: LauncherProc, **req: object) -> tuple[socket.socket, dict, list[int]]:
    """exec_attach as the agent does it: the command's ends arrive with the first line."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(launcher.sock)
    sock.sendall(json.dumps({"op": "exec_attach", **req}).encode() + b"\n")
    data, fds, _, _ = socket.recv_fds(sock, 65536, 3)
    return sock, json.loads(data.split(b"\n")[0]), fds


def exit_line(sock: socket.socket) -> dict:
    buf = b""
    while b"\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, "the launcher closed without an exit code"
        buf += chunk
    return json.loads(buf.split(b"\n")[0])


def read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: a terminal nobody holds any more
            return out
        if not chunk:
            return out
        out += chunk


def test_exec_attach_hands_over_stdin_a_terminal_and_hangs_up_with_the_client(base_spec, launcher):
    with launcher.client() as c:
        c.call("run", id="shell", spec=spec(base_spec, launcher, "shell", "sleep", "60"))
    # Pipes: stdin reaches the command, stdout and stderr come back apart, the exit code after.
    sock, reply, fds = attach(launcher, id="shell", args=["sh", "-c", "tr a-z A-Z; echo e >&2; "
                                                                        "exit 3"], stdin=True)
    assert reply["ok"] and len(fds) == 3
    stdin, stdout, stderr = fds
    os.write(stdin, b"hello\n")
    os.close(stdin)
    assert read_all(stdout) == b"HELLO\n" and read_all(stderr) == b"e\n"
    assert exit_line(sock)["exit_code"] == 3
    sock.close()
    os.close(stdout)
    os.close(stderr)
    # A terminal from the container's own devpts: the command sees a tty of its size.
    sock, reply, fds = attach(launcher, id="shell", args=["sh"], stdin=True, tty=True)
    (master,) = fds
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    os.write(master, b"tty; stty size; echo $TERM; exit 5\n")
    out = read_all(master).decode()
    assert "/dev/pts/" in out and "33 101" in out and "xterm" in out, out
    assert exit_line(sock)["exit_code"] == 5
    sock.close()
    os.close(master)
    # The client goes away: the command is hung up, not left running.
    sock, reply, fds = attach(launcher, id="shell", args=["sleep", "1000"])
    pid = reply["pid"]
    sock.close()
    for fd in fds:
        os.close(fd)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the exec outlived its client"
        time.sleep(0.05)
    with pytest.raises(LauncherError) as info:  # a missing command is an error, not a hang
        with launcher.client() as c:
            c.call("exec_attach", id="shell", args=["no-such-cmd"])
    assert "executable file not found" in str(info.value)


def test_a_container_with_a_terminal_logs_it_and_takes_input_through_attach(base_spec, launcher):
    """tty: true (kubectl run -it): PID 1's stdio is a terminal of the container's own
    devpts; what it shows is logged as it comes, a prompt without its newline too, and
    attach hands over the terminal's input, which also sets its size."""
    terminal = {**spec(base_spec, launcher, "term", "sh"), "terminal": True}
    with launcher.client() as c:
        st = c.call("run", id="term", spec=terminal, stdin=True, stdin_once=True)["state"]
        log = Path(st["log_path"])
        deadline = time.monotonic() + 10
        while b" stdout P " not in (log.read_bytes() if log.exists() else b""):
            assert time.monotonic() < deadline, "the shell's prompt never reached the log"
            time.sleep(0.05)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(launcher.sock)
        sock.sendall(b'{"op": "attach", "id": "term"}\n')
        _, (master,), _, _ = socket.recv_fds(sock, 65536, 1)
        sock.close()
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        os.write(master, b"tty; stty size; echo done-$((6*7)); exit 4\n")
        os.close(master)
        done = c.call("wait", id="term")["state"]
        assert done["exit_code"] == 4
        with pytest.raises(LauncherError) as info:  # stdinOnce: handed out once only
            c.call("attach", id="term")
        assert info.value.reason in ("NoStdin", "NotRunning")
    text = b"".join(line.text + (b"" if line.partial else b"\n")
                    for line in read_logs(str(log))).decode()
    assert "/dev/pts/0" in text and "33 101" in text and "done-42" in text, text
    assert {line.stream for line in read_logs(str(log))} == {"stdout"}


def test_containers_set_up_side_by_side_each_get_their_own_answer(base_spec, launcher):
    """run is answered when the container runs, while the launcher serves others meanwhile:
    starts from several clients at once, one of them failing, all come back right."""
    import concurrent.futures
    names = [f"side{i}" for i in range(6)]

    def run(name: str) -> dict:
        with launcher.client() as c:
            args = ("no-such-cmd",) if name == "side3" else ("sh", "-c", f"echo {name}; sleep 30")
            try:
                return c.call("run", id=name, spec=spec(base_spec, launcher, name, *args))["state"]
            except LauncherError as exc:
                return {"error": exc.reason, "message": str(exc)}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        states = dict(zip(names, pool.map(run, names), strict=True))
    assert states["side3"]["error"] == "StartError", states["side3"]
    for name in names:
        if name != "side3":
            assert states[name]["status"] == "running" and states[name]["pid"] > 0, states[name]
    with launcher.client() as c:
        listed = {st["id"]: st for st in c.call("list")["containers"]}
        assert listed["side3"]["status"] == "exited" and listed["side3"]["reason"] == "StartError"
        assert {n for n, st in listed.items() if st["status"] == "running"} == set(names) - {"side3"}
        pids = {st["pid"] for st in listed.values() if st["status"] == "running"}
        assert len(pids) == 5


def test_a_fast_writer_loses_no_lines(base_spec, launcher):
    with launcher.client() as c:
        c.call("run", id="chatty", spec=spec(base_spec, launcher, "chatty", "sh", "-c",
                                              "seq 1 100000; seq 1 20000 >&2"))
        st = c.call("wait", id="chatty")["state"]
    assert st["exit_code"] == 0
    lines = read_logs(st["log_path"])
    out = [int(ln.text) for ln in lines if ln.stream == "stdout"]
    err = [int(ln.text) for ln in lines if ln.stream == "stderr"]
    assert out == list(range(1, 100_001)) and err == list(range(1, 20_001))


def test_create_holds_the_container_until_start(base_spec, launcher):
    with launcher.client() as c:
        st = c.call("create", id="held", spec=spec(base_spec, launcher, "held", "sh", "-c",
                                                    "echo ran; exit 9"))["state"]
        assert st["status"] == "created" and st["pid"] > 0
        time.sleep(0.3)
        assert c.call("state", id="held")["state"]["status"] == "created"
        assert read_logs(st["log_path"]) == []  # the command has not run
        with pytest.raises(LauncherError) as info:
            c.call("exec", id="held", args=["true"])
        assert info.value.reason == "NotRunning"
        assert c.call("start", id="held")["state"]["status"] == "running"
        done = c.call("wait", id="held")["state"]
        assert done["exit_code"] == 9 and [ln.text for ln in read_logs(done["log_path"])] == [b"ran"]
        with pytest.raises(LauncherError):
            c.call("start", id="held")
        # A created container that is deleted never runs its command.
        st = c.call("create", id="never", spec=spec(base_spec, launcher, "never", "sh", "-c",
                                                     "echo ran"))["state"]
        c.call("delete", id="never")
        assert not Path(f"/proc/{st['pid']}").exists() or \
            Path(f"/proc/{st['pid']}/stat").read_text().split()[2] == "Z"


def test_stats_report_cgroup_usage(base_spec, launcher):
    with launcher.client() as c:
        c.call("run", id="busy", spec=spec(base_spec, launcher, "busy", "sh", "-c",
                                            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; "
                                            "sleep 30"))
        deadline = time.monotonic() + 10
        while (stats := c.call("stats", id="busy"))["cpu_ns"] < 50_000_000:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert stats["memory_bytes"] > 0 and stats["oom_kills"] == 0


def test_init_reaps_orphans_and_forwards_signals(base_spec, launcher):
    s = spec(base_spec, launcher, "inited", "sh", "-c",
             "(sleep 0.2 &); (sleep 0.2 &); echo pid=$$; sleep 30")
    s["init"] = True
    with launcher.client() as c:
        c.call("run", id="inited", spec=s)
        time.sleep(0.8)  # the two orphaned sleeps have exited by now
        ps = c.call("exec", id="inited", args=["ps", "-o", "pid,stat,comm"])["stdout"]
        assert " Z " not in ps and "sleep" in ps
        c.call("stop", id="inited", grace_s=10)
        st = c.call("wait", id="inited")["state"]
    # The shell is PID 2, not 1, so SIGTERM's default action kills it: no grace needed.
    assert read_logs(st["log_path"])[0].text == b"pid=2"
    assert st["exit_code"] == 143


def test_hostile_lines_get_an_answer_and_leave_the_launcher_serving(launcher):
    """An attacker's lines on the launcher's socket (root's, 0600, but the launcher must
    not fall over for a buggy client either): deep nesting, a spec of the wrong shape, a
    state id that walks the tree, a line over the 1 MiB cap with no newline."""
    with launcher.client() as c:
        c.sock.sendall(b'{"op": "list", "x": ' + b"[" * 200_000 + b"\n")
        answer = c.sock.recv(65536)
        assert b'"reason": "BadRequest"' in answer and b"nested" in answer, answer
        for bad in ({"op": "run", "id": "a", "spec": [1, 2]},
                    {"op": "run", "id": "b", "spec": {"rootfs": {"x": 1}, "args": ["sh"]}},
                    {"op": "kill", "id": "/etc", "signal": 9},
                    {"op": "exec", "id": "missing", "args": "sh"}):
            with pytest.raises(LauncherError) as info:
                c.call(**bad)
            assert info.value.reason in ("BadRequest", "InvalidSpec", "NotFound"), info.value
        assert c.call("list")["containers"] == []
    with launcher.client() as c:
        c.sock.sendall(b"x" * ((1 << 20) + 1))  # one byte over: all of it is read first
        assert b"request too large" in c.sock.recv(65536)
        assert c.sock.recv(65536) == b""  # and the connection is dropped
    with launcher.client() as c:
        assert c.call("list")["containers"] == []


def test_the_socket_is_roots_alone_in_a_private_directory(tmp_path: Path) -> None:
    """Whoever reaches the launcher's socket runs anything as root: 0600, in a 0700
    directory (made so, or narrowed to it); a directory everyone may write to is refused."""
    import stat
    where = tmp_path / "shared"
    where.mkdir(mode=0o755)
    os.chmod(where, 0o755)
    lp = LauncherProc(where)
    lp.start()
    try:
        assert stat.S_IMODE(os.stat(lp.sock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(where).st_mode) == 0o700
        assert os.stat(lp.sock).st_uid == os.getuid()
    finally:
        assert lp.proc is not None
        lp.proc.terminate()
        lp.proc.wait(10)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o1777)
    p = subprocess.run([sys.executable, "-m", "runtime", "launcher", "--state-dir",
                        str(tmp_path / "s2"), "--socket", str(open_dir / "l.sock")], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "writable by everyone" in p.stderr, p.stderr
