"""NoExecute taints evict pods, as Kubernetes' taint manager (taint-based eviction).

A pod on a node with a NoExecute taint it does not tolerate is evicted at once; one
that tolerates it with ``tolerationSeconds`` is evicted that long after the taint's
``timeAdded``; one that tolerates it without a limit stays.  Kubernetes gives every pod
a toleration of 300 s for the node.kubernetes.io/unreachable and not-ready taints
(the DefaultTolerationSeconds admission plugin); here a pod without its own toleration
for them gets ``default_toleration_s`` (30 s unless configured), so a dead node's pods
are replaced elsewhere half a minute after gossip declared it failed.

Eviction is a graceful delete: the pod gets a deletionTimestamp, which takes it out of
its ReplicaSet's count (a replacement is made at once) while the object stays until
the node's agent confirms its containers stopped.  A node that comes back therefore
stops its stale pods instead of running them beside their replacements.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.events import EventRecorder
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NODES, PODS
from nodeagent.objects.podutil import parse_time, tolerates

__all__ = ["DEFAULT_TOLERATED", "TaintEviction", "eviction_time"]

log = logging.getLogger("nodeagent.coordinator")

PREFIXES = (NODES.prefix(None), PODS.prefix(None))
DEFAULT_TOLERATED = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
Obj = dict[str, Any]


def eviction_time(pod: Obj, taints: list[Obj], default_toleration_s: float) -> float | None:
    """When the pod must go (epoch seconds; 0 for now), None if it may stay."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    due: float | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            if taint.get("key") not in DEFAULT_TOLERATED:
                return 0.0
            seconds = default_toleration_s
        elif any(t.get("tolerationSeconds") is None for t in matching):
            continue  # tolerated for good
        else:
            seconds = min(float(t["tolerationSeconds"]) for t in matching)
        at = parse_time(taint.get("timeAdded")) + max(0.0, seconds)
        due = at if due is None else min(due, at)
    return due


class TaintEviction:
    def __init__(self, objects: Objects, *, default_toleration_s: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.objects, self.default_toleration_s, self.clock = objects, default_toleration_s, clock
        self.events = EventRecorder(objects, "taint-eviction-controller")

    async def sync(self) -> float | None:
        tainted = {n["metadata"]["name"]: n["spec"]["taints"]
                   for n in self.objects.list(NODES, None)["items"]
                   if any(t.get("effect") == "NoExecute"
                          for t in (n.get("spec") or {}).get("taints") or [])}
        if not tainted:
            return None
        now = self.clock()
        wake: float | None = None
        for pod in self.objects.list(PODS, None)["items"]:
            node = str((pod.get("spec") or {}).get("nodeName"))
            if node not in tainted or pod["metadata"].get("deletionTimestamp"):
                continue
            due = eviction_time(pod, tainted[node], self.default_toleration_s)
            if due is None:
                continue
            if due > now:
                wake = due - now if wake is None else min(wake, due - now)
                continue
            await self._evict(pod, node)
        return wake

    async def _evict(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        try:
            await self.objects.delete(PODS, meta["namespace"], meta["name"],
                                      preconditions_uid=meta["uid"])
        except ApiError as exc:
            if exc.code in (404, 409):
                return
            raise
        log.info("evicted pod %s/%s from node %s (NoExecute taint)", meta["namespace"],
                 meta["name"], node)
        await self.events.record(pod, "Normal", "TaintManagerEviction",
                                 f"Marking for deletion Pod {meta['namespace']}/{meta['name']}")
