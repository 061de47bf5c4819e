"""Facts about pods and their owners that the controllers, the pod manager and nodectl share
(as k8s.io/kubernetes/pkg/api/v1/pod): pure functions of objects, no store."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

from nodeagent.objects.quantity import parse_quantity
from runtime.qos import ContainerResources, qos_class

__all__ = [
    "REVISION",
    "condition",
    "container_resources",
    "containers_of",
    "controller_of",
    "default_pull_policy",
    "int_or_percent",
    "is_active",
    "is_available",
    "is_ready",
    "owner_ref",
    "parse_time",
    "pod_qos_class",
    "pod_references",
    "restarts",
    "revision_of",
    "tolerates",
]

Obj = dict[str, Any]

# A Deployment's revision, on it and on each of its ReplicaSets.
REVISION = "deployment.kubernetes.io/revision"


def parse_time(text: str | None) -> float:
    """RFC 3339 -> epoch seconds; 0 for none (sorts as "long ago")."""
    if not text:
        return 0.0
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def condition(obj: Obj, kind: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_available(pod: Obj, min_ready_s: int, now: float) -> bool:
    """Ready for at least minReadySeconds (Kubernetes' podutil.IsPodAvailable)."""
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return False
    return min_ready_s <= 0 or parse_time(c.get("lastTransitionTime")) + min_ready_s <= now


def is_active(pod: Obj) -> bool:
    """Counts toward replicas: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Does this toleration match this taint (key, value or Exists, effect; empty key with
    Exists matches every taint, empty effect every effect)?"""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and \
        (toleration.get("value") or "") == (taint.get("value") or "")


def restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount") or 0)
               for c in (pod.get("status") or {}).get("containerStatuses") or [])


def controller_of(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}



def revision_of(obj: Obj) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """maxSurge, maxUnavailable: an int, or a percentage of ``total``."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value)


def default_pull_policy(image: str) -> str:
    """Always for ``:latest`` or untagged images, IfNotPresent otherwise (as Kubernetes)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _milli(value: Any) -> int | None:
    return None if value is None else int(parse_quantity(str(value)).value * 1000)


def _bytes(value: Any) -> int | None:
    return None if value is None else int(parse_quantity(str(value)).value)


def container_resources(container: Obj) -> ContainerResources:
    """A container's cpu and memory requests and limits, as the runtime counts them."""
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    return ContainerResources(cpu_request_milli=_milli(req.get("cpu")),
                              cpu_limit_milli=_milli(lim.get("cpu")),
                              memory_request_bytes=_bytes(req.get("memory")),
                              memory_limit_bytes=_bytes(lim.get("memory")))


def pod_qos_class(containers: Iterable[Obj]) -> str:
    """Kubernetes' QoS class of a pod from its containers (cpu and memory only, as
    GetPodQOS): the one classifier, for the API's status.qosClass and the pod's cgroup."""
    return qos_class([container_resources(c) for c in containers])


def pod_references(pod: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every Secret, ConfigMap and PersistentVolumeClaim a pod names."""
    spec = pod.get("spec") or {}
    out: set[tuple[str, str]] = set()

    def add(kind: str, name: Any) -> None:
        if isinstance(name, str) and name:
            out.add((kind, name))
    for v in spec.get("volumes") or []:
        add("secrets", (v.get("secret") or {}).get("secretName"))
        add("configmaps", (v.get("configMap") or {}).get("name"))
        add("persistentvolumeclaims", (v.get("persistentVolumeClaim") or {}).get("claimName"))
        for source in (v.get("projected") or {}).get("sources") or []:
            add("secrets", (source.get("secret") or {}).get("name"))
            add("configmaps", (source.get("configMap") or {}).get("name"))
    for c in containers_of(spec):
        for e in c.get("env") or []:
            ref = e.get("valueFrom") or {}
            add("secrets", (ref.get("secretKeyRef") or {}).get("name"))
            add("configmaps", (ref.get("configMapKeyRef") or {}).get("name"))
        for e in c.get("envFrom") or []:
            add("secrets", (e.get("secretRef") or {}).get("name"))
            add("configmaps", (e.get("configMapRef") or {}).get("name"))
    for ref in spec.get("imagePullSecrets") or []:
        add("secrets", ref.get("name") if isinstance(ref, dict) else None)
    return out


def containers_of(spec: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Every container of a pod spec: init, regular and ephemeral (the dicts only)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield c
