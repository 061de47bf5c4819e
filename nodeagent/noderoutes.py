"""Routes to the other nodes' pods, kept true from the Nodes (flannel's host-gw backend).

Every Node has a pod CIDR (spec.podCIDR, given by the coordinator) and an
InternalIP; this node routes each other node's CIDR via that address, so a pod on
node 1 reaches a pod on node 3 by its IP with neither overlay nor NAT.  The nodes
must share a layer-2 network (a lab switch, a VM bridge, a cloud subnet with source
checks off).  A Node that is deleted loses its route; one that is only unreachable
keeps it, since it is expected back.  Only routes netns.routes marked as ours are
ever changed.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import trio

from netns.routes import reconcile_routes
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NODES
from nodeagent.reconcile import reconcile

__all__ = ["run", "wanted_routes"]

log = logging.getLogger("nodeagent.routes")



def wanted_routes(nodes: list[dict[str, Any]], own: str) -> dict[str, str]:
    """Pod CIDR -> InternalIP of every node but ``own`` that has both."""
    out = {}
    for node in nodes:
        if node["metadata"]["name"] == own:
            continue
        cidr = (node.get("spec") or {}).get("podCIDR")
        ip = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                   if a.get("type") == "InternalIP"), None)
        if cidr and ip:
            out[cidr] = ip
    return out


async def run(objects: Objects, node: str, own_cidr: str, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async def sync() -> float | None:
        wanted = wanted_routes(objects.list(NODES, None)["items"], node)
        changes = await trio.to_thread.run_sync(partial(reconcile_routes, wanted, own_cidr))
        for c in changes:
            log.info("route %s %s via %s", c.action, c.cidr, c.via or "-")
        return None

    await reconcile("routes", objects.store, (NODES.prefix(None),), sync, task_status=task_status)
