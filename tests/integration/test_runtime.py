"""Containers from an OCI bundle with a busybox rootfs: isolation, exit codes, failures.

Needs root (namespaces, mounts) and Debian's busybox-static (scripts/test installs
it).  Containers run through the CLI, ``python -m runtime run``, as a user would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from waiting import needs_root

from containers import build_bundle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_root("containers (namespaces, mounts, pivot_root)")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("bundle"))


def run(bundle: Path, *args: str, **config: object) -> subprocess.CompletedProcess[str]:
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["args"] = list(args)
    for key, value in config.items():
        cfg[key] = value
    work = bundle.parent / f"run-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    (work / "rootfs").symlink_to(bundle / "rootfs")
    (work / "config.json").write_text(json.dumps(cfg))
    return subprocess.run([sys.executable, "-m", "runtime", "run", "-b", str(work), "t"],
                          capture_output=True, text=True, timeout=60)


def mountinfo() -> list[str]:
    return Path("/proc/self/mountinfo").read_text().splitlines()


def test_command_is_pid_1_with_its_hostname_and_sees_only_its_processes(bundle):
    p = run(bundle, "sh", "-c", "echo $$; hostname; ps -o pid,comm | wc -l")
    assert p.returncode == 0, p.stderr
    pid, host, ps_lines = p.stdout.split()
    assert pid == "1" and host == "busybox"
    assert int(ps_lines) <= 4  # header, sh, ps (and wc)


def test_filesystem_is_the_rootfs_with_a_minimal_dev_and_read_only_system_dirs(bundle):
    p = run(bundle, "sh", "-c",
            "ls /dev | tr '\\n' ' '; echo; touch /x 2>&1; touch /sys/x 2>&1; "
            "{ echo 1 > /proc/sys/kernel/hostname; } 2>&1; test -e /work && echo host-visible; "
            "echo hi > /dev/null && head -c 4 /dev/zero | wc -c")
    out = p.stdout
    devs = set(out.splitlines()[0].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"} <= devs
    assert "/x: Read-only file system" in out  # root.readonly in the bundle
    assert "/sys/x: Read-only file system" in out
    assert "/proc/sys/kernel/hostname: Read-only file system" in out
    assert "host-visible" not in out
    assert out.strip().endswith("4")


def test_new_network_namespace_has_only_loopback(bundle):
    p = run(bundle, "ip", "-o", "link")
    links = [line.split(":")[1].strip() for line in p.stdout.splitlines()]
    assert links == ["lo"]


def test_joins_a_network_namespace_by_path(bundle):
    name = f"natest-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "pod0", "type", "veth", "peer", "name",
                        "pod1"], check=True)
        cfg = json.loads((bundle / "config.json").read_text())
        namespaces = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "network"]
        namespaces.append({"type": "network", "path": f"/run/netns/{name}"})
        p = run(bundle, "ip", "-o", "link", linux={**cfg["linux"], "namespaces": namespaces})
        assert "pod0" in p.stdout, p.stderr
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_privileges_are_dropped(bundle):
    p = run(bundle, "cat", "/proc/self/status")
    status = dict(line.split(":\t", 1) for line in p.stdout.splitlines() if ":\t" in line)
    wanted = (1 << 5) | (1 << 10) | (1 << 29)  # KILL, NET_BIND_SERVICE, AUDIT_WRITE
    assert int(status["CapEff"], 16) == wanted and int(status["CapBnd"], 16) == wanted
    assert status["NoNewPrivs"].strip() == "1"
    p = run(bundle, "sh", "-c", "ulimit -n")
    assert p.stdout.strip() == "1024"
    cfg = json.loads((bundle / "config.json").read_text())
    p = run(bundle, "id", "-u", process={**cfg["process"], "args": ["id", "-u"],
                                         "user": {"uid": 65534, "gid": 65534}})
    assert p.stdout.strip() == "65534"


def test_exit_codes_and_signals_come_back(bundle):
    assert run(bundle, "sh", "-c", "exit 7").returncode == 7
    assert run(bundle, "true").returncode == 0
    # PID 1 ignores signals sent from inside its namespace; SIGKILL from the host kills it.
    from runtime.launch import start, wait
    from runtime.spec import load_bundle
    spec = load_bundle(str(bundle))
    spec = type(spec)(**{**spec.__dict__, "args": ("sleep", "30")})
    started = start(spec)
    os.kill(started.pid, signal.SIGKILL)
    assert wait(started) == 137


def test_start_failures_are_reported_not_tracebacks(bundle):
    p = run(bundle, "no-such-binary")
    assert p.returncode == 127 and "Traceback" not in p.stderr
    assert 'StartError: exec: "no-such-binary": executable file not found in $PATH' in p.stderr
    cfg = json.loads((bundle / "config.json").read_text())
    p = run(bundle, "true", process={**cfg["process"], "args": ["true"], "cwd": "/nowhere"})
    assert p.returncode == 128 and "chdir to cwd (/nowhere)" in p.stderr


def test_nothing_is_left_on_the_host(bundle):
    before = mountinfo()
    p = run(bundle, "sh", "-c", "sleep 0.1 & echo started")
    assert p.returncode == 0
    assert mountinfo() == before
    # The pytest process did not inherit a child subreaper role or zombies from the CLI.
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    assert all(not Path(f"/proc/{c}/cmdline").read_bytes().startswith(b"sleep") for c in children)


def test_user_namespace_maps_root_to_an_unprivileged_host_id(bundle):
    import shutil
    import tempfile

    from runtime.launch import start, wait
    from runtime.spec import load_bundle
    # pytest's temporary directories are 0700: the mapped root could not reach a rootfs there.
    public = tempfile.mkdtemp(prefix="nodeagent-userns-")
    os.chmod(public, 0o755)
    try:
        shutil.copytree(bundle, os.path.join(public, "b"), symlinks=True)
        os.chmod(os.path.join(public, "b"), 0o755)
        _check_userns(os.path.join(public, "b"), start, wait, load_bundle)
    finally:
        shutil.rmtree(public)


def _check_userns(bundle_dir, start, wait, load_bundle):
    spec = load_bundle(bundle_dir)
    spec = type(spec)(**{**spec.__dict__, "args": ("sh", "-c",
                                                   "id -u; sleep 0.5; touch /bin/x 2>&1; true"),
                         "readonly_rootfs": False,
                         "namespaces": ("user", *spec.namespaces),
                         "uid_mappings": ((0, 100000, 65536),),
                         "gid_mappings": ((0, 100000, 65536),)})
    r, w = os.pipe()
    started = start(spec, stdio=(0, w, w))
    os.close(w)
    uids = next(line for line in Path(f"/proc/{started.pid}/status").read_text().splitlines()
                if line.startswith("Uid:")).split()[1:]
    assert wait(started) == 0
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    lines = out.decode().splitlines()
    assert lines[0] == "0"  # root inside ...
    assert uids == ["100000"] * 4  # ... an ordinary uid outside
    assert "Permission denied" in lines[1]  # and no power over the host's files


def test_user_namespace_without_mappings_is_a_spec_error(bundle):
    cfg = json.loads((bundle / "config.json").read_text())
    linux = {**cfg["linux"], "namespaces": [*cfg["linux"]["namespaces"], {"type": "user"}]}
    p = run(bundle, "true", linux=linux)
    assert p.returncode == 1 and "linux.uidMappings: Required value" in p.stderr


def test_a_bundle_with_limits_and_no_cgroup_path_gets_a_cgroup_that_holds_them(bundle):
    """As runc and crun do: linux.resources without linux.cgroupsPath runs in a cgroup named
    by the runtime, so a 64 MiB limit stops a 200 MiB allocation; the cgroup goes after."""
    from runtime.cgroups import detect
    from runtime.spec import bundle_cgroup
    driver = detect()
    cfg = json.loads((bundle / "config.json").read_text())
    linux = {**cfg.get("linux", {}), "resources": {"memory": {"limit": 64 << 20}}}
    linux.pop("cgroupsPath", None)
    try:
        p = run(bundle, "sh", "-c", "dd if=/dev/zero of=/dev/null bs=200M count=1 && echo done",
                linux=linux)
        assert p.returncode == 137 and "done" not in p.stdout, (p.returncode, p.stdout, p.stderr)
        small = run(bundle, "sh", "-c", "dd if=/dev/zero of=/dev/null bs=8M count=1 && echo done",
                    linux=linux)
        assert small.returncode == 0 and "done" in small.stdout, small.stderr
        assert not driver.exists(bundle_cgroup("t"))
    finally:
        if driver.exists(bundle_cgroup("t")):
            driver.kill_all(bundle_cgroup("t"))
            driver.delete(bundle_cgroup("t"))


def test_a_limit_the_runtime_cannot_enforce_is_refused_by_name(bundle):
    cfg = json.loads((bundle / "config.json").read_text())
    linux = {**cfg.get("linux", {}), "resources": {"blockIO": {"weight": 10}}}
    p = run(bundle, "true", linux=linux)
    assert p.returncode == 1 and "linux.resources.blockIO" in p.stderr, p.stderr


def test_the_runtime_default_seccomp_filter_refuses_what_containers_have_no_business_doing(
        bundle):
    """Namespaces are the usual first step out of a container: under RuntimeDefault a new
    user namespace is refused (EPERM), where without a filter the same container makes
    one; ordinary work is untouched.  An OCI bundle's own profile is refused by name."""
    from runtime.launch import start, wait
    from runtime.spec import SpecError, load_bundle
    spec = load_bundle(str(bundle))

    def status(seccomp: str, script: str) -> int:
        started = start(type(spec)(**{**spec.__dict__, "args": ("sh", "-c", script),
                                      "seccomp": seccomp}))
        return wait(started)
    assert status("", "unshare -U true") == 0
    assert status("RuntimeDefault", "unshare -U true") != 0
    assert status("RuntimeDefault", "unshare -U true 2>&1 | grep -q 'Operation not permitted'") \
        == 0
    assert status("RuntimeDefault", "grep -q '^Seccomp:.2' /proc/self/status && ls / >/dev/null "
                  "&& echo hi | grep -q hi && sleep 0") == 0  # filtered, and works
    assert status("", "grep -q '^Seccomp:.0' /proc/self/status") == 0
    cfg = json.loads((bundle / "config.json").read_text())
    work = bundle.parent / f"seccomp-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    (work / "rootfs").symlink_to(bundle / "rootfs")
    (work / "config.json").write_text(json.dumps({**cfg, "linux": {
        **cfg.get("linux", {}), "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}))
    with pytest.raises(SpecError, match=r"linux\.seccomp"):
        load_bundle(str(work))
