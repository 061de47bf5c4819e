"""Pod sandboxes for real: network namespaces, veths and a bridge inside a "node"
namespace the test creates (nothing is added to the machine's own namespace).
Traffic goes only between namespaces the test made.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from waiting import needs_root

pytestmark = needs_root("network namespaces")

from pyroute2 import NetNS, netns  # noqa: E402

from netns.ipam import Ipam  # noqa: E402
from netns.sandbox import NodeNet, SandboxError, SandboxManager, host_veth_name  # noqa: E402


@pytest.fixture
def manager(tmp_path) -> Iterator[SandboxManager]:
    tag = uuid.uuid4().hex[:6]
    node = f"natest-node-{tag}"
    netns.create(node)
    net = NodeNet(cidr="10.244.7.0/24", node_netns=node, netns_prefix=f"natest-{tag}-")
    m = SandboxManager(net, Ipam(str(tmp_path / "ipam"), net.cidr))
    try:
        m.ensure_bridge()
        yield m
    finally:
        for uid in m.list():
            m.delete(uid)
        netns.remove(node)
        assert not [n for n in netns.listnetns() if tag in n]


def run_in(ns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                          timeout=20)


def test_pods_reach_each_other_and_the_gateway(manager):
    a = manager.create("pod-a")
    b = manager.create("pod-b")
    assert a.ip != b.ip and a.gateway == "10.244.7.1"
    # A TCP server in pod b, a client in pod a: through veths and the node's bridge.
    server = subprocess.Popen(["ip", "netns", "exec", b.netns, "busybox", "nc", "-l", "-p",
                               "7000"], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(50):
            p = run_in(a.netns, "sh", "-c", f"echo hello | busybox nc -w 1 {b.ip} 7000")
            if p.returncode == 0:
                break
        assert server.communicate(timeout=10)[0].strip() == "hello"
    finally:
        server.kill()
        server.wait()
    ping = run_in(a.netns, "busybox", "ping", "-c", "1", "-W", "2", a.gateway)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    routes = run_in(a.netns, "ip", "route").stdout
    assert "default via 10.244.7.1 dev eth0" in routes
    assert run_in(a.netns, "ip", "-o", "link", "show", "lo").stdout.count("UP") >= 1


def test_create_is_idempotent_and_delete_leaves_nothing(manager):
    first = manager.create("pod-x")
    assert manager.create("pod-x") == first
    manager.delete("pod-x")
    manager.delete("pod-x")
    assert first.netns not in netns.listnetns()
    assert manager.ipam.allocations() == {}
    with NetNS(manager.net.node_netns) as node:
        assert not node.link_lookup(ifname=host_veth_name("pod-x"))


def test_a_failure_half_way_is_undone(manager, tmp_path):
    broken = SandboxManager(NodeNet(cidr=manager.net.cidr, bridge="missing0",
                                    node_netns=manager.net.node_netns,
                                    netns_prefix=manager.net.netns_prefix), manager.ipam)
    with pytest.raises(SandboxError, match="bridge missing0 does not exist"):
        broken.create("pod-y")
    assert manager.list() == [] and manager.ipam.allocations() == {}
    with NetNS(manager.net.node_netns) as node:
        assert not node.link_lookup(ifname=host_veth_name("pod-y"))


def test_reconcile_removes_what_dead_pods_left(manager):
    manager.create("alive")
    manager.create("dead")
    manager.ipam.allocate("leaked-before-its-sandbox")  # a crash between allocate and create
    assert manager.reconcile({"alive"}) == ["dead"]
    assert manager.list() == ["alive"]
    assert set(manager.ipam.allocations().values()) == {"alive"}


def test_nothing_was_added_to_the_machines_own_namespace(manager):
    manager.create("pod-z")
    names = {socket.if_indextoname(i) for i, _ in socket.if_nameindex()}
    assert "cni0" not in names and host_veth_name("pod-z") not in names


def test_the_launcher_makes_sandboxes_in_process_inside_its_node(tmp_path):
    """The launcher's way (in-process, one kept netlink socket, the bridge's index
    remembered): a launcher started in a node namespace makes two pods that reach each
    other, makes one again without harm, and removes them leaving nothing."""
    import sys
    import time
    from pathlib import Path

    from runtime.client import LauncherClient
    root = Path(__file__).resolve().parents[2]
    tag = uuid.uuid4().hex[:6]
    node, sock = f"natest-lnode-{tag}", str(tmp_path / "launcher.sock")
    net = {"cidr": "10.244.9.0/24", "bridge": "cni0", "netns_prefix": f"natest-l{tag}-",
           "ipam_dir": str(tmp_path / "ipam")}
    netns.create(node)
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{node}", sys.executable, "-m",
                             "runtime", "launcher", "--state-dir", str(tmp_path / "state"),
                             "--socket", sock], cwd=root, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert proc.poll() is None and time.monotonic() < deadline, "launcher did not start"
            time.sleep(0.02)
        with LauncherClient(sock) as c:
            c.call("sandbox_bridge", net=net)
            a = c.call("sandbox_create", net=net, pod_uid="pod-a")["sandbox"]
            b = c.call("sandbox_create", net=net, pod_uid="pod-b")["sandbox"]
            assert c.call("sandbox_create", net=net, pod_uid="pod-a")["sandbox"] == a
            assert a["ip"] != b["ip"]
            ping = run_in(a["netns"], "busybox", "ping", "-c", "1", "-W", "5", b["ip"])
            assert ping.returncode == 0, ping.stdout + ping.stderr
            link = run_in(b["netns"], "ip", "-o", "link", "show", "eth0").stdout
            assert "mtu 1500" in link and ",UP" in link, link
            assert "default via 10.244.9.1 dev eth0" in run_in(b["netns"], "ip", "route").stdout
            c.call("sandbox_delete", net=net, pod_uid="pod-a")
            assert c.call("sandbox_reconcile", net=net, live=[])["removed"] == ["pod-b"]
        assert not [n for n in netns.listnetns() if f"natest-l{tag}-" in n]
        with NetNS(node) as ns:
            assert [link.get_attr("IFLA_IFNAME") for link in ns.get_links()] == ["lo", "cni0"]
    finally:
        proc.terminate()
        proc.wait(10)
        for name in netns.listnetns():
            if tag in name:
                netns.remove(name)
