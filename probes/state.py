"""Kubelet's probe semantics as a pure state machine (no clock, no I/O).

One :class:`ProbeState` per container and probe kind.  The worker asks
:meth:`ProbeState.next_due` when to probe, runs the handler, and feeds the
outcome to :meth:`ProbeState.record`, which says whether the published result
changed.  Rules, as kubelet's prober:

- nothing is probed before ``initialDelaySeconds`` after the container started;
- readiness starts as failure, liveness and startup as "unknown" that counts as
  success for liveness (a container is alive until proven otherwise);
- a result flips only after ``successThreshold`` consecutive successes or
  ``failureThreshold`` consecutive failures;
- a startup probe gates the others: until it has succeeded, liveness and
  readiness are not run; once it has, it is not run again;
- a liveness failure past the threshold asks for a restart (with the message
  of the last failure, for the event);
- one departure, for start latency: until a readiness probe first succeeds, a
  failure is retried after 50 ms, doubling up to the period (kubelet waits a
  whole period, so a pod whose server needs 10 ms to listen is ready a second
  late there).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from nodeagent.backoff import Backoff

__all__ = ["Kind", "ProbeParams", "ProbeState", "Result"]

FAST_RETRY_S = 0.05


class Kind(StrEnum):
    LIVENESS = "liveness"
    READINESS = "readiness"
    STARTUP = "startup"


class Result(StrEnum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class ProbeParams:
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_spec(cls, probe: dict) -> ProbeParams:
        """From a Pod's probe (defaults applied by the API already, re-applied here)."""
        return cls(float(probe.get("initialDelaySeconds", 0)), float(probe.get("periodSeconds", 10)),
                   float(probe.get("timeoutSeconds", 1)), int(probe.get("successThreshold", 1)),
                   int(probe.get("failureThreshold", 3)))


@dataclass
class ProbeState:
    kind: Kind
    params: ProbeParams
    started_at: float  # container start, on the worker's clock
    result: Result = field(init=False)
    successes: int = 0
    failures: int = 0
    last_message: str = ""
    restart_requested: bool = False
    _next: float = field(init=False)
    _ever_ready: bool = False
    _fast_retry: Backoff | None = None  # before the first success of a readiness probe

    def __post_init__(self) -> None:
        self.result = Result.FAILURE if self.kind is Kind.READINESS else Result.UNKNOWN
        self._next = self.started_at + self.params.initial_delay_s

    def jitter_first(self, rng: random.Random) -> None:
        """Spread first probes of many workers over a period so they do not fire together."""
        if self.params.initial_delay_s == 0:
            self._next = self.started_at + rng.uniform(0, self.params.period_s)

    def next_due(self) -> float:
        return self._next

    @property
    def passing(self) -> bool:
        """What the pod sees: ready for readiness; alive for liveness; started for startup."""
        if self.kind is Kind.LIVENESS:
            return self.result is not Result.FAILURE
        return self.result is Result.SUCCESS

    def record(self, ok: bool, now: float, message: str = "") -> bool:
        """Count one probe outcome; returns True when the published result changed.

        The next probe keeps the cadence (due + period, like kubelet's ticker), so a
        slow probe does not push every later one back; a probe that overran a whole
        period runs again at once rather than twice.
        """
        self._next = max(self._next + self.params.period_s, now)
        if not ok and self.kind is Kind.READINESS and not self._ever_ready:
            # Not ready yet (a container just started, its server not listening): try
            # again soon rather than a whole period later, 50 ms doubling up to the period.
            # Failures before the first success change nothing (readiness starts as
            # failure), so this only makes a new pod ready sooner.
            if self._fast_retry is None:
                period = self.params.period_s
                self._fast_retry = Backoff(min(FAST_RETRY_S, period), period)
            self._next = min(self._next, now + self._fast_retry.next())
        before = self.result
        if ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= self.params.success_threshold:
                self.result = Result.SUCCESS
                self._ever_ready = True
        else:
            self.failures += 1
            self.successes = 0
            self.last_message = message
            if self.failures >= self.params.failure_threshold:
                self.result = Result.FAILURE
                if self.kind in (Kind.LIVENESS, Kind.STARTUP):
                    self.restart_requested = True
        return self.result is not before


