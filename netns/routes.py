"""Cross-node routes, host-gateway style: one route per other node's pod CIDR via its address.

No overlay and no NAT between pods: a packet for a pod on node 3 leaves node 1
for node 3's address and node 3's bridge delivers it.  :func:`reconcile_routes`
makes the routing table match the node list -- adds missing routes, changes
ones whose gateway moved, removes routes of nodes that are gone -- and only
ever touches routes it marked as its own (a dedicated routing protocol
number), so routes made by anyone else are left alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from pyroute2 import IPRoute, NetNS

__all__ = ["RouteChange", "reconcile_routes"]

# rtnetlink protocol numbers 0-4 are the kernel's, larger ones are free for daemons
# (bird uses 12, zebra 11); ours marks "made by nodeagent" so reconcile never deletes others'.
RTPROT_NODEAGENT = 177


@dataclass(frozen=True)
class RouteChange:
    action: str  # add | replace | delete
    cidr: str
    via: str | None


def _ours(ipr: IPRoute) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in ipr.get_routes(family=2, proto=RTPROT_NODEAGENT):
        dst = r.get_attr("RTA_DST")
        if dst is not None:
            out[f"{dst}/{r['dst_len']}"] = r.get_attr("RTA_GATEWAY")
    return out


def reconcile_routes(wanted: Mapping[str, str], own_cidr: str | None = None,
                     netns_name: str | None = None) -> list[RouteChange]:
    """Make our routes exactly ``wanted`` (pod CIDR -> node address); returns the changes.

    ``own_cidr`` (this node's pod CIDR) is never routed elsewhere.  Blocks on netlink:
    call it from a thread.
    """
    normal = {str(ipaddress.ip_network(c)): str(ipaddress.ip_address(v))
              for c, v in wanted.items() if own_cidr is None or
              ipaddress.ip_network(c) != ipaddress.ip_network(own_cidr)}
    changes: list[RouteChange] = []
    with (NetNS(netns_name) if netns_name else IPRoute()) as ipr:
        current = _ours(ipr)
        for cidr, via in sorted(normal.items()):
            if current.get(cidr) == via:
                continue
            action = "replace" if cidr in current else "add"
            ipr.route("replace", dst=cidr, gateway=via, proto=RTPROT_NODEAGENT)
            changes.append(RouteChange(action, cidr, via))
        for cidr in sorted(set(current) - set(normal)):
            ipr.route("del", dst=cidr, proto=RTPROT_NODEAGENT)
            changes.append(RouteChange("delete", cidr, None))
    return changes
