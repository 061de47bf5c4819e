"""ReplicaSet controller: as many active pods as ``spec.replicas``, and a true status.
The same controller keeps ReplicationControllers, whose selector is a label map.

Each pass, per ReplicaSet: adopt orphan pods its selector matches and release
owned pods it no longer matches (ownerReferences, written with the pod's
resourceVersion so two controllers cannot both adopt one pod), then create or
delete pods to match ``replicas``, then write ``status``.  Pods are created in
doubling batches (1, 2, 4, ...) as Kubernetes' slow start does, so a template
the API refuses costs one failed create, not a thousand.  Pods to delete are
chosen as Kubernetes chooses them: unscheduled before scheduled, pending before
running, not ready before ready, ready for less time first, more restarts
first, newest first.

The controller reads the store it writes (on the coordinator, the leader's own
replica), so a pod it created is in the next pass's list and no
"expectations" bookkeeping is needed.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import trio

from nodeagent.api.status import ApiError
from nodeagent.coordinator.garbage import set_owner_refs
from nodeagent.coordinator.listcache import ListCache
from nodeagent.events import EventRecorder
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import PODS, REPLICASETS, REPLICATION_CONTROLLERS, Resource
from nodeagent.objects.podutil import (
    condition,
    controller_of,
    is_active,
    is_available,
    is_ready,
    owner_ref,
    parse_time,
    restarts,
)
from nodeagent.objects.selectors import workload_selector

__all__ = ["PREFIXES", "RC_PREFIXES", "ReplicaSetController"]

log = logging.getLogger("nodeagent.replicaset")

PREFIXES = (REPLICASETS.prefix(None), PODS.prefix(None))
RC_PREFIXES = (REPLICATION_CONTROLLERS.prefix(None), PODS.prefix(None))
MAX_BATCH = 500
Obj = dict[str, Any]


def deletion_rank(pod: Obj) -> tuple:
    """Lower ranks are deleted first (Kubernetes' ActivePodsWithRanks, minus node spread)."""
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(
        str((pod.get("status") or {}).get("phase")), 0)
    ready = condition(pod, "Ready")
    ready_since = parse_time(ready.get("lastTransitionTime")) if ready and is_ready(pod) else 0.0
    return (bool(pod.get("spec", {}).get("nodeName")), phase, is_ready(pod), -ready_since,
            -restarts(pod), -parse_time(pod["metadata"].get("creationTimestamp")))


def pod_from_template(owner: Obj, kind: str, api_version: str) -> Obj:
    template = owner["spec"].get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": f"{owner['metadata']['name']}-",
                 "namespace": owner["metadata"]["namespace"],
                 "ownerReferences": [owner_ref(owner, api_version, kind)]}
    for field in ("labels", "annotations", "finalizers"):
        if tmeta.get(field):
            meta[field] = tmeta[field]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}


class ReplicaSetController:
    def __init__(self, objects: Objects, *, clock: Any = time.time,
                 resource: Resource = REPLICASETS) -> None:
        self.objects = objects
        self.resource = resource
        self.events = EventRecorder(objects, "replicaset-controller" if resource is REPLICASETS
                                    else "replication-controller")
        self.clock = clock
        self._pods = ListCache(objects.store, PODS)  # read, never changed here

    async def sync(self) -> float | None:
        """One pass over every ReplicaSet; returns when to look again (minReadySeconds)."""
        replicasets = self.objects.list(self.resource, None)["items"]
        if not replicasets:
            return None  # a burst of bare pods wakes this too: do not decode them all for nothing
        pods_by_ns: dict[str, list[Obj]] = defaultdict(list)
        for pod in self._pods.items():
            pods_by_ns[pod["metadata"]["namespace"]].append(pod)
        again: float | None = None
        for rs in replicasets:
            if rs["metadata"].get("deletionTimestamp"):
                continue
            wait = await self.sync_one(rs, pods_by_ns[rs["metadata"]["namespace"]])
            if wait is not None:
                again = wait if again is None else min(again, wait)
        return again

    async def sync_one(self, rs: Obj, pods: list[Obj]) -> float | None:
        meta, spec = rs["metadata"], rs.get("spec") or {}
        uid = meta["uid"]
        selector = workload_selector(rs)
        owned: list[Obj] = []
        for pod in pods:
            ref = controller_of(pod)
            labels = pod["metadata"].get("labels")
            if ref is not None and ref.get("uid") == uid:
                if selector.matches(labels):
                    owned.append(pod)
                else:
                    await self._set_owner(pod, None, uid)
            elif ref is None and selector.matches(labels) and is_active(pod):
                if await self._set_owner(pod, owner_ref(rs, self.resource.api_version,
                                                         self.resource.kind), uid):
                    owned.append(pod)
        active = [p for p in owned if is_active(p)]
        want = int(spec.get("replicas", 1))
        diff = want - len(active)
        if diff > 0:
            await self._create(rs, min(diff, MAX_BATCH))
        elif diff < 0:
            for pod in sorted(active, key=deletion_rank)[:-diff]:
                await self._delete(rs, pod)
        return await self._status(rs, active, want)

    async def _set_owner(self, pod: Obj, ref: Obj | None, uid: str) -> bool:
        """Adopt (ref) or release (None); False if the pod changed meanwhile."""
        refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        return await set_owner_refs(self.objects, PODS, pod, refs + ([ref] if ref else []))

    async def _create(self, rs: Obj, count: int) -> None:
        """Slow start: batches of 1, 2, 4, ... created concurrently (one fsync per batch);
        a batch with a failure ends the pass."""
        ns = rs["metadata"]["namespace"]
        batch, done = 1, 0
        failed: list[str] = []

        async def one() -> None:
            try:
                pod = await self.objects.create(PODS, ns, pod_from_template(
                    rs, self.resource.kind, self.resource.api_version))
            except ApiError as exc:
                failed.append(exc.message)
                return
            await self.events.record(rs, "Normal", "SuccessfulCreate",
                                     f"Created pod: {pod['metadata']['name']}")
        while done < count and not failed:
            size = min(batch, count - done)
            async with trio.open_nursery() as nursery:
                for _ in range(size):
                    nursery.start_soon(one)
            done += size
            batch *= 2
        if failed:
            await self.events.record(rs, "Warning", "FailedCreate", f"Error creating: {failed[0]}")

    async def _delete(self, rs: Obj, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        try:
            await self.objects.delete(PODS, pod["metadata"]["namespace"], name,
                                      preconditions_uid=pod["metadata"]["uid"])
        except ApiError as exc:
            if exc.code in (404, 409):
                return
            await self.events.record(rs, "Warning", "FailedDelete",
                                     f"Error deleting: {exc.message}")
            return
        await self.events.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async def _status(self, rs: Obj, active: list[Obj], want: int) -> float | None:
        spec = rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self.clock()
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = [p for p in active if is_ready(p)]
        available = [p for p in ready if is_available(p, min_ready, now)]
        status: Obj = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(1 for p in active if template_labels.items()
                                        <= (p["metadata"].get("labels") or {}).items()),
            "readyReplicas": len(ready),
            "availableReplicas": len(available),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        # Kubernetes leaves zero counts out, but for replicas (not omitempty).
        status = {k: v for k, v in status.items() if v or k == "replicas"}
        old = rs.get("status") or {}
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        if {k: v for k, v in old.items() if v not in (0, None)} != \
                {k: v for k, v in status.items() if v not in (0, None)}:
            try:
                await self.objects.update(self.resource, rs["metadata"]["namespace"],
                                          rs["metadata"]["name"],
                                          {**rs, "status": status}, subresource="status")
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
        # Pods ready but not yet available become available later: come back then.
        if len(available) < len(ready):
            return min(parse_time((condition(p, "Ready") or {}).get("lastTransitionTime"))
                       + min_ready - now for p in ready if p not in available) + 0.05
        return None
