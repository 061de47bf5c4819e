"""What pods may not reach on their node: its Raft and gossip ports at all, and its API
port but as the ``kubernetes`` Service -- the proxy's DNAT to it is the only way in from
the node's own pod bridge.

One table of its own (``ip nodeagent-guard``), replaced whole in one ``nft -f``
transaction, so the service rules' full reloads never touch it and it is never half
there.  It outlives the agent, as the service rules do: pods keep running across an
agent restart, and so does what fences them.

- From the pod network (``cidr``: the cluster's, or this node's block), the Raft and
  gossip ports (TCP and UDP) are dropped whatever the interface: no pod on any node has
  business with them (both also need this cluster's keys, but a pod should not even
  get to try).
- From this node's pod bridge, the API port is dropped unless the connection was
  DNAT-ed (``ct status dnat``): a pod calls the API as ``kubernetes.default.svc`` with
  its token, as in Kubernetes.  Pods on other nodes reach a server through the same
  Service without being masqueraded, so this rule stays on the local bridge.

The operator's and the launcher's unix sockets are in the agent's filesystem, which no
pod's mount namespace shows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from netns import libnft

__all__ = ["TABLE", "Guard", "render"]

TABLE = "nodeagent-guard"


@dataclass(frozen=True)
class Guard:
    cidr: str  # the pod network
    bridge: str  # this node's pod bridge
    api_port: int
    closed_ports: tuple[int, ...] = ()  # Raft and gossip: never from a pod


def render(guard: Guard) -> str:
    """The table as one transaction that replaces the previous one."""
    net = ipaddress.ip_network(guard.cidr, strict=False)
    if net.version != 4:
        raise ValueError(f"pod network {guard.cidr}: only IPv4 is guarded")
    if not guard.bridge.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"bridge name {guard.bridge!r}")
    ports = sorted({p for p in guard.closed_ports if 0 < p < 65536})
    lines = [f"table ip {TABLE} {{}}", f"delete table ip {TABLE}", f"table ip {TABLE} {{",
             "\tchain input {",
             "\t\ttype filter hook input priority filter; policy accept;"]
    if ports:
        listed = ", ".join(map(str, ports))
        lines.append(f"\t\tip saddr {net} meta l4proto {{ tcp, udp }} th dport {{ {listed} }} "
                     "counter drop")
    lines += [f'\t\tiifname "{guard.bridge}" ip saddr {net} tcp dport {int(guard.api_port)} '
              "ct status & dnat != dnat counter drop",
              "\t}", "}"]
    return "\n".join(lines) + "\n"


def apply(guard: Guard, netns_name: str | None = None) -> None:
    """Put the table in place (raises libnft.NftError, or OSError without nftables)."""
    if libnft.available():
        nft = libnft.Nft(netns_name)
        try:
            nft.run(render(guard))
        finally:
            nft.close()
        return
    import subprocess
    prefix = ["ip", "netns", "exec", netns_name] if netns_name else []
    p = subprocess.run([*prefix, "nft", "-f", "-"], input=render(guard), capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise OSError(p.stderr.strip()[:2000] or f"nft exited {p.returncode}")


def ports_of(addresses: Iterable[str]) -> tuple[int, ...]:
    """The ports of ``host:port`` strings (empty ones skipped)."""
    out = []
    for address in addresses:
        if address:
            try:
                out.append(int(address.rsplit(":", 1)[1]))
            except (IndexError, ValueError):
                continue
    return tuple(out)
