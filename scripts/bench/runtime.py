#!/usr/bin/env python3
"""Runtime benchmark: our runtime against crun on the same OCI bundle, in the same run.

Measures:
  start   create + start until /bin/true has run and exited, N sequential runs: median, p99
  output  start until the container's first byte of output arrives (echo)
  burst   100 containers started at once, until all have exited: wall time
Both create a cgroup per container (cpu, memory, pids) and the same namespaces
(the bundle's: pid, network, ipc, uts, mount, cgroup).

Ours is measured as the agent will use it: a library call in an already running
process (the launcher), which forks the container.  crun is measured as kubelet
uses an OCI runtime: one `crun run` process per container.  Our own CLI
(`python -m runtime run`, a fresh Python interpreter each time) is also shown,
for honesty about what a cold start costs.

crun 1.8.1 refuses this machine's hybrid cgroup layout while hugetlb sits on the
unified hierarchy; like ../shared/baselines.md says, the benchmark mounts hugetlb as
a v1 hierarchy at /sys/fs/cgroup/hugetlb for the run and unmounts it afterwards.
Needs root.  Usage: scripts/bench/runtime.py [--quick] [--out FILE]
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import _common as c

from runtime.cgroups import V1Driver, detect
from runtime.launch import begin, start, wait
from runtime.spec import load_bundle

HUGETLB = "/sys/fs/cgroup/hugetlb"


def hugetlb_workaround() -> Callable[[], None]:
    """Mount hugetlb as v1 if it is on the unified hierarchy; returns the undo."""
    unified = "/sys/fs/cgroup/unified/cgroup.controllers"
    if os.path.exists(HUGETLB) or not os.path.exists(unified) or \
            "hugetlb" not in open(unified).read().split():
        return lambda: None
    os.makedirs(HUGETLB, exist_ok=True)
    subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", HUGETLB], check=True)

    def undo() -> None:
        subprocess.run(["umount", HUGETLB], check=False)
        try:
            os.rmdir(HUGETLB)
        except OSError:
            pass
    return undo


def make_bundle(args: list[str]) -> str:
    path = c.tempdir("bench-bundle-")
    subprocess.run([sys.executable, str(c.ROOT / "scripts/images/busybox_bundle.py"), path, "--",
                    *args], check=True, capture_output=True)
    cfg = json.loads(Path(path, "config.json").read_text())
    # No cgroupsPath: crun then makes /<container id> in each hierarchy and removes it on exit.
    cfg["linux"]["resources"] = {"memory": {"limit": 64 * 2**20}, "pids": {"limit": 64},
                                 "cpu": {"shares": 102}}
    Path(path, "config.json").write_text(json.dumps(cfg))
    return path


def crun_run(bundle: str, cid: str, stdout: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["crun", "--cgroup-manager=cgroupfs", "run", "--bundle", bundle, cid],
                            stdout=stdout if stdout is not None else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def time_crun(bundle: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        cid = "b" + uuid.uuid4().hex[:10]
        t0 = time.perf_counter()
        p = crun_run(bundle, cid)
        _, err = p.communicate()
        out.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"crun failed: {err.decode()[:300]}")
    return out


def time_ours(spec, parent: str, n: int, driver) -> list[float]:
    out = []
    for i in range(n):
        s = dataclasses.replace(spec, cgroup_path=f"{parent}/ours-{i}")
        t0 = time.perf_counter()
        code = wait(start(s, driver))
        out.append(time.perf_counter() - t0)
        if code != 0:
            raise SystemExit(f"our container exited {code}")
        driver.delete(s.cgroup_path)
    return out


def first_output_ours(spec, parent: str, n: int, driver) -> list[float]:
    out = []
    for i in range(n):
        r, w = os.pipe()
        s = dataclasses.replace(spec, cgroup_path=f"{parent}/out-{i}")
        saved = os.dup(1)
        t0 = time.perf_counter()
        os.dup2(w, 1)  # the container inherits fd 1 (the launcher will pass log pipes)
        try:
            started = start(s, driver)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(w)
        select.select([r], [], [], 10)
        out.append(time.perf_counter() - t0)
        os.read(r, 100)
        os.close(r)
        wait(started)
        driver.delete(s.cgroup_path)
    return out


def first_output_crun(bundle: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        r, w = os.pipe()
        t0 = time.perf_counter()
        p = crun_run(bundle, "o" + uuid.uuid4().hex[:10], stdout=w)
        os.close(w)
        select.select([r], [], [], 10)
        out.append(time.perf_counter() - t0)
        os.read(r, 100)
        os.close(r)
        p.communicate()
    return out


def burst_ours(spec, parent: str, n: int, driver) -> float:
    t0 = time.perf_counter()
    pending = [begin(dataclasses.replace(spec, cgroup_path=f"{parent}/burst-{i}"), driver)
               for i in range(n)]
    for s in [p.finish() for p in pending]:
        wait(s)
    wall = time.perf_counter() - t0
    for i in range(n):
        driver.delete(f"{parent}/burst-{i}")
    return wall


def burst_crun(bundle: str, n: int) -> float:
    t0 = time.perf_counter()
    procs = [crun_run(bundle, "c" + uuid.uuid4().hex[:10]) for _ in range(n)]
    for p in procs:
        p.communicate()
    return time.perf_counter() - t0


def pss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def launcher_overhead(spec, parent: str, n: int) -> tuple[float, float]:
    """(launcher PSS with no container, extra PSS per running container) in MiB."""
    from runtime.client import LauncherClient
    from runtime.spec import spec_to_dict
    work = c.tempdir("bench-launcher-")
    sock = os.path.join(work, "launcher.sock")
    proc = c.spawn([sys.executable, "-m", "runtime", "launcher", "--state-dir",
                    os.path.join(work, "state"), "--socket", sock], os.path.join(work, "log"))
    deadline = time.monotonic() + 10
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    base = pss_mib(proc.pid)
    with LauncherClient(sock) as client:
        for i in range(n):
            s = dataclasses.replace(spec, args=("sleep", "600"), cgroup_path=f"{parent}/mem-{i}")
            client.call("run", id=f"m{i}", spec=spec_to_dict(s))
        time.sleep(0.5)
        after = pss_mib(proc.pid)
        for i in range(n):
            client.call("delete", id=f"m{i}", force=True)
    proc.terminate()
    proc.wait(10)
    return base, (after - base) / n


def crun_detached_helpers(bundle: str) -> int:
    """Processes crun leaves besides the container itself when run detached (its monitor)."""
    cid = "d" + uuid.uuid4().hex[:10]
    cfg = json.loads(Path(bundle, "config.json").read_text())
    cfg["process"]["args"] = ["sleep", "600"]
    Path(bundle, "config.json").write_text(json.dumps(cfg))
    subprocess.run(["crun", "--cgroup-manager=cgroupfs", "run", "-d", "--bundle", bundle, cid],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    import psutil
    helpers = sum(1 for p in psutil.process_iter(["name", "status"])
                  if p.info["name"] == "crun" and p.info["status"] != psutil.STATUS_ZOMBIE)
    subprocess.run(["crun", "kill", cid, "KILL"], check=False)
    time.sleep(0.2)
    subprocess.run(["crun", "delete", "-f", cid], check=False)
    return helpers


def time_our_cli(bundle: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "runtime", "run", "-b", bundle, "x"], check=True,
                       cwd=c.ROOT)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    a = c.args(__doc__.splitlines()[1])
    if os.geteuid() != 0:
        raise SystemExit("needs root (namespaces, cgroups)")
    c.ensure_apt("crun", "crun")
    n = 30 if a.quick else 100
    burst = 30 if a.quick else 100
    undo = hugetlb_workaround()
    driver = detect()
    parent = f"nodeagent-bench-{uuid.uuid4().hex[:6]}"
    try:
        true_bundle = make_bundle(["/bin/true"])
        echo_bundle = make_bundle(["echo", "hi"])
        spec = load_bundle(true_bundle)
        echo = load_bundle(echo_bundle)
        res = c.Results()
        # Interleave the sides in rounds so drift on a noisy machine hits both alike.
        ours_t: list[float] = []
        crun_t: list[float] = []
        for _ in range(5):
            ours_t += time_ours(spec, parent, n // 5, driver)
            crun_t += time_crun(true_bundle, n // 5)
        ms = 1e3
        res.add(f"start /bin/true to exit, median of {n}", "ms", c.median(ours_t) * ms,
                c.median(crun_t) * ms, higher_is_better=False, n=n, peer_name="crun run",
                target="ratio >= 1.0 (median <= crun's)")
        res.add("start /bin/true to exit, p99", "ms", c.percentile(ours_t, 99) * ms,
                c.percentile(crun_t, 99) * ms, higher_is_better=False, n=n, peer_name="crun run")
        ours_o = first_output_ours(echo, parent, n, driver)
        crun_o = first_output_crun(echo_bundle, n)
        res.add("start to first output, median", "ms", c.median(ours_o) * ms,
                c.median(crun_o) * ms, higher_is_better=False, n=n, peer_name="crun run")
        ob = burst_ours(spec, parent, burst, driver)
        cb = burst_crun(true_bundle, burst)
        res.add(f"{burst} containers at once, wall", "s", ob, cb, higher_is_better=False, n=burst,
                peer_name="crun run x N concurrently", target="ratio >= 1.0")
        mem_n = 20 if a.quick else 100
        base_pss, per_container = launcher_overhead(spec, parent, mem_n)
        helpers = crun_detached_helpers(make_bundle(["sleep", "600"]))
        res.add(f"memory per running container ({mem_n} running)", "MiB", per_container,
                None, higher_is_better=False, n=mem_n,
                peer_name=f"crun run -d: {helpers} helper processes per container",
                target="<= 1 MiB", launcher_pss_mib=round(base_pss, 1),
                note="extra PSS of our one launcher per container; the launcher itself "
                     f"is {base_pss:.1f} MiB PSS for the whole node")
        cli = time_our_cli(true_bundle, max(5, n // 10))
        res.add("our CLI (fresh interpreter) start to exit, median", "ms", c.median(cli) * ms,
                c.median(crun_t) * ms, higher_is_better=False, n=len(cli), peer_name="crun run",
                note="cold Python start; the agent uses the library in a running launcher")
        res.print_and_write(a.out)
    finally:
        if isinstance(driver, V1Driver):
            for ctrl in driver.controllers:
                base = Path(driver.root) / ctrl / parent
                if base.exists():
                    for d in sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True):
                        d.rmdir()
                    base.rmdir()
        for extra in ("hugetlb", "cpuset", "devices", "freezer", "blkio"):
            # crun's cgroupfs manager made groups in every hierarchy it knows
            base = Path("/sys/fs/cgroup") / extra / parent
            if base.exists():
                for d in sorted((p for p in base.rglob("*") if p.is_dir()), reverse=True):
                    d.rmdir()
                base.rmdir()
        undo()


if __name__ == "__main__":
    main()
