"""Pod CIDRs for nodes, as kube-controller-manager's range allocator
(``--allocate-node-cidrs --cluster-cidr --node-cidr-mask-size``).

Each Node without ``spec.podCIDR`` gets the lowest block of the cluster's pod network
that no other Node holds; a Node that came with one (an agent configured with
pod_cidr) keeps it and its block counts as taken.  A deleted Node's block is free
again, since the taken set is read from the Nodes each pass, never kept.  The node's
agent waits for its block before it makes its pod bridge, and every agent routes the
others' blocks to their addresses (noderoutes.py).
"""

from __future__ import annotations

import ipaddress
import logging

from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NODES

__all__ = ["NodeIpam"]

log = logging.getLogger("nodeagent.coordinator")

PREFIXES = (NODES.prefix(None),)


class NodeIpam:
    def __init__(self, objects: Objects, cluster_cidr: str, mask: int = 24) -> None:
        self.objects = objects
        self.network = ipaddress.ip_network(cluster_cidr)
        self.mask = mask

    async def sync(self) -> float | None:
        nodes = sorted(self.objects.list(NODES, None)["items"],
                       key=lambda n: (n["metadata"].get("creationTimestamp", ""),
                                      n["metadata"]["name"]))
        taken = set()
        for node in nodes:
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr:
                try:
                    taken.add(ipaddress.ip_network(cidr, strict=False))
                except ValueError:
                    log.warning("node %s: podCIDR %r is not a network", node["metadata"]["name"],
                                cidr)
        free = (b for b in self.network.subnets(new_prefix=self.mask)
                if not any(b.overlaps(t) for t in taken))
        for node in nodes:
            if (node.get("spec") or {}).get("podCIDR"):
                continue
            name = node["metadata"]["name"]
            block = next(free, None)
            if block is None:
                log.warning("node %s: no pod CIDR left in %s", name, self.network)
                return None
            spec = {**(node.get("spec") or {}), "podCIDR": str(block), "podCIDRs": [str(block)]}
            try:
                await self.objects.update(NODES, None, name, {**node, "spec": spec})
            except ApiError as exc:
                if exc.code in (404, 409):
                    return 0.05  # gone or changed meanwhile: look again
                raise
            log.info("node %s: podCIDR %s", name, block)
        return None
