"""Pod sandboxes: a named network namespace per pod, a veth into the node's bridge, an IP.

The node side lives in the node's network namespace (``NodeNet.node_netns``;
None means the namespace of the calling process, as on a real machine; the
lab and the tests give each "node" its own).  Creating a sandbox allocates an
address (netns/ipam.py), makes ``<prefix><pod uid>`` under /run/netns, a
veth pair whose host end joins the bridge and whose pod end becomes ``eth0``
with the address, the bridge's address as default gateway, and loopback up.
Any failure half-way undoes what was done; ``reconcile`` removes sandboxes and
addresses of pods that no longer exist (after a crash, say).

These calls block (netlink); the agent runs them with ``trio.to_thread``.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import ipaddress
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from netns.ipam import Ipam

__all__ = ["NodeNet", "Sandbox", "SandboxError", "SandboxManager"]


class SandboxError(Exception):
    pass


@dataclass(frozen=True)
class NodeNet:
    cidr: str  # the node's pod CIDR, e.g. 10.244.1.0/24
    bridge: str = "cni0"
    node_netns: str | None = None
    mtu: int = 1500
    netns_prefix: str = "nodeagent-"


@dataclass(frozen=True)
class Sandbox:
    pod_uid: str
    netns: str
    ip: str
    gateway: str
    prefixlen: int
    host_veth: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.netns}"


NETNS_DIR = netns.NETNS_RUN_DIR
LOOPBACK_INDEX = 1  # the kernel gives lo index 1 in every namespace


def _index(ipr: IPRoute, name: str) -> int | None:
    """An interface's index by one RTM_GETLINK for its name (link_lookup dumps them all:
    with a hundred pods, a hundred times the work)."""
    try:
        return int(ipr.link("get", ifname=name)[0]["index"])
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


def _exists_ok(call: Any, *args: Any, **kwargs: Any) -> None:
    """An add that may find its object there already (a sandbox made again after a crash)."""
    try:
        call(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


def host_veth_name(pod_uid: str) -> str:
    """Interface names are at most 15 bytes: 'veth' + 8 hex of the pod uid's hash."""
    return "veth" + hashlib.sha1(pod_uid.encode()).hexdigest()[:8]


@contextlib.contextmanager
def _inside(name: str) -> Iterator[None]:
    """Run the block in network namespace ``name``, then come back (this thread)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        netns.setns(name, flags=0)
        yield
    finally:
        netns.setns(home, flags=0)
        os.close(home)


class SandboxManager:
    """``in_process``: make namespaces and configure the pod side from this process
    (unshare/setns and back) instead of pyroute2's forked helpers -- several times
    faster, but only for a single-threaded caller such as the launcher: pyroute2 binds
    /proc/self/ns/net, the main thread's namespace."""

    def __init__(self, net: NodeNet, ipam: Ipam, *, in_process: bool = False) -> None:
        self.net = net
        self.ipam = ipam
        self.network = ipaddress.ip_network(net.cidr)
        self.in_process = in_process
        # In-process, one netlink socket to the node's namespace serves every call: making
        # one (pyroute2 starts an event loop for it) cost more than the work it did.
        self._node_socket: IPRoute | None = None
        self._bridge_index: int | None = None

    def close(self) -> None:
        if self._node_socket is not None:
            self._node_socket.close()
            self._node_socket = None

    def _make_netns(self, name: str) -> None:
        if not self.in_process:
            netns.create(name)
            return
        home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            netns._create(name)  # unshare + bind mount, in this process (pyroute2 0.9)
        finally:
            netns.setns(home, flags=0)
            os.close(home)

    @contextlib.contextmanager
    def _pod(self, name: str) -> Iterator[IPRoute]:
        """A netlink socket in the pod's namespace."""
        if not self.in_process:
            with NetNS(name) as pod:
                yield pod
            return
        with _inside(name):
            sock = IPRoute()  # a socket keeps the namespace it was made in
        try:
            yield sock
        finally:
            sock.close()

    @contextlib.contextmanager
    def _node(self) -> Iterator[IPRoute]:
        if self.in_process and not self.net.node_netns:
            if self._node_socket is None:
                self._node_socket = IPRoute()
            yield self._node_socket
            return
        with NetNS(self.net.node_netns) if self.net.node_netns else IPRoute() as node:
            yield node

    def netns_name(self, pod_uid: str) -> str:
        return f"{self.net.netns_prefix}{pod_uid}"

    # --- the node's bridge ----------------------------------------------------------------

    def ensure_bridge(self) -> None:
        """The bridge with the gateway address, up; forwarding on in the node namespace."""
        with self._node() as node:
            found = node.link_lookup(ifname=self.net.bridge)
            if not found:
                node.link("add", ifname=self.net.bridge, kind="bridge")
                found = node.link_lookup(ifname=self.net.bridge)
            idx = found[0]
            node.link("set", index=idx, mtu=self.net.mtu, state="up")
            have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in node.get_addr(index=idx)}
            if (str(self.ipam.gateway), self.network.prefixlen) not in have:
                node.addr("add", index=idx, address=str(self.ipam.gateway),
                          prefixlen=self.network.prefixlen)
        # Forwarding (pods reach other nodes' pods and beyond; the CNI bridge plugin turns
        # it on the same way), and bridged pod-to-pod packets through the IP hooks so
        # service DNAT is undone on replies between pods of one bridge (br_netfilter).
        # Both are settings of the node's network namespace.
        if self.net.node_netns:
            subprocess.run(["ip", "netns", "exec", self.net.node_netns, "sysctl", "-qw",
                            "net.ipv4.ip_forward=1"], check=True)
            subprocess.run(["ip", "netns", "exec", self.net.node_netns, "sysctl", "-qw",
                            "net.bridge.bridge-nf-call-iptables=1"], check=False)
        else:  # we run in the node's namespace
            for path, required in (("/proc/sys/net/ipv4/ip_forward", True),
                                   ("/proc/sys/net/bridge/bridge-nf-call-iptables", False)):
                try:
                    with open(path, "w") as f:
                        f.write("1")
                except OSError:
                    if required:
                        raise

    # --- sandboxes ------------------------------------------------------------------------

    def create(self, pod_uid: str) -> Sandbox:
        name = self.netns_name(pod_uid)
        veth = host_veth_name(pod_uid)
        ip = self.ipam.allocate(pod_uid)
        sandbox = Sandbox(pod_uid, name, ip, str(self.ipam.gateway), self.network.prefixlen, veth)
        made_netns = False
        try:
            if not os.path.exists(os.path.join(NETNS_DIR, name)):
                self._make_netns(name)
                made_netns = True
            with self._node() as node:
                self._add_veth(node, veth, name)
            with self._pod(name) as pod:
                pod.link("set", index=LOOPBACK_INDEX, state="up")
                eth0 = _index(pod, "eth0")
                if eth0 is None:
                    raise SandboxError(f"pod {pod_uid}: no eth0 in its namespace")
                pod.link("set", index=eth0, mtu=self.net.mtu, state="up")
                _exists_ok(pod.addr, "add", index=eth0, address=ip,
                           prefixlen=self.network.prefixlen)
                _exists_ok(pod.route, "add", dst="0.0.0.0/0", gateway=str(self.ipam.gateway))
        except (NetlinkError, OSError, SandboxError, IndexError) as exc:
            self._undo(pod_uid, remove_netns=made_netns)
            if isinstance(exc, SandboxError):
                raise
            raise SandboxError(f"sandbox for pod {pod_uid}: {exc}") from exc
        return sandbox

    def _add_veth(self, node: IPRoute, veth: str, netns_name: str) -> None:
        """The pod's veth pair, its node end on the bridge and up, in one request (the
        bridge's index is remembered: looking it up per pod was a third of the work)."""
        for attempt in range(2):
            if self._bridge_index is None or attempt:
                self._bridge_index = _index(node, self.net.bridge)
                if self._bridge_index is None:
                    raise SandboxError(f"bridge {self.net.bridge} does not exist on the node")
            try:
                node.link("add", ifname=veth, kind="veth", master=self._bridge_index,
                          mtu=self.net.mtu, state="up",
                          peer={"ifname": "eth0", "net_ns_fd": netns_name, "mtu": self.net.mtu})
                return
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:  # made before a crash: put it right
                    node.link("set", index=_index(node, veth), master=self._bridge_index,
                              mtu=self.net.mtu, state="up")
                    return
                if attempt:
                    raise

    def _undo(self, pod_uid: str, remove_netns: bool = True) -> None:
        name = self.netns_name(pod_uid)
        veth = host_veth_name(pod_uid)
        try:
            with self._node() as node:
                found = _index(node, veth)
                if found is not None:
                    node.link("del", index=found)  # takes the pod's end with it
        except (NetlinkError, OSError):
            pass
        if remove_netns and os.path.exists(os.path.join(NETNS_DIR, name)):
            netns.remove(name)
        ip = self.ipam.release(pod_uid)
        if ip is not None:
            self._forget_flows(ip)

    def _forget_flows(self, ip: str) -> None:
        """Drop the node's conntrack entries of flows DNATed to the pod (its Services').

        A closed connection's entry lingers (TIME_WAIT, 2 minutes); a client reusing its
        source port could be sent along it to an address nobody holds any more ("no route
        to host").  The pod is gone by now, so no live connection is cut.
        """
        prefix = ["ip", "netns", "exec", self.net.node_netns] if self.net.node_netns else []
        with contextlib.suppress(FileNotFoundError):  # no conntrack tool: nothing to do
            # Exit code 1 means no entry matched.
            subprocess.run([*prefix, "conntrack", "-D", "--dst-nat", ip], capture_output=True,
                           check=False, timeout=10)

    def delete(self, pod_uid: str) -> None:
        """Remove the sandbox and give back its address; deleting twice is fine."""
        self._undo(pod_uid)

    def list(self) -> builtins.list[str]:
        prefix = self.net.netns_prefix
        return sorted(n[len(prefix):] for n in netns.listnetns() if n.startswith(prefix))

    def reconcile(self, live_pods: set[str]) -> builtins.list[str]:
        """Remove sandboxes and addresses of pods not in ``live_pods``; returns their uids."""
        gone = [uid for uid in self.list() if uid not in live_pods]
        for uid in gone:
            self.delete(uid)
        self.ipam.reconcile(live_pods)
        return gone
