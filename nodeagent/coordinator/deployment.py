"""Deployment controller: ReplicaSets by pod-template hash, rolled as Kubernetes rolls them.

A Deployment owns one ReplicaSet per template it has had, named
``<deployment>-<hash>`` where the hash is FNV-32a of the template (Kubernetes'
``pod-template-hash``, written in its consonant-and-digit alphabet), labelled and
selected by that hash.  Each pass, per Deployment:

- paused: only scale and status; no rollout;
- Recreate: old ReplicaSets to zero, wait for their pods to be gone, then the
  new one up;
- RollingUpdate: the new ReplicaSet up while the total stays within
  ``replicas + maxSurge``; old ones down while the available pods stay at least
  ``replicas - maxUnavailable`` (unhealthy old replicas first), as
  ``rolloutRolling`` does; minReadySeconds is in "available";
- revisions in ``deployment.kubernetes.io/revision``, old ReplicaSets beyond
  revisionHistoryLimit deleted once at zero;
- status (replicas, updated, ready, available, unavailable) and the Available
  and Progressing conditions, with ProgressDeadlineExceeded when a rollout made
  no progress for progressDeadlineSeconds.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import defaultdict
from typing import Any

import orjson

from nodeagent.api.objects import now_rfc3339
from nodeagent.api.status import ApiError
from nodeagent.events import EventRecorder
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import DEPLOYMENTS, PODS, REPLICASETS
from nodeagent.objects.podutil import (
    REVISION,
    controller_of,
    int_or_percent,
    owner_ref,
    parse_time,
    revision_of,
)

__all__ = ["PREFIXES", "DeploymentController", "template_hash"]

log = logging.getLogger("nodeagent.deployment")

PREFIXES = (DEPLOYMENTS.prefix(None), REPLICASETS.prefix(None), PODS.prefix(None))
HASH_LABEL = "pod-template-hash"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString
Obj = dict[str, Any]


def template_hash(template: Obj, collision_count: int = 0) -> str:
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHABET[ord(c) % len(_ALPHABET)] for c in str(h))


def _comparable(template: Obj) -> Obj:
    """A template as the controller compares it (Kubernetes' EqualIgnoreHash): without
    the hash label, and without a container's empty resources, a default that templates
    written by older versions lack."""
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    spec = t.get("spec") or {}
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if c.get("resources") == {}:
            del c["resources"]
    return t


def _replicas(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _status(rs: Obj, key: str) -> int:
    return int((rs.get("status") or {}).get(key) or 0)


def _available(rs: Obj) -> int:
    """Available pods of a ReplicaSet, never more than it is now asked for: right after
    a scale-down its status still counts the pods about to go."""
    return min(_status(rs, "availableReplicas"), _replicas(rs))


class DeploymentController:
    def __init__(self, objects: Objects, *, clock: Any = time.time) -> None:
        self.objects = objects
        self.events = EventRecorder(objects, "deployment-controller")
        self.clock = clock

    async def sync(self) -> float | None:
        deployments = self.objects.list(DEPLOYMENTS, None)["items"]
        if not deployments:
            return None  # a burst of bare pods wakes this too: do not decode them all for nothing
        by_owner: dict[str, list[Obj]] = defaultdict(list)
        for rs in self.objects.list(REPLICASETS, None)["items"]:
            ref = controller_of(rs)
            if ref is not None and ref.get("kind") == "Deployment":
                by_owner[ref["uid"]].append(rs)
        pods_by_rs: dict[str, int] = defaultdict(int)
        for pod in self.objects.list(PODS, None)["items"]:
            ref = controller_of(pod)
            if ref is not None and ref.get("kind") == "ReplicaSet":
                pods_by_rs[ref["uid"]] += 1
        again: float | None = None
        for d in deployments:
            if d["metadata"].get("deletionTimestamp"):
                continue
            wait = await self.sync_one(d, by_owner[d["metadata"]["uid"]], pods_by_rs)
            if wait is not None:
                again = wait if again is None else min(again, wait)
        return again

    # --- one deployment -------------------------------------------------------------------

    async def sync_one(self, d: Obj, owned: list[Obj], pods_by_rs: dict[str, int]) -> float | None:
        spec = d["spec"]
        template = spec.get("template") or {}
        new = next((rs for rs in owned
                    if _comparable(rs["spec"].get("template") or {}) == _comparable(template)),
                   None)
        old = sorted((rs for rs in owned if rs is not new),
                     key=lambda rs: (revision_of(rs), rs["metadata"].get("creationTimestamp", "")))
        replicas = int(spec.get("replicas", 1))
        if new is not None and old and revision_of(new) <= max(revision_of(rs) for rs in old) \
                and not spec.get("paused"):
            await self._bump_revision(d, new, max(revision_of(rs) for rs in old) + 1)  # rollback
        if spec.get("paused"):
            # Scaling still applies, to the one ReplicaSet with pods (proportional scaling
            # of a paused rollout's several is not done).
            active = [rs for rs in owned if _replicas(rs) > 0] or ([new] if new else [])
            if len(active) == 1:
                await self._scale(d, active[0], replicas)
            return await self._write_status(d, new, old)
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            if any(_replicas(rs) for rs in old):
                for rs in old:
                    await self._scale(d, rs, 0)
                return await self._write_status(d, new, old)
            if any(pods_by_rs[rs["metadata"]["uid"]] for rs in old):
                return await self._write_status(d, new, old)  # wait for old pods to be gone
            if new is None:
                new = await self._create_rs(d, old, replicas)
            else:
                await self._scale(d, new, replicas)
            await self._cleanup(d, old)
            return await self._write_status(d, new, old)
        rolling = strategy.get("rollingUpdate") or {}
        surge = int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
        unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        # Scale the new ReplicaSet up within replicas + maxSurge.
        total = sum(_replicas(rs) for rs in owned)
        if new is None:
            target = min(replicas, max(0, replicas + surge - total))
            new = await self._create_rs(d, old, target)
        elif _replicas(new) > replicas:
            await self._scale(d, new, replicas)
        elif _replicas(new) < replicas and total < replicas + surge:
            await self._scale(d, new, min(replicas, _replicas(new) + replicas + surge - total))
        # Scale old ReplicaSets down while availability allows.
        min_available = replicas - unavailable
        all_pods = sum(_replicas(rs) for rs in (new, *old))
        new_unavailable = _replicas(new) - _available(new)
        budget = all_pods - min_available - new_unavailable
        for rs in old:  # unhealthy old replicas cost no availability: they go first
            if budget <= 0:
                break
            unhealthy = _replicas(rs) - _available(rs)
            if unhealthy > 0:
                cut = min(budget, unhealthy)
                await self._scale(d, rs, _replicas(rs) - cut)
                budget -= cut
        available = sum(_available(rs) for rs in (new, *old))
        room = available - min_available
        for rs in old:
            if room <= 0:
                break
            if _replicas(rs) > 0:
                cut = min(room, _replicas(rs))
                await self._scale(d, rs, _replicas(rs) - cut)
                room -= cut
        await self._cleanup(d, old)
        return await self._write_status(d, new, old)

    # --- writes ---------------------------------------------------------------------------

    async def _create_rs(self, d: Obj, old: list[Obj], replicas: int) -> Obj:
        meta, spec = d["metadata"], d["spec"]
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        template = copy.deepcopy(spec.get("template") or {})
        digest = template_hash(template, collisions)
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: digest}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: digest}
        revision = max([revision_of(rs) for rs in old] + [0]) + 1
        body: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
            "name": f"{meta['name']}-{digest}", "namespace": meta["namespace"],
            "labels": tmeta["labels"], "annotations": {REVISION: str(revision)},
            "ownerReferences": [owner_ref(d, "apps/v1", "Deployment")]},
            "spec": {"replicas": replicas, "minReadySeconds": spec.get("minReadySeconds", 0),
                     "selector": selector, "template": template}}
        try:
            rs = await self.objects.create(REPLICASETS, meta["namespace"], body)
        except ApiError as exc:
            if exc.code == 409:  # a ReplicaSet of that name with another template: rehash
                status = {**(d.get("status") or {}), "collisionCount": collisions + 1}
                await self.objects.update(DEPLOYMENTS, meta["namespace"], meta["name"],
                                          {**d, "status": status}, subresource="status")
            raise
        await self.events.record(d, "Normal", "ScalingReplicaSet",
                                 f"Scaled up replica set {body['metadata']['name']} from 0 to "
                                 f"{replicas}")
        await self._set_deployment_revision(d, revision)
        return rs

    async def _bump_revision(self, d: Obj, rs: Obj, revision: int) -> None:
        rs["metadata"]["annotations"] = {**(rs["metadata"].get("annotations") or {}),
                                         REVISION: str(revision)}
        fresh = await self.objects.update(REPLICASETS, rs["metadata"]["namespace"],
                                          rs["metadata"]["name"], rs)
        rs["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"]
        await self._set_deployment_revision(d, revision)

    async def _set_deployment_revision(self, d: Obj, revision: int) -> None:
        meta = d["metadata"]
        annotations = meta.get("annotations") or {}
        if annotations.get(REVISION) != str(revision):
            meta["annotations"] = {**annotations, REVISION: str(revision)}
            fresh = await self.objects.update(DEPLOYMENTS, meta["namespace"], meta["name"], d)
            meta["resourceVersion"] = fresh["metadata"]["resourceVersion"]

    async def _scale(self, d: Obj, rs: Obj, replicas: int) -> None:
        before = _replicas(rs)
        if before == replicas:
            return
        rs["spec"]["replicas"] = replicas
        fresh = await self.objects.update(REPLICASETS, rs["metadata"]["namespace"],
                                          rs["metadata"]["name"], rs)
        rs["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"]
        verb = "up" if replicas > before else "down"
        await self.events.record(d, "Normal", "ScalingReplicaSet",
                                 f"Scaled {verb} replica set {rs['metadata']['name']} from "
                                 f"{before} to {replicas}")

    async def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in old if _replicas(rs) == 0 and _status(rs, "replicas") == 0]
        for rs in idle[:max(0, len(idle) - limit)]:
            try:
                await self.objects.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
            except ApiError as exc:
                if exc.code != 404:
                    raise

    async def _write_status(self, d: Obj, new: Obj | None, old: list[Obj]) -> float | None:
        spec = d["spec"]
        replicas = int(spec.get("replicas", 1))
        every = [rs for rs in (new, *old) if rs is not None]
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        unavailable_ok = int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False) \
            if (spec.get("strategy") or {}).get("type") != "Recreate" else 0
        available = sum(_status(rs, "availableReplicas") for rs in every)
        updated = _status(new, "replicas") if new is not None else 0
        status: Obj = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sum(_status(rs, "replicas") for rs in every),
            "updatedReplicas": updated,
            "readyReplicas": sum(_status(rs, "readyReplicas") for rs in every),
            "availableReplicas": available,
            "unavailableReplicas": max(0, replicas - available),
        }
        # Kubernetes leaves zero counts out (every one of them is omitempty).
        status = {k: v for k, v in status.items() if v}
        old_status = d.get("status") or {}
        if old_status.get("collisionCount"):
            status["collisionCount"] = old_status["collisionCount"]
        now_s, now = self.clock(), now_rfc3339()
        conditions = {c["type"]: c for c in old_status.get("conditions") or []}

        def put(kind: str, state: str, reason: str, message: str, touch: bool = False) -> None:
            cur = conditions.get(kind)
            if cur and (cur["status"], cur["reason"], cur["message"]) == (state, reason, message) \
                    and not touch:
                return
            transition = cur["lastTransitionTime"] if cur and cur["status"] == state else now
            conditions[kind] = {"type": kind, "status": state, "lastUpdateTime": now,
                                "lastTransitionTime": transition, "reason": reason,
                                "message": message}

        if available >= replicas - unavailable_ok:
            put("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            put("Available", "False", "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.")
        name = new["metadata"]["name"] if new is not None else d["metadata"]["name"]
        complete = (new is not None and updated == replicas and available >= replicas
                    and status.get("replicas", 0) == replicas)
        progressed = any(status.get(k) != old_status.get(k) for k in
                         ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"))
        cur = conditions.get("Progressing")
        again: float | None = None
        if spec.get("paused"):
            put("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif complete:
            put("Progressing", "True", "NewReplicaSetAvailable",
                f'ReplicaSet "{name}" has successfully progressed.')
        elif progressed or cur is None or cur["reason"] in ("NewReplicaSetAvailable",
                                                           "DeploymentPaused"):
            # Progress restarts the deadline clock (lastUpdateTime).
            put("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.',
                touch=True)
            again = int(spec.get("progressDeadlineSeconds", 600)) + 0.5
        elif cur["reason"] != "ProgressDeadlineExceeded":
            deadline = int(spec.get("progressDeadlineSeconds", 600))
            waited = now_s - parse_time(cur.get("lastUpdateTime"))
            if waited > deadline:
                put("Progressing", "False", "ProgressDeadlineExceeded",
                    f'ReplicaSet "{name}" has timed out progressing.')
                await self.events.record(d, "Warning", "ProgressDeadlineExceeded",
                                         f'ReplicaSet "{name}" has timed out progressing.')
            else:
                again = deadline - waited + 0.5
        status["conditions"] = sorted(conditions.values(), key=lambda c: c["type"])
        if status != old_status:
            try:
                await self.objects.update(DEPLOYMENTS, d["metadata"]["namespace"],
                                          d["metadata"]["name"], {**d, "status": status},
                                          subresource="status")
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
        return again
