"""Kubernetes' resource conversions, and the cgroup v2 driver against a fake cgroupfs tree.

The v2 driver cannot run for real on this machine (cgroup v1, hybrid), so it is
checked here against a directory laid out like /sys/fs/cgroup; the VM lab runs it
for real later.  The v1 driver is tested for real in tests/integration.
"""

from __future__ import annotations

import pytest

from runtime.cgroups import Resources, V1Driver, V2Driver, cpu_quota, cpu_shares, detect, shares_to_weight


@pytest.mark.parametrize(("milli", "shares"), [(None, 2), (0, 2), (1, 2), (100, 102), (250, 256),
                                               (1000, 1024), (500_000, 262_144)])
def test_cpu_shares_like_kubelet(milli, shares):
    assert cpu_shares(milli) == shares


@pytest.mark.parametrize(("milli", "quota"), [(None, -1), (0, -1), (5, 1000), (100, 10_000),
                                              (1500, 150_000)])
def test_cpu_quota_like_kubelet(milli, quota):
    assert cpu_quota(milli) == quota


def test_shares_to_weight_like_runc():
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262_144) == 10_000


@pytest.fixture
def fake_v2(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    return tmp_path


def test_detect_picks_the_driver_by_layout(fake_v2, tmp_path_factory):
    assert isinstance(detect(str(fake_v2)), V2Driver)
    v1root = tmp_path_factory.mktemp("v1")
    (v1root / "memory").mkdir()
    assert isinstance(detect(str(v1root)), V1Driver)


def test_v2_create_delegates_controllers_and_writes_limits(fake_v2):
    d = V2Driver(str(fake_v2))
    d.create("nodeagent/burstable/pod1/app", Resources(
        cpu_request_milli=250, cpu_limit_milli=500, memory_limit_bytes=64 * 2**20, pids_limit=100))
    for parent in ("", "nodeagent", "nodeagent/burstable", "nodeagent/burstable/pod1"):
        assert (fake_v2 / parent / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    leaf = fake_v2 / "nodeagent/burstable/pod1/app"
    assert (leaf / "cpu.weight").read_text() == str(shares_to_weight(256))
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "memory.max").read_text() == str(64 * 2**20)
    assert (leaf / "pids.max").read_text() == "100"
    d.update("nodeagent/burstable/pod1/app", Resources())
    assert (leaf / "cpu.max").read_text() == "max 100000"
    assert (leaf / "memory.max").read_text() == "max"
    assert (leaf / "cpu.weight").read_text() == "1"


def test_v2_usage_and_oom_kills(fake_v2):
    d = V2Driver(str(fake_v2))
    d.create("c", Resources())
    leaf = fake_v2 / "c"
    (leaf / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (leaf / "memory.current").write_text("4096\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert d.usage("c").cpu_ns == 1_500_000
    assert d.usage("c").memory_bytes == 4096
    assert d.usage("c").oom_kills == 1
