"""Events expire an hour after they last happened, as kube-apiserver's --event-ttl does.

Every pod start writes five events and a crash-looping pod one more each time; kept
forever they would grow the store (and every list of events) without bound.
Kubernetes ties each event to an etcd lease; here one pass a minute deletes the
events whose lastTimestamp (or, without one, creation time) is older than the TTL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import EVENTS
from nodeagent.objects.podutil import parse_time

__all__ = ["EventExpiry"]

log = logging.getLogger("nodeagent.coordinator")

PREFIXES: tuple[str, ...] = ()  # nothing wakes it: it looks once a minute
TTL_S = 3600.0
EVERY_S = 60.0


class EventExpiry:
    def __init__(self, objects: Objects, *, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.objects, self.ttl_s, self.clock = objects, ttl_s, clock

    async def sync(self) -> float | None:
        cutoff = self.clock() - self.ttl_s
        expired = 0
        for event in self.objects.list(EVENTS, None)["items"]:
            meta = event["metadata"]
            last = parse_time(event.get("lastTimestamp") or event.get("eventTime")
                              or meta.get("creationTimestamp"))
            if last >= cutoff:
                continue
            try:
                await self.objects.delete(EVENTS, meta.get("namespace"), meta["name"],
                                          preconditions_uid=meta["uid"])
                expired += 1
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
        if expired:
            log.info("expired %d events older than %gs", expired, self.ttl_s)
        return EVERY_S
