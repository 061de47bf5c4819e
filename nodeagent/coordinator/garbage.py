"""Garbage collector: dependents follow their owners (ownerReferences), as Kubernetes'.

Propagation, chosen on the owner's delete (``propagationPolicy``):

- Background (the default): the owner goes at once; here its dependents, whose
  owners are all gone, are deleted next (and theirs after them);
- Foreground: the owner stays with a ``foregroundDeletion`` finalizer while its
  dependents are deleted (foreground too), and goes when none is left;
- Orphan: the owner stays with an ``orphan`` finalizer until its dependents no
  longer reference it, then goes; the dependents live on.

A reference to an owner that is gone while other owners remain is removed.
Owners are matched by uid, so a new object with the old owner's name owns
nothing of the old one's.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import RESOURCES, Resource

__all__ = ["PREFIXES", "GarbageCollector", "set_owner_refs"]

log = logging.getLogger("nodeagent.gc")

ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"
# Events are not watched: a pod start writes five, and a pass lists every object.  One
# with owners is collected on the next pass anything else (or the resync) causes.
PREFIXES = tuple(res.prefix(None) for res in RESOURCES if res.kind != "Event")
COALESCE_S = 0.5  # deletion by owner is not in a hurry; a burst of writes is one pass
Obj = dict[str, Any]


async def set_owner_refs(objects: Objects, res: Resource, obj: Obj, refs: list[Obj]) -> bool:
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


class GarbageCollector:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects

    async def sync(self) -> float | None:
        everything: list[tuple[Any, Obj]] = []
        by_uid: dict[str, Obj] = {}
        for res in RESOURCES:
            for obj in self.objects.list(res, None)["items"]:
                everything.append((res, obj))
                by_uid[obj["metadata"]["uid"]] = obj
        dependents: dict[str, int] = defaultdict(int)
        for res, obj in everything:
            refs = obj["metadata"].get("ownerReferences") or []
            if not refs:
                continue
            meta = obj["metadata"]
            present = [r for r in refs if r.get("uid") in by_uid]
            for r in present:
                dependents[r["uid"]] += 1
            if not present:
                await self._delete(res, obj, None)
                continue
            owners = [by_uid[r["uid"]] for r in present]
            if any(_finalizing(o, FOREGROUND) for o in owners) and not meta.get("deletionTimestamp"):
                await self._delete(res, obj, "Foreground")
                continue
            keep = [r for r in present if not _finalizing(by_uid[r["uid"]], ORPHAN)]
            if len(keep) != len(refs):
                await set_owner_refs(self.objects, res, obj, keep)
        for res, obj in everything:
            for finalizer in (ORPHAN, FOREGROUND):
                if _finalizing(obj, finalizer) and not dependents[obj["metadata"]["uid"]]:
                    await self._finish(res, obj, finalizer)
        return None

    async def _delete(self, res: Any, obj: Obj, propagation: str | None) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and propagation is None:
            return
        log.info("gc deleting %s %s/%s (owner gone%s)", res.kind, meta.get("namespace", ""),
                 meta["name"], ", foreground" if propagation else "")
        try:
            await self.objects.delete(res, meta.get("namespace"), meta["name"],
                                      preconditions_uid=meta["uid"], propagation=propagation)
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    async def _finish(self, res: Any, obj: Obj, finalizer: str) -> None:
        meta = dict(obj["metadata"])
        meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != finalizer]
        if not meta["finalizers"]:
            del meta["finalizers"]
        try:
            await self.objects.update(res, meta.get("namespace"), meta["name"], {**obj, "metadata": meta})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise


def _finalizing(obj: Obj, finalizer: str) -> bool:
    meta = obj["metadata"]
    return bool(meta.get("deletionTimestamp")) and finalizer in (meta.get("finalizers") or [])
