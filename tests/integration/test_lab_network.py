"""The lab's network: nodes as namespaces on one switch, pods reaching pods on other nodes
only through the nodes' routes, the host reaching nodes through its link, and a clean down.

Uses its own prefix and subnet (192.168.213.0/24), so it never touches a lab that is up.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid

import pytest
from waiting import needs_root

pytestmark = needs_root("network namespaces")

from pyroute2 import IPRoute, netns  # noqa: E402

from netlab import CLIENT, NAME_SERVER  # noqa: E402
from netns.lab import Lab, LabError  # noqa: E402


@pytest.fixture
def lab(tmp_path):
    lab = Lab(prefix=f"nt{uuid.uuid4().hex[:5]}", subnet="192.168.213.0/24",
              state_dir=str(tmp_path / "lab"))
    try:
        lab.up(2)
        yield lab
    finally:
        lab.down()
        assert not [n for n in netns.listnetns() if n.startswith(lab.prefix)]
        with IPRoute() as ipr:
            assert not ipr.link_lookup(ifname=lab.host_link)


def connect(ns: str | None, ip: str, port: int) -> str:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    p = subprocess.run([*prefix, sys.executable, "-c", CLIENT, ip, str(port), "1"],
                       capture_output=True, text=True, timeout=20)
    return p.stdout.strip()


def test_pods_on_different_nodes_talk_through_the_node_routes(lab):
    p1 = lab.pods(1).create("web-1")
    p2 = lab.pods(2).create("web-2")
    assert p1.ip.startswith("10.244.1.") and p2.ip.startswith("10.244.2.")
    server = subprocess.Popen(["ip", "netns", "exec", p2.netns, sys.executable, "-c",
                               NAME_SERVER, "pod-on-node2", "9000"])
    try:
        time.sleep(0.5)
        assert connect(p1.netns, p2.ip, 9000) == "pod-on-node2"
        routes = subprocess.run(["ip", "-n", lab.node_ns(1), "route"], capture_output=True,
                                text=True).stdout
        assert f"10.244.2.0/24 via {lab.node_address(2)}" in routes
    finally:
        server.kill()
        server.wait()


def test_host_reaches_nodes_only_through_its_lab_link(lab):
    address = lab.node_address(1)
    assert lab.route_is_through_lab(address)  # checked before any byte is sent
    server = subprocess.Popen(["ip", "netns", "exec", lab.node_ns(1), sys.executable, "-c",
                               NAME_SERVER, "node1", "9000"])
    try:
        time.sleep(0.5)
        assert connect(None, address, 9000) == "node1"
    finally:
        server.kill()
        server.wait()
    assert not lab.route_is_through_lab("127.0.0.1")


def test_up_is_idempotent_and_refuses_a_taken_subnet(lab, tmp_path):
    lab.up(2)  # again: nothing changes, nothing fails
    assert lab.nodes() == [1, 2]
    other = Lab(prefix=f"nu{uuid.uuid4().hex[:5]}", subnet="192.168.213.0/24",
                state_dir=str(tmp_path / "other"))
    with pytest.raises(LabError, match="already routed"):
        other.up(1)
    assert not [n for n in netns.listnetns() if n.startswith(other.prefix)]
    names = {name for _, name in socket.if_nameindex()}
    assert other.host_link not in names
