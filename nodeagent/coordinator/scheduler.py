"""Scheduler, first version: place each pending pod on a node that can run it.

Filters, with kube-scheduler's words for why a node was left out: the node is
Ready and not unschedulable, carries no NoSchedule/NoExecute taint the pod does
not tolerate, has the pod's nodeSelector labels, and has room for the pod's
requests (cpu, memory, pod count) in its allocatable after the pods already
bound there.  Among the nodes left, the least allocated wins, with fewer pods of
the same owner as the tie-breaker (spreading a ReplicaSet).  Binding goes
through the pods/binding subresource; a pod that fits nowhere stays Pending
with PodScheduled=False and a FailedScheduling event such as
``0/1 nodes are available: 1 Insufficient cpu.``
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from typing import Any

import trio

from nodeagent.api.status import ApiError
from nodeagent.coordinator.podutil import condition, controller_of, is_active
from nodeagent.events import EventRecorder
from nodeagent.objects.kinds import by_kind
from nodeagent.objects.quantity import parse_quantity

__all__ = ["PREFIXES", "Scheduler", "pod_requests"]

log = logging.getLogger("nodeagent.scheduler")

PODS = by_kind("Pod")
NODES = by_kind("Node")
assert PODS is not None and NODES is not None
PREFIXES = (PODS.prefix(None), NODES.prefix(None))
SCHEDULER = "default-scheduler"
Obj = dict[str, Any]


def _amount(value: Any) -> float:
    return float(parse_quantity(str(value)).value)


def pod_requests(pod: Obj) -> dict[str, float]:
    """cpu (cores) and memory (bytes): the sum over containers, or the largest init
    container if that is more (init containers run one at a time), as Kubernetes."""
    spec = pod.get("spec") or {}

    def of(c: Obj) -> dict[str, float]:
        req = (c.get("resources") or {}).get("requests") or {}
        return {r: _amount(req[r]) for r in ("cpu", "memory") if r in req}
    total: dict[str, float] = defaultdict(float)
    for c in spec.get("containers") or []:
        for r, v in of(c).items():
            total[r] += v
    for c in spec.get("initContainers") or []:
        for r, v in of(c).items():
            total[r] = max(total[r], v)
    return dict(total)


def _tolerates(pod: Obj, taint: Obj) -> bool:
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


class Scheduler:
    def __init__(self, objects: Any) -> None:
        self.objects = objects
        self.events = EventRecorder(objects, SCHEDULER)
        self._reported: dict[str, str] = {}  # pod uid -> last FailedScheduling message

    async def sync(self) -> float | None:
        nodes = self.objects.list(NODES, None)["items"]
        pods = self.objects.list(PODS, None)["items"]
        used: dict[str, dict[str, float]] = {n["metadata"]["name"]: defaultdict(float) for n in nodes}
        owners_on: dict[str, Counter[str]] = {n["metadata"]["name"]: Counter() for n in nodes}
        pending = []
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                if node in used and is_active(pod):
                    for r, v in pod_requests(pod).items():
                        used[node][r] += v
                    used[node]["pods"] += 1
                    ref = controller_of(pod)
                    if ref:
                        owners_on[node][ref["uid"]] += 1
            elif is_active(pod) and (pod["spec"].get("schedulerName") or SCHEDULER) == SCHEDULER:
                pending.append(pod)
        pending.sort(key=lambda p: (-int(p["spec"].get("priority") or 0),
                                    p["metadata"].get("creationTimestamp", "")))
        # Decide in order (priority, then age), then write the bindings together: the
        # store commits concurrent writes in one fsync.
        async with trio.open_nursery() as nursery:
            for pod in pending:
                node, why = self._choose(pod, nodes, used, owners_on)
                if node is not None:
                    nursery.start_soon(self._bind, pod, node)
                else:
                    nursery.start_soon(self._unschedulable, pod, why)
        return None

    def _fits(self, pod: Obj, node: Obj, used: dict[str, float],
              requests: dict[str, float]) -> list[str]:
        """Why the pod cannot go on this node (empty: it can)."""
        spec, status = node.get("spec") or {}, node.get("status") or {}
        ready = condition(node, "Ready")
        if ready is None or ready.get("status") != "True":
            return ["node(s) were not ready"]
        if spec.get("unschedulable"):
            return ["node(s) were unschedulable"]
        for taint in spec.get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(pod, taint):
                value = f": {taint['value']}" if taint.get("value") else ""
                return [f"node(s) had untolerated taint {{{taint['key']}{value}}}"]
        labels = node["metadata"].get("labels") or {}
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            return ["node(s) didn't match Pod's node affinity/selector"]
        allocatable = status.get("allocatable") or {}
        reasons = []
        for r in ("cpu", "memory"):
            if r in requests and requests[r] > 0:
                room = _amount(allocatable.get(r, "0"))
                if used.get(r, 0.0) + requests[r] > room:
                    reasons.append(f"Insufficient {r}")
        if used.get("pods", 0) + 1 > int(allocatable.get("pods", 110)):
            reasons.append("Too many pods")
        return reasons

    def _choose(self, pod: Obj, nodes: list[Obj], used: dict[str, dict[str, float]],
                owners_on: dict[str, Counter[str]]) -> tuple[str | None, str]:
        """(the node, "") or (None, why no node fits); the choice is counted in ``used``."""
        requests = pod_requests(pod)
        why: Counter[str] = Counter()
        fit = []
        for node in nodes:
            name = node["metadata"]["name"]
            reasons = self._fits(pod, node, used[name], requests)
            if reasons:
                why.update(reasons)
            else:
                fit.append(node)
        if not fit:
            return None, (f"0/{len(nodes)} nodes are available: "
                          + ", ".join(f"{n} {r}" for r, n in sorted(why.items())) + "."
                          if nodes else "no nodes available to schedule pods")
        ref = controller_of(pod)

        def score(node: Obj) -> tuple[float, int]:
            name = node["metadata"]["name"]
            alloc = (node.get("status") or {}).get("allocatable") or {}
            free = []
            for r in ("cpu", "memory"):
                cap = _amount(alloc.get(r, "0")) or 1.0
                free.append((cap - used[name].get(r, 0.0) - requests.get(r, 0.0)) / cap)
            same_owner = owners_on[name][ref["uid"]] if ref else 0
            return (-same_owner, sum(free) / len(free))
        name = max(fit, key=score)["metadata"]["name"]
        for r, v in requests.items():
            used[name][r] += v
        used[name]["pods"] += 1
        if ref:
            owners_on[name][ref["uid"]] += 1
        return name, ""

    async def _bind(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        try:
            await self.objects.bind(meta["namespace"], meta["name"],
                                    {"target": {"kind": "Node", "name": node}})
        except ApiError as exc:
            if exc.code in (404, 409):
                return  # deleted or bound meanwhile
            raise
        self._reported.pop(meta["uid"], None)
        await self.events.record(pod, "Normal", "Scheduled",
                                 f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}")

    async def _unschedulable(self, pod: Obj, message: str) -> None:
        meta = pod["metadata"]
        if self._reported.get(meta["uid"]) == message:
            return  # said already; the event's count is for new attempts, not passes
        self._reported[meta["uid"]] = message
        await self.events.record(pod, "Warning", "FailedScheduling", message)
        status = dict(pod.get("status") or {})
        status["phase"] = status.get("phase") or "Pending"
        status["conditions"] = [c for c in status.get("conditions") or []
                                if c.get("type") != "PodScheduled"] + [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": message}]
        try:
            await self.objects.update(PODS, meta["namespace"], meta["name"],
                                      {**pod, "status": status}, subresource="status")
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
