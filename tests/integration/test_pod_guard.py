"""The fence between pods and their node's agent ports, in a lab node's namespace with a
real pod sandbox: from the pod, the Raft and gossip ports are unreachable and the API port
only through a DNAT (the kubernetes Service), while any other port of the node, and the
node's own processes, are untouched.  Everything lives in namespaces the test makes."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from waiting import needs_root

pytestmark = needs_root("network namespaces and nftables")

from netns import podguard  # noqa: E402
from netns.lab import Lab  # noqa: E402

API, RAFT, GOSSIP, OTHER = 16443, 17000, 17946, 18080
CLUSTER_IP = "10.96.0.1"

# python -c LISTENER HOST PORT...: accept on every port and answer "ok"; UDP echoes too.
LISTENER = """
import socket, sys, threading
host = sys.argv[1]
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(b"ok"); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((host, port))
    while True:
        data, peer = s.recvfrom(100); s.sendto(b"ok", peer)
for p in map(int, sys.argv[2:]):
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
    threading.Thread(target=udp, args=(p,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
"""

# python -c PROBE PROTO HOST PORT: prints "ok" or what went wrong (1 s to answer).
PROBE = """
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=1); print(s.recv(10).decode())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        s.sendto(b"hi", (host, port)); print(s.recv(10).decode())
except OSError as e:
    print(type(e).__name__)
"""


@pytest.fixture
def lab(tmp_path):
    lab = Lab(prefix=f"pg{uuid.uuid4().hex[:5]}", subnet="192.168.221.0/24",
              state_dir=str(tmp_path / "lab"))
    procs: list[subprocess.Popen[str]] = []
    try:
        lab.up(1)
        node = lab.node_ns(1)
        addr = lab.node_address(1)
        listener = subprocess.Popen(["ip", "netns", "exec", node, sys.executable, "-c", LISTENER,
                                     addr, *map(str, (API, RAFT, GOSSIP, OTHER))],
                                    stdout=subprocess.PIPE, text=True)
        procs.append(listener)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "listening"
        # The proxy's part, as it would program the kubernetes Service (a table of the test's).
        nat = (f"table ip pgtest {{\n chain pre {{\n type nat hook prerouting priority dstnat;\n"
               f" ip daddr {CLUSTER_IP} tcp dport 443 dnat to {addr}:{API}\n }}\n}}\n")
        subprocess.run(["ip", "netns", "exec", node, "nft", "-f", "-"], input=nat, text=True,
                       check=True)
        pod = lab.pods(1).create("pg-pod")
        yield {"lab": lab, "node": node, "addr": addr, "pod": pod}
    finally:
        for p in procs:
            p.kill()
            p.wait()
        lab.down()  # the node's namespace, and the tables in it, go with it


def probe(netns: str, proto: str, host: str, port: int) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", PROBE, proto, host,
                           str(port)], capture_output=True, text=True, timeout=20).stdout.strip()


def test_pods_reach_the_api_only_as_the_service_and_never_raft_or_gossip(lab) -> None:
    node, addr, pod = lab["node"], lab["addr"], lab["pod"].netns
    before = {port: probe(pod, "tcp", addr, port) for port in (API, RAFT, GOSSIP, OTHER)}
    assert before == {API: "ok", RAFT: "ok", GOSSIP: "ok", OTHER: "ok"}  # open before the fence
    guard = podguard.Guard(cidr=lab["lab"].pod_cidr(1), bridge="cni0", api_port=API,
                           closed_ports=(RAFT, GOSSIP))
    podguard.apply(guard, node)
    assert probe(pod, "tcp", addr, RAFT) == "TimeoutError"
    assert probe(pod, "tcp", addr, GOSSIP) == "TimeoutError"
    assert probe(pod, "udp", addr, GOSSIP) == "TimeoutError"
    assert probe(pod, "tcp", addr, API) == "TimeoutError"  # straight to the port: no
    assert probe(pod, "tcp", CLUSTER_IP, 443) == "ok"  # as the kubernetes Service: yes
    assert probe(pod, "tcp", addr, OTHER) == "ok"  # a hostPort, say: untouched
    for port in (API, RAFT, GOSSIP):  # the node itself (other agents, the admin): untouched
        assert probe(node, "tcp", addr, port) == "ok"
    # Applied again (an agent restart): one table, replaced, still in force.
    podguard.apply(guard, node)
    tables = subprocess.run(["ip", "netns", "exec", node, "nft", "list", "tables"],
                            capture_output=True, text=True).stdout
    assert tables.count(podguard.TABLE) == 1
    assert probe(pod, "tcp", addr, RAFT) == "TimeoutError"
    start = time.monotonic()
    assert probe(pod, "tcp", CLUSTER_IP, 443) == "ok"
    assert time.monotonic() - start < 15


def test_the_rules_name_only_numbers_and_a_checked_network() -> None:
    text = podguard.render(podguard.Guard("10.244.0.0/16", "cni0", 6443, (7000, 7946, 0, 70000)))
    assert "th dport { 7000, 7946 }" in text  # out-of-range ports dropped
    assert 'iifname "cni0" ip saddr 10.244.0.0/16 tcp dport 6443 ct status & dnat != dnat' in text
    for bad in (podguard.Guard("fd00::/64", "cni0", 6443), podguard.Guard("10.0.0.0/8",
                                                                          'x" ; flush', 6443)):
        with pytest.raises(ValueError):
            podguard.render(bad)
