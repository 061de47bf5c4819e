"""Requests per identity, in the manner of Kubernetes' API Priority and Fairness: each
user has a bucket of requests that refills at ``rate`` a second up to ``burst``; a
request that finds it empty is answered 429 with Retry-After (the seconds until one is
there) and costs nothing more.  Buckets are per user, so a noisy client drains only its
own; the cluster's own traffic has a level of its own, as APF's ``system`` and
``exempt`` levels do:

- exempt: ``system:masters`` (the administrator) and the Raft servers;
- system: nodes (their heartbeats, their pods' status), with a budget ten times a user's;
- everyone else: ``rate`` and ``burst`` each.

Long-running requests (watches, exec, logs) cost one token when they start; how many a
client may hold is capped elsewhere (server.WatchLimits, listen.ConnectionLimits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from nodeagent.api.authn import User
from nodeagent.clusterpki import ADMIN_GROUP, NODE_GROUP, SERVER_GROUP

__all__ = ["RateLimits", "Retry"]

MAX_BUCKETS = 10_000  # users come from outside (token files, certificates): bounded


@dataclass(frozen=True)
class Retry:
    after_s: int


class RateLimits:
    def __init__(self, rate: float = 50.0, burst: float = 100.0, system_factor: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.system_factor, self.clock = rate, burst, system_factor, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # user -> (tokens, at)

    def take(self, user: User) -> Retry | None:
        """None: go ahead; Retry: over the budget, come back after that."""
        groups = user.groups
        if ADMIN_GROUP in groups or SERVER_GROUP in groups:
            return None
        factor = self.system_factor if NODE_GROUP in groups else 1.0
        rate, burst = self.rate * factor, self.burst * factor
        now = self.clock()
        tokens, at = self._buckets.get(user.name, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1.0:
            self._buckets[user.name] = (tokens, now)
            return Retry(max(1, math.ceil((1.0 - tokens) / rate)))
        if len(self._buckets) >= MAX_BUCKETS and user.name not in self._buckets:
            self._forget_full(now)
        self._buckets[user.name] = (tokens - 1.0, now)
        return None

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (their users have been quiet): they would
        start full anyway."""
        for name, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[name]
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()
