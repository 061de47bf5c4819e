"""The lab's network: N "nodes" as network namespaces on one switch, like a Vagrant host-only net.

    PREFIX-switch   a namespace holding the bridge lab0 (the "switch")
    PREFIX-host     a veth in the machine's namespace, SUBNET.1, plugged into the switch
    PREFIX-node<i>  node i: eth0 = SUBNET.(10+i) on the switch, default route via the host
                    link, a pod bridge cni0 = 10.244.<i>.1/24, and a route to every other
                    node's pod CIDR via that node's address (host-gateway, no overlay)

Pods of node i hang off node i's own bridge, so a pod on node 1 reaches a pod on
node 2 only through the nodes' routes.  With ``pod_network=False`` the nodes get
neither bridge nor routes: a cluster's agents make them from the pod CIDRs their
coordinator hands out.  ``up`` is idempotent and refuses to
use a subnet the machine already routes elsewhere; ``down`` removes everything
with the prefix, also after a crash half-way.  Nothing here programs netfilter.
"""

from __future__ import annotations

import errno
import ipaddress
import subprocess
import sys
from dataclasses import dataclass

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from netns.ipam import Ipam
from netns.routes import reconcile_routes
from netns.sandbox import NodeNet, SandboxManager

__all__ = ["Lab", "LabError"]


class LabError(Exception):
    pass


@dataclass(frozen=True)
class Lab:
    prefix: str = "nalab"
    subnet: str = "192.168.56.0/24"
    state_dir: str = "/var/lib/nodeagent-lab"

    @property
    def switch(self) -> str:
        return f"{self.prefix}-switch"

    @property
    def host_link(self) -> str:
        return f"{self.prefix}-host"[:15]

    def node_ns(self, i: int) -> str:
        return f"{self.prefix}-node{i}"

    def node_address(self, i: int) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + 10 + i)

    @property
    def host_address(self) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + 1)

    def pod_cidr(self, i: int) -> str:
        return f"10.244.{i}.0/24"

    def nodes(self) -> list[int]:
        prefix = f"{self.prefix}-node"
        return sorted(int(n[len(prefix):]) for n in netns.listnetns()
                      if n.startswith(prefix) and n[len(prefix):].isdigit())

    # --- up -------------------------------------------------------------------------------

    def _check_subnet_is_ours(self) -> None:
        net = ipaddress.ip_network(self.subnet)
        with IPRoute() as ipr:
            ours = ipr.link_lookup(ifname=self.host_link)
            for route in ipr.get_routes(family=2):
                dst = route.get_attr("RTA_DST")
                if dst is None:
                    continue
                rnet = ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False)
                if rnet.overlaps(net) and route.get_attr("RTA_OIF") not in ours:
                    raise LabError(f"{self.subnet} is already routed on this machine "
                                   f"({rnet}); the lab will not take it over")

    def up(self, n: int, pod_network: bool = True) -> None:
        if not 1 <= n <= 200:
            raise LabError("between 1 and 200 nodes")
        self._check_subnet_is_ours()
        prefixlen = ipaddress.ip_network(self.subnet).prefixlen
        existing = set(netns.listnetns())
        if self.switch not in existing:
            netns.create(self.switch)
        with NetNS(self.switch) as sw:
            if not sw.link_lookup(ifname="lab0"):
                sw.link("add", ifname="lab0", kind="bridge")
            lab0 = sw.link_lookup(ifname="lab0")[0]
            sw.link("set", index=lab0, state="up")
        with IPRoute() as host:
            if not host.link_lookup(ifname=self.host_link):
                host.link("add", ifname=self.host_link, kind="veth",
                          peer={"ifname": "host", "net_ns_fd": self.switch})
            idx = host.link_lookup(ifname=self.host_link)[0]
            if not any(a.get_attr("IFA_ADDRESS") == self.host_address
                       for a in host.get_addr(index=idx)):
                host.addr("add", index=idx, address=self.host_address, prefixlen=prefixlen)
            host.link("set", index=idx, state="up")
        with NetNS(self.switch) as sw:
            port = sw.link_lookup(ifname="host")[0]
            sw.link("set", index=port, master=sw.link_lookup(ifname="lab0")[0], state="up")
        for i in range(1, n + 1):
            self._node_up(i, prefixlen, pod_network)
        if not pod_network:
            return
        wanted = {self.pod_cidr(i): self.node_address(i) for i in range(1, n + 1)}
        for i in range(1, n + 1):
            reconcile_routes(wanted, own_cidr=self.pod_cidr(i), netns_name=self.node_ns(i))

    def _node_up(self, i: int, prefixlen: int, pod_network: bool) -> None:
        name = self.node_ns(i)
        if name not in netns.listnetns():
            netns.create(name)
        port = f"n{i}"
        with NetNS(self.switch) as sw:
            if not sw.link_lookup(ifname=port):
                sw.link("add", ifname=port, kind="veth", peer={"ifname": "eth0", "net_ns_fd": name})
            idx = sw.link_lookup(ifname=port)[0]
            sw.link("set", index=idx, master=sw.link_lookup(ifname="lab0")[0], state="up")
        with NetNS(name) as node:
            node.link("set", index=node.link_lookup(ifname="lo")[0], state="up")
            eth0 = node.link_lookup(ifname="eth0")[0]
            if not any(a.get_attr("IFA_ADDRESS") == self.node_address(i)
                       for a in node.get_addr(index=eth0)):
                node.addr("add", index=eth0, address=self.node_address(i), prefixlen=prefixlen)
            node.link("set", index=eth0, state="up")
            if not node.get_default_routes(family=2):
                node.route("add", dst="0.0.0.0/0", gateway=self.host_address)
        if pod_network:
            self.pods(i).ensure_bridge()

    def pods(self, i: int) -> SandboxManager:
        """The pod sandboxes of node i (its bridge, IPAM and netns names)."""
        net = NodeNet(cidr=self.pod_cidr(i), node_netns=self.node_ns(i),
                      netns_prefix=f"{self.prefix}-n{i}-pod-")
        return SandboxManager(net, Ipam(f"{self.state_dir}/node{i}/ipam", net.cidr))

    # --- down and checks ------------------------------------------------------------------

    def down(self) -> None:
        for name in netns.listnetns():
            if name.startswith(f"{self.prefix}-"):
                netns.remove(name)  # its veths go with it
        with IPRoute() as host:
            found = host.link_lookup(ifname=self.host_link)
            if found:
                try:
                    host.link("del", index=found[0])
                except NetlinkError as exc:
                    # ENODEV: the kernel removed it meanwhile, with its peer's namespace
                    if exc.code != errno.ENODEV:
                        raise

    def route_is_through_lab(self, address: str) -> bool:
        """What the host must check before it sends to a lab address (`ip route get`)."""
        out = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True,
                             text=True).stdout
        return f" dev {self.host_link} " in out


def main(argv: list[str] | None = None) -> int:
    """python -m netns.lab up N | down | route-check ADDRESS  [--prefix P] [--subnet S] [--state DIR]"""
    import argparse
    p = argparse.ArgumentParser(prog="python -m netns.lab", description="The lab's network.")
    p.add_argument("verb", choices=["up", "down", "route-check"])
    p.add_argument("arg", nargs="?")
    p.add_argument("--prefix", default="nalab")
    p.add_argument("--subnet", default="192.168.56.0/24")
    p.add_argument("--state", default="/var/lib/nodeagent-lab")
    p.add_argument("--no-pod-network", action="store_true",
                   help="no pod bridges or routes: the agents make them (cluster_cidr)")
    a = p.parse_args(argv)
    lab = Lab(a.prefix, a.subnet, a.state)
    try:
        if a.verb == "up":
            lab.up(int(a.arg or 1), pod_network=not a.no_pod_network)
            for i in lab.nodes():
                cidr = "-" if a.no_pod_network else lab.pod_cidr(i)
                print(f"node{i}\t{lab.node_ns(i)}\t{lab.node_address(i)}\t{cidr}")
        elif a.verb == "down":
            lab.down()
        else:
            if not lab.route_is_through_lab(a.arg or ""):
                print(f"{a.arg} is not reached through {lab.host_link}", file=sys.stderr)
                return 1
    except (LabError, ValueError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
