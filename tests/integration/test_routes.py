"""Host-gateway routes reconciled from the node list, inside a namespace the test makes."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from waiting import needs_root

pytestmark = needs_root("network namespaces")

from pyroute2 import NetNS, netns  # noqa: E402

from netns.routes import RouteChange, reconcile_routes  # noqa: E402


@pytest.fixture
def node():
    name = f"natest-routes-{uuid.uuid4().hex[:6]}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            ns.link("add", ifname="lab0", kind="veth", peer={"ifname": "lab0p"})
            idx = ns.link_lookup(ifname="lab0")[0]
            ns.addr("add", index=idx, address="192.168.56.11", prefixlen=24)
            ns.link("set", index=idx, state="up")
            ns.link("set", index=ns.link_lookup(ifname="lab0p")[0], state="up")
        yield name
    finally:
        netns.remove(name)


def routes(name: str) -> str:
    return subprocess.run(["ip", "-n", name, "route"], capture_output=True, text=True).stdout


def test_routes_follow_the_node_list(node):
    nodes = {"10.244.1.0/24": "192.168.56.11", "10.244.2.0/24": "192.168.56.12",
             "10.244.3.0/24": "192.168.56.13"}
    changes = reconcile_routes(nodes, own_cidr="10.244.1.0/24", netns_name=node)
    assert changes == [RouteChange("add", "10.244.2.0/24", "192.168.56.12"),
                       RouteChange("add", "10.244.3.0/24", "192.168.56.13")]
    table = routes(node)
    assert "10.244.2.0/24 via 192.168.56.12" in table and "10.244.1.0/24" not in table
    assert reconcile_routes(nodes, own_cidr="10.244.1.0/24", netns_name=node) == []
    # Node 3 moved to another address, node 2 left.
    moved = {"10.244.1.0/24": "192.168.56.11", "10.244.3.0/24": "192.168.56.23"}
    changes = reconcile_routes(moved, own_cidr="10.244.1.0/24", netns_name=node)
    assert changes == [RouteChange("replace", "10.244.3.0/24", "192.168.56.23"),
                       RouteChange("delete", "10.244.2.0/24", None)]
    table = routes(node)
    assert "10.244.3.0/24 via 192.168.56.23" in table and "10.244.2.0/24" not in table


def test_routes_made_by_others_are_left_alone(node):
    subprocess.run(["ip", "-n", node, "route", "add", "10.99.0.0/16", "via", "192.168.56.1"],
                   check=True)
    reconcile_routes({}, netns_name=node)
    assert "10.99.0.0/16 via 192.168.56.1" in routes(node)
