"""Pod IPAM: no address twice, across instances, processes and crashes; leaks reclaimed."""

from __future__ import annotations

import pytest

from netns.ipam import Ipam, IpamError


def test_allocations_are_distinct_idempotent_and_skip_the_gateway(tmp_path):
    ipam = Ipam(str(tmp_path), "10.244.1.0/24")
    a, b = ipam.allocate("pod-a"), ipam.allocate("pod-b")
    assert a != b and "10.244.1.1" not in (a, b) and "10.244.1.0" not in (a, b)
    assert ipam.allocate("pod-a") == a
    assert str(ipam.gateway) == "10.244.1.1"


def test_freed_addresses_are_not_reused_at_once_and_state_persists(tmp_path):
    ipam = Ipam(str(tmp_path), "10.244.2.0/28")  # 13 usable after the gateway
    first = ipam.allocate("p0")
    ipam.release("p0")
    assert ipam.allocate("p1") != first  # round robin
    again = Ipam(str(tmp_path), "10.244.2.0/28")
    assert again.allocations() == {ipam.allocate("p1"): "p1"}


def test_exhaustion_and_cidr_change_are_clear_errors(tmp_path):
    ipam = Ipam(str(tmp_path), "10.244.3.0/29")  # hosts .2-.6
    for i in range(5):
        ipam.allocate(f"p{i}")
    with pytest.raises(IpamError, match="no free address left"):
        ipam.allocate("one-too-many")
    with pytest.raises(IpamError, match=r"holds allocations for 10\.244\.3\.0/29"):
        Ipam(str(tmp_path), "10.244.9.0/24").allocate("x")
    with pytest.raises(IpamError, match="pod CIDR"):
        Ipam(str(tmp_path / "x"), "10.244.300.0/24")


def test_reconcile_frees_what_no_live_pod_owns(tmp_path):
    ipam = Ipam(str(tmp_path), "10.244.4.0/24")
    for p in ("live-1", "leaked", "live-2"):
        ipam.allocate(p)
    freed = ipam.reconcile({"live-1", "live-2"})
    assert len(freed) == 1 and set(ipam.allocations().values()) == {"live-1", "live-2"}
