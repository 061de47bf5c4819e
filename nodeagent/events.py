"""Events as Kubernetes records them: one object per (object, reason, message, source),
its count and lastTimestamp bumped when the same thing happens again.

The event's name is derived from what makes it unique, so recording is a get and a
create-or-update, with no cache to lose; ``nodectl get events`` and ``describe``
show ``x3 over 2m`` the way kubectl does.  Recording never fails the caller: an
event is information, and a full store or a conflict must not stop a controller.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from nodeagent.api.objects import now_rfc3339
from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import EVENTS

__all__ = ["EventRecorder"]

log = logging.getLogger("nodeagent.events")



class EventRecorder:
    def __init__(self, objects: Objects, component: str, host: str | None = None) -> None:
        self.objects = objects
        self.source = {"component": component, **({"host": host} if host else {})}

    async def record(self, obj: dict[str, Any], type_: str, reason: str, message: str,
                     field_path: str | None = None) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        involved = {"kind": obj.get("kind"), "namespace": meta.get("namespace"),
                    "name": meta.get("name"), "uid": meta.get("uid"),
                    "apiVersion": obj.get("apiVersion"),
                    "resourceVersion": meta.get("resourceVersion")}
        if field_path:
            involved["fieldPath"] = field_path
        involved = {k: v for k, v in involved.items() if v}
        digest = hashlib.sha1(f"{meta.get('uid')}\0{field_path}\0{reason}\0{message}\0"
                              f"{self.source['component']}".encode()).hexdigest()[:16]
        name = f"{meta.get('name')}.{digest}"
        now = now_rfc3339()
        log.info("event %s %s/%s %s: %s", type_, involved.get("kind"), meta.get("name"),
                 reason, message)
        try:
            try:
                current = self.objects.get(EVENTS, namespace, name)
            except ApiError as exc:
                if exc.code != 404:
                    raise
                await self.objects.create(EVENTS, namespace, {
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": involved, "reason": reason, "message": message,
                    "source": self.source, "firstTimestamp": now, "lastTimestamp": now,
                    "count": 1, "type": type_, "reportingComponent": self.source["component"],
                    "reportingInstance": self.source.get("host", "")})
                return
            current["count"] = int(current.get("count") or 1) + 1
            current["lastTimestamp"] = now
            await self.objects.update(EVENTS, namespace, name, current)
        except ApiError as exc:
            log.warning("event %s for %s/%s not recorded: %s", reason, namespace,
                        meta.get("name"), exc.message)
