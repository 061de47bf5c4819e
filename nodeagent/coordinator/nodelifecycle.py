"""Node lifecycle from gossip: a node whose agent gossip declares failed (or gone) is marked
as Kubernetes' node lifecycle controller marks one whose kubelet stopped posting status.

Kubernetes waits for a heartbeat to go stale (40 s by default); gossip knows sooner
(SWIM with Lifeguard: seconds, without flapping for a member that is only slow).  For
each Node the member state is written to the annotation ``nodeagent.io/gossip``
(``nodectl get nodes -o wide`` shows it), and while the member is failed -- or has left
and its Node's heartbeat is older than Kubernetes' node-monitor grace period (40 s):
an agent that stops leaves gossip, but its pods keep running (KillMode=process), so a
leave is an agent restart or upgrade until its heartbeat says otherwise:

- the Ready condition is Unknown, reason NodeStatusUnknown ("Kubelet stopped posting
  node status."), as Kubernetes writes it;
- the taints node.kubernetes.io/unreachable NoSchedule and NoExecute are on: the
  scheduler keeps new pods off it, and the NoExecute taint manager (noexecute.py)
  evicts its pods once their toleration runs out;
- its pods' Ready condition is False (Kubernetes' MarkPodsNotReady), so the endpoints
  controller takes them out of every Service at once: a dead node's pods stop getting
  connections within the same pass, long before they are evicted.

When the member is alive again the taints go; the agent's own heartbeat sets Ready, and
its pod manager writes its pods' readiness as its probes see it.
Level-triggered like every controller: it looks at the members and the Nodes each
pass; a pass comes when gossip's view or a Node changes, and every 2 s anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from nodeagent.api.objects import now_rfc3339
from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NODES, PODS
from nodeagent.objects.podutil import condition, parse_time

__all__ = ["ANNOTATION", "NodeLifecycle"]

log = logging.getLogger("nodeagent.coordinator")

PREFIXES = (NODES.prefix(None),)
ANNOTATION = "nodeagent.io/gossip"
UNREACHABLE = "node.kubernetes.io/unreachable"
PASS_S = 2.0  # gossip wakes it at once; passes for heartbeats that went stale
GRACE_S = 40.0  # node-monitor-grace-period: a heartbeat older than this is stale


class NodeLifecycle:
    def __init__(self, objects: Objects, members: Callable[[], dict[str, str]], *,
                 clock: Callable[[], float] = time.time) -> None:
        """``members()``: gossip state by member name (alive, suspect, failed, left)."""
        self.objects, self.members, self.clock = objects, members, clock

    async def sync(self) -> float | None:
        states = self.members()
        for node in self.objects.list(NODES, None)["items"]:
            name = node["metadata"]["name"]
            state = states.get(name)
            if state is None:
                continue  # not a gossip member (yet): nothing known either way
            try:
                await self._reflect(node, state)
            except ApiError as exc:
                if exc.code not in (404, 409):  # gone, or changed under us: next pass
                    raise
        return PASS_S

    def _stale(self, node: dict[str, Any]) -> bool:
        ready = condition(node, "Ready") or {}
        return parse_time(ready.get("lastHeartbeatTime")) + GRACE_S < self.clock()

    async def _pods_not_ready(self, node: str) -> None:
        """Ready=False on every pod of a node that is gone, as Kubernetes' MarkPodsNotReady."""
        pods = self.objects.list(PODS, None, field_selector=f"spec.nodeName={node}")["items"]
        for pod in pods:
            status = dict(pod.get("status") or {})
            conditions = [dict(c) for c in status.get("conditions") or []]
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            ready.update(status="False", reason="NodeNotReady",
                         message=f"node {node} is unreachable", lastTransitionTime=now_rfc3339())
            for c in status.get("containerStatuses") or []:
                c["ready"] = False
            meta = pod["metadata"]
            try:
                await self.objects.update(PODS, meta["namespace"], meta["name"],
                                          {**pod, "status": {**status, "conditions": conditions}},
                                          subresource="status")
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
                continue  # gone or changed: the next pass sees it
            log.info("pod %s/%s: Ready=False (node %s unreachable)", meta["namespace"],
                     meta["name"], node)

    async def _reflect(self, node: dict[str, Any], state: str) -> None:
        name = node["metadata"]["name"]
        gone = state == "failed" or (state == "left" and self._stale(node))
        annotations = dict(node["metadata"].get("annotations") or {})
        spec = dict(node.get("spec") or {})
        taints = [t for t in spec.get("taints") or [] if t.get("key") != UNREACHABLE]
        if gone:
            taints += [{"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": now_rfc3339()},
                       {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now_rfc3339()}]
        old_taints = [t for t in spec.get("taints") or [] if t.get("key") == UNREACHABLE]
        if annotations.get(ANNOTATION) != state or bool(old_taints) != gone:
            annotations[ANNOTATION] = state
            spec["taints"] = taints
            if not taints:
                spec.pop("taints")
            node = await self.objects.update(NODES, None, name, {
                **node, "metadata": {**node["metadata"], "annotations": annotations},
                "spec": spec})
            log.info("node %s: gossip says %s%s", name, state,
                     "; tainted unreachable" if gone else "")
        if not gone:
            return
        await self._pods_not_ready(name)
        status = dict(node.get("status") or {})
        conditions = [dict(c) for c in status.get("conditions") or []]
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("status") == "Unknown":
            return
        now = now_rfc3339()
        unknown = {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                   "message": "Kubelet stopped posting node status.",
                   "lastHeartbeatTime": (ready or {}).get("lastHeartbeatTime", now),
                   "lastTransitionTime": now}
        conditions = [c for c in conditions if c.get("type") != "Ready"] + [unknown]
        await self.objects.update(NODES, None, name, {**node, "status": {**status,
                                                                         "conditions": conditions}},
                                  subresource="status")
        log.info("node %s: Ready=Unknown (gossip: %s)", name, state)
