"""The ``scale`` subresource (autoscaling/v1 Scale) of Deployments, ReplicaSets and
ReplicationControllers.

kubectl scale, autoscalers and the Python client's ``patch_..._scale`` read and write a
workload's replica count through it without knowing its kind: GET gives
``spec.replicas`` with the live count and selector in ``status``, PUT and PATCH change
``spec.replicas`` of the object itself (and nothing else).
"""

from __future__ import annotations

from typing import Any

from nodeagent.objects.selectors import workload_selector

__all__ = ["SCALABLE", "replicas_of", "scale_of"]

SCALABLE = frozenset({"Deployment", "ReplicaSet", "ReplicationController"})
API_VERSION = "autoscaling/v1"


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    out_status: dict[str, Any] = {"replicas": int(status.get("replicas") or 0)}
    if spec.get("selector"):
        out_status["selector"] = str(workload_selector(obj))
    return {"kind": "Scale", "apiVersion": API_VERSION,
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": int(spec.get("replicas", 1))}, "status": out_status}


def replicas_of(scale: Any) -> int:
    """``spec.replicas`` of a Scale body; ValueError naming the field when it is not one."""
    if not isinstance(scale, dict):
        raise ValueError("the body must be a Scale object")
    if scale.get("kind") not in (None, "Scale"):
        raise ValueError(f"kind: Invalid value: {scale.get('kind')!r}: must be Scale")
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise ValueError(f"spec.replicas: Invalid value: {replicas!r}: must be an integer")
    if replicas < 0:
        raise ValueError(f"spec.replicas: Invalid value: {replicas}: must be greater than or "
                         f"equal to 0")
    return replicas
