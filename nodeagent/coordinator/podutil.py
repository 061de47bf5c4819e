"""Facts about pods and owners the controllers share (as k8s.io/kubernetes/pkg/api/v1/pod)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nodeagent.api.status import ApiError

__all__ = ["condition", "controller_of", "is_active", "is_available", "is_ready", "owner_ref",
           "parse_time", "restarts", "set_owner_refs", "tolerates"]

Obj = dict[str, Any]


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


async def set_owner_refs(objects: Any, res: Any, obj: Obj, refs: list[Obj]) -> bool:
    """Write ``obj`` with these ownerReferences (none: the field goes); False if it changed
    or went meanwhile (the caller's next pass sees it as it is now)."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
    if refs:
        meta["ownerReferences"] = refs
    try:
        await objects.update(res, meta.get("namespace"), meta["name"], {**obj, "metadata": meta})
    except ApiError as exc:
        if exc.code in (404, 409):
            return False
        raise
    return True
