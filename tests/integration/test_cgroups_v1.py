"""Limits enforced for real by the cgroup v1 driver (this machine's layout).

Needs root and a cgroup v1 memory hierarchy; each test makes its own parent
cgroup and removes it, also on failure.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from pathlib import Path

import pytest
from waiting import needs_root

from containers import build_bundle, remove_cgroup_tree
from runtime.cgroups import Resources, V1Driver
from runtime.launch import start, wait
from runtime.spec import load_bundle

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [needs_root("cgroups"), pytest.mark.skipif(
    not os.path.isdir("/sys/fs/cgroup/memory"), reason="needs cgroup v1 (cpu, memory, pids "
    "hierarchies)")]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory):
    return load_bundle(str(build_bundle(tmp_path_factory.mktemp("bundle"))))


@pytest.fixture
def cgroup():
    driver = V1Driver()
    parent = f"nodeagent-test-{uuid.uuid4().hex[:8]}"
    try:
        yield driver, parent
    finally:
        remove_cgroup_tree(parent)


def run_in(spec, driver, path, res, *args):
    s = dataclasses.replace(spec, args=args, cgroup_path=path, resources=res)
    started = start(s, driver)
    return wait(started)


def test_memory_hog_is_oom_killed(spec, cgroup):
    driver, parent = cgroup
    path = f"{parent}/hog"
    code = run_in(spec, driver, path, Resources(memory_limit_bytes=16 * 2**20),
                  "sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived")
    assert code == 137
    assert driver.usage(path).oom_kills >= 1


def test_fork_bomb_is_stopped_by_the_pids_limit(spec, cgroup):
    driver, parent = cgroup
    path = f"{parent}/forks"
    s = dataclasses.replace(spec, args=("sh", "-c", "for i in $(seq 40); do sleep 30 & done; wait"),
                            cgroup_path=path, resources=Resources(pids_limit=10))
    started = start(s, driver)
    events = Path(driver.root) / "pids" / path / "pids.events"
    deadline = time.monotonic() + 10
    while "max 0" in events.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert int(events.read_text().split()[1]) > 0  # forks were refused at the limit
    assert len(driver.procs(path)) <= 10
    driver.kill_all(path)
    assert wait(started) in (2, 137)  # sh exits 2 on its own when it cannot fork


def test_cpu_quota_throttles(spec, cgroup):
    driver, parent = cgroup
    path = f"{parent}/busy"
    # PID 1 ignores signals from inside its namespace, so the busy loop is a child of it.
    code = run_in(spec, driver, path, Resources(cpu_limit_milli=100), "sh", "-c",
                  "sh -c 'while :; do :; done' & p=$!; sleep 1; kill $p; wait $p")
    assert code == 143
    stat = (Path(driver.root) / "cpu" / path / "cpu.stat").read_text()
    throttled = dict(line.split() for line in stat.splitlines())
    assert int(throttled["nr_throttled"]) > 0
    assert (Path(driver.root) / "cpu" / path / "cpu.cfs_quota_us").read_text().strip() == "10000"
    assert (Path(driver.root) / "cpu" / path / "cpu.shares").read_text().strip() == "2"


def test_kill_all_and_delete_leave_nothing(spec, cgroup):
    driver, parent = cgroup
    path = f"{parent}/many"
    s = dataclasses.replace(spec, args=("sh", "-c", "sleep 60 & sleep 60 & sleep 60 & wait"),
                            cgroup_path=path, resources=Resources())
    started = start(s, driver)
    deadline = time.monotonic() + 5
    while len(driver.procs(path)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(driver.procs(path)) == 4
    driver.kill_all(path)
    assert wait(started) == 137
    assert driver.procs(path) == []
    driver.delete(path)
    assert not driver.exists(path)
    assert not any((Path(driver.root) / c / path).exists() for c in driver.controllers)


def test_a_failed_start_leaves_no_cgroup(spec, cgroup):
    from runtime.launch import StartFailed
    driver, parent = cgroup
    path = f"{parent}/broken"
    with pytest.raises(StartFailed) as info:
        start(dataclasses.replace(spec, args=("no-such-binary",), cgroup_path=path,
                                  resources=Resources()), driver)
    assert info.value.exit_code == 127
    assert not driver.exists(path)


def test_pod_and_container_cgroups_nest_with_pod_limits(spec, cgroup):
    from runtime.qos import ContainerResources, container_cgroup, pod_cgroup, pod_resources, qos_class
    driver, parent = cgroup
    containers = [ContainerResources(cpu_request_milli=100, cpu_limit_milli=200,
                                     memory_limit_bytes=32 * 2**20),
                  ContainerResources(cpu_request_milli=100, cpu_limit_milli=300,
                                     memory_limit_bytes=64 * 2**20)]
    qos = qos_class(containers)
    pod = pod_cgroup(parent, qos, "1234-abcd")
    driver.create(pod, pod_resources(containers))
    path = container_cgroup(pod, "app")
    code = run_in(spec, driver, path, containers[0].as_resources(), "true")
    assert code == 0 and qos == "Burstable"
    root = Path(driver.root)
    assert (root / "memory" / pod / "memory.limit_in_bytes").read_text().strip() == str(96 * 2**20)
    assert (root / "cpu" / pod / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (root / "cpu" / pod / "cpu.shares").read_text().strip() == str(200 * 1024 // 1000)
    assert (root / "memory" / path / "memory.limit_in_bytes").read_text().strip() == str(32 * 2**20)
