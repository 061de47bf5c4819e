"""The scheduler: place each pending pod on a node that can run it, as kube-scheduler does.

Filters (kube-scheduler's plugins, with its words for why a node was left out): the
node is Ready and not unschedulable (NodeUnschedulable), carries no NoSchedule or
NoExecute taint the pod does not tolerate (TaintToleration), has the pod's
nodeSelector labels and matches its required node affinity (NodeAffinity), has the
pod's host ports free (NodePorts), and has room for its requests -- cpu, memory, pod
count -- in its allocatable after the pods already bound there (NodeResourcesFit).
Scores, each 0-100 and weighted as kube-scheduler's defaults: least allocated (1),
preferred node affinity (2), and spreading the pods of one owner over the nodes (2).

A pod that fits nowhere stays Pending with PodScheduled=False and a FailedScheduling
event that counts the nodes per reason, e.g. ``0/3 nodes are available: 1 Insufficient
cpu, 2 node(s) didn't match Pod's node affinity/selector.``

Speed, for thousands of pods over hundreds of nodes: every node's facts are read once
per pass; the filters that depend only on the pod's spec (taints, selector, affinity)
are worked out once per distinct spec (a ReplicaSet's pods share one) and not per
pod; and, as kube-scheduler's percentageOfNodesToScore, a pod is scored over enough
feasible nodes (all below 100 nodes, then a share falling to 5%) found from a start
that moves on with every pod, not over all of them.  Bindings are written together.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import trio

from nodeagent.api.status import ApiError
from nodeagent.coordinator.listcache import ListCache
from nodeagent.events import EventRecorder
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NODES, PODS
from nodeagent.objects.podutil import condition, controller_of, is_active, tolerates
from nodeagent.objects.quantity import parse_quantity

__all__ = ["PREFIXES", "Scheduler", "matches_term", "pod_requests"]

log = logging.getLogger("nodeagent.scheduler")

PREFIXES = (PODS.prefix(None), NODES.prefix(None))
SCHEDULER = "default-scheduler"
Obj = dict[str, Any]
WEIGHT_LEAST_ALLOCATED, WEIGHT_AFFINITY, WEIGHT_SPREAD = 1, 2, 2
MIN_FEASIBLE, MIN_PERCENT = 100, 5


def _amount(value: Any) -> float:
    return float(parse_quantity(str(value)).value)


def pod_requests(pod: Obj) -> dict[str, float]:
    """cpu (cores) and memory (bytes): the sum over containers, or the largest init
    container if that is more (init containers run one at a time), as Kubernetes."""
    spec = pod.get("spec") or {}

    def of(c: Obj) -> dict[str, float]:
        req = (c.get("resources") or {}).get("requests") or {}
        return {r: _amount(req[r]) for r in ("cpu", "memory") if r in req}
    total: dict[str, float] = {}
    for c in spec.get("containers") or []:
        for r, v in of(c).items():
            total[r] = total.get(r, 0.0) + v
    for c in spec.get("initContainers") or []:
        for r, v in of(c).items():
            total[r] = max(total.get(r, 0.0), v)
    return total


def _host_ports(pod: Obj) -> list[tuple[str, str, int]]:
    """(protocol, hostIP, hostPort) the pod asks for."""
    return [(p.get("protocol") or "TCP", p.get("hostIP") or "0.0.0.0", int(p["hostPort"]))
            for c in (pod.get("spec") or {}).get("containers") or []
            for p in c.get("ports") or [] if p.get("hostPort")]


def _port_taken(want: tuple[str, str, int], used: set[tuple[str, str, int]]) -> bool:
    proto, ip, port = want
    if ip == "0.0.0.0":
        return any(u[0] == proto and u[2] == port for u in used)
    return (proto, ip, port) in used or (proto, "0.0.0.0", port) in used


def _requirement(req: Obj, labels: dict[str, str]) -> bool:
    key, op, values = req.get("key", ""), req.get("operator"), req.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and len(values) == 1:
        try:
            have, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def matches_term(term: Obj, node_name: str, labels: dict[str, str]) -> bool:
    """A NodeSelectorTerm: its matchExpressions and matchFields (metadata.name) all hold.
    An empty term matches nothing, as in Kubernetes."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return all(_requirement(e, labels) for e in exprs) and \
        all(_requirement(f, {"metadata.name": node_name}) for f in fields)


@dataclass
class NodeInfo:
    """One node's facts for a pass, and what the pass has placed on it so far."""
    name: str
    labels: dict[str, str]
    why_not: str | None  # a reason no pod may go there (not ready, unschedulable)
    taints: list[Obj]
    allocatable: dict[str, float]
    used: dict[str, float] = field(default_factory=lambda: {"cpu": 0.0, "memory": 0.0, "pods": 0.0})
    ports: set[tuple[str, str, int]] = field(default_factory=set)
    owners: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, node: Obj) -> NodeInfo:
        spec, status = node.get("spec") or {}, node.get("status") or {}
        ready = condition(node, "Ready")
        why_not = None
        if ready is None or ready.get("status") != "True":
            why_not = "node(s) were not ready"
        elif spec.get("unschedulable"):
            why_not = "node(s) were unschedulable"
        alloc = status.get("allocatable") or {}
        return cls(node["metadata"]["name"], node["metadata"].get("labels") or {}, why_not,
                   [t for t in spec.get("taints") or []
                    if t.get("effect") in ("NoSchedule", "NoExecute")],
                   {"cpu": _amount(alloc.get("cpu", "0")),
                    "memory": _amount(alloc.get("memory", "0")),
                    "pods": float(int(alloc.get("pods", 110)))})

    def place(self, requests: dict[str, float], ports: list[tuple[str, str, int]],
              owner: str | None) -> None:
        for r, v in requests.items():
            self.used[r] += v
        self.used["pods"] += 1
        self.ports.update(ports)
        if owner:
            self.owners[owner] += 1


class Scheduler:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self.events = EventRecorder(objects, SCHEDULER)
        self._reported: dict[str, str] = {}  # pod uid -> last FailedScheduling message
        self._start = 0  # where the next pod's search for feasible nodes begins
        self._pods = ListCache(objects.store, PODS)  # read, never changed here
        # Pods found to fit nowhere, by uid, with the cluster they were tried against: not
        # tried again until a node or the set of bound pods changes (kube-scheduler's
        # unschedulable queue, which cluster events move pods out of).
        self._parked: dict[str, tuple[int, int, str]] = {}

    async def sync(self) -> float | None:
        nodes_raw = self.objects.list(NODES, None)["items"]
        nodes = [NodeInfo.of(n) for n in nodes_raw]
        by_name = {n.name: n for n in nodes}
        pending = []
        bound: list[str] = []
        for pod in self._pods.items():
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                if is_active(pod):
                    bound.append(pod["metadata"]["uid"])
                if node in by_name and is_active(pod):
                    ref = controller_of(pod)
                    by_name[node].place(pod_requests(pod), _host_ports(pod),
                                        ref["uid"] if ref else None)
            elif is_active(pod) and (pod["spec"].get("schedulerName") or SCHEDULER) == SCHEDULER:
                pending.append(pod)
        # What a parked pod waits for: another node or node state, or room freed.
        cluster = (hash(tuple((n["metadata"]["name"], n["metadata"].get("resourceVersion"))
                              for n in nodes_raw)),
                   hash(frozenset(bound)))
        # ...or a change of its own (a toleration added); a parked pod no longer pending
        # (deleted, bound by hand) is forgotten.
        waiting = {p["metadata"]["uid"]: (*cluster, p["metadata"].get("resourceVersion", ""))
                   for p in pending}
        self._parked = {uid: seen for uid, seen in self._parked.items()
                        if waiting.get(uid) == seen}
        pending = [p for p in pending if p["metadata"]["uid"] not in self._parked]
        pending.sort(key=lambda p: (-int(p["spec"].get("priority") or 0),
                                    p["metadata"].get("creationTimestamp", "")))
        static: dict[bytes, tuple[list[NodeInfo], Counter[str]]] = {}
        # Decide in order (priority, then age), then write the bindings together: the
        # store commits concurrent writes in one fsync.
        async with trio.open_nursery() as nursery:
            for pod in pending:
                node, why = self._choose(pod, nodes, static)
                if node is not None:
                    nursery.start_soon(self._bind, pod, node)
                else:
                    self._parked[pod["metadata"]["uid"]] = waiting[pod["metadata"]["uid"]]
                    nursery.start_soon(self._unschedulable, pod, why)
        return None

    # --- filters --------------------------------------------------------------------------

    def _static_fit(self, spec: Obj, nodes: list[NodeInfo]) -> tuple[list[NodeInfo], Counter[str]]:
        """The nodes whose fixed facts let pods of this spec in, and why the others don't."""
        why: Counter[str] = Counter()
        tolerations = spec.get("tolerations") or []
        selector = spec.get("nodeSelector") or {}
        affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution") or {}
        terms = affinity.get("nodeSelectorTerms") or []
        fit = []
        for n in nodes:
            if n.why_not:
                why[n.why_not] += 1
                continue
            taint = next((t for t in n.taints
                          if not any(tolerates(tol, t) for tol in tolerations)), None)
            if taint is not None:
                value = f": {taint['value']}" if taint.get("value") else ""
                why[f"node(s) had untolerated taint {{{taint['key']}{value}}}"] += 1
                continue
            if any(n.labels.get(k) != v for k, v in selector.items()) or \
                    (terms and not any(matches_term(t, n.name, n.labels) for t in terms)):
                why["node(s) didn't match Pod's node affinity/selector"] += 1
                continue
            fit.append(n)
        return fit, why

    @staticmethod
    def _room(n: NodeInfo, requests: dict[str, float], ports: list[tuple[str, str, int]]
              ) -> list[str]:
        """Why this pod does not fit in what is left of the node (empty: it does)."""
        reasons = []
        if ports and any(_port_taken(p, n.ports) for p in ports):
            reasons.append("node(s) didn't have free ports for the requested pod ports")
        for r in ("cpu", "memory"):
            want = requests.get(r, 0.0)
            if want > 0 and n.used[r] + want > n.allocatable[r]:
                reasons.append(f"Insufficient {r}")
        if n.used["pods"] + 1 > n.allocatable["pods"]:
            reasons.append("Too many pods")
        return reasons

    def _choose(self, pod: Obj, nodes: list[NodeInfo],
                static: dict[bytes, tuple[list[NodeInfo], Counter[str]]]) -> tuple[str | None, str]:
        """(the node, "") or (None, why no node fits); the choice is counted in its node."""
        spec = pod.get("spec") or {}
        key = orjson.dumps([spec.get("tolerations"), spec.get("nodeSelector"),
                            spec.get("affinity")], option=orjson.OPT_SORT_KEYS)
        if key not in static:
            static[key] = self._static_fit(spec, nodes)
        candidates, static_why = static[key]
        requests, ports = pod_requests(pod), _host_ports(pod)
        want = _feasible_wanted(len(nodes))
        feasible: list[NodeInfo] = []
        why: Counter[str] = Counter()
        count = len(candidates)
        start = self._start % count if count else 0
        looked = 0
        for i in range(count):
            n = candidates[(start + i) % count]
            looked += 1
            reasons = self._room(n, requests, ports)
            if reasons:
                why.update(reasons)
            else:
                feasible.append(n)
                if len(feasible) >= want:
                    break
        self._start = start + looked
        if not feasible:
            why.update(static_why)
            return None, (f"0/{len(nodes)} nodes are available: "
                          + ", ".join(f"{n} {r}" for r, n in sorted(why.items())) + "."
                          if nodes else "no nodes available to schedule pods")
        ref = controller_of(pod)
        best = self._best(feasible, spec, requests, ref["uid"] if ref else None)
        best.place(requests, ports, ref["uid"] if ref else None)
        return best.name, ""

    # --- scores ---------------------------------------------------------------------------

    @staticmethod
    def _best(feasible: list[NodeInfo], spec: Obj, requests: dict[str, float],
              owner: str | None) -> NodeInfo:
        preferred = (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution") or [])
        affinity = [sum(int(p.get("weight") or 0) for p in preferred
                        if matches_term(p.get("preference") or {}, n.name, n.labels))
                    for n in feasible] if preferred else None
        top_affinity = max(affinity) if affinity else 0
        same = [n.owners[owner] for n in feasible] if owner else None
        top_same = max(same) if same else 0
        best, best_score = feasible[0], -1.0
        for i, n in enumerate(feasible):
            free = 0.0
            for r in ("cpu", "memory"):
                cap = n.allocatable[r]
                if cap > 0:
                    free += max(0.0, cap - n.used[r] - requests.get(r, 0.0)) / cap
            score = WEIGHT_LEAST_ALLOCATED * 50.0 * free
            if affinity and top_affinity > 0:
                score += WEIGHT_AFFINITY * 100.0 * affinity[i] / top_affinity
            if same and top_same > 0:
                score += WEIGHT_SPREAD * 100.0 * (top_same - same[i]) / top_same
            if score > best_score:
                best, best_score = n, score
        return best

    # --- writes ---------------------------------------------------------------------------

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


def _feasible_wanted(nodes: int) -> int:
    """How many feasible nodes to score (kube-scheduler's numFeasibleNodesToFind)."""
    if nodes < MIN_FEASIBLE:
        return nodes
    percent = max(MIN_PERCENT, 50 - nodes // 125)
    return max(MIN_FEASIBLE, nodes * percent // 100)
