"""Exponential back-off, the one every retry loop uses.

Why one type: the retry loops (reconcile, the pod workers, a container's restarts, image
pulls, Raft's connections, readiness's fast retries) each wrote it by hand, and each
differed a little in where it started, whether it capped and when it started over.
Pure: it counts, the caller sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """The first failure waits ``initial_s``, each further one twice the last, up to
    ``max_s``; ``reset()`` (a success) starts over."""

    initial_s: float
    max_s: float
    _delay_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"back-off {self.initial_s}..{self.max_s}: need 0 < initial <= max")

    def next(self) -> float:
        """A failure: how long to wait before the next try."""
        self._delay_s = self.initial_s if not self._delay_s else min(self._delay_s * 2,
                                                                     self.max_s)
        return self._delay_s

    @property
    def last_s(self) -> float:
        """The wait the last failure got (0: none since the last reset)."""
        return self._delay_s

    def reset(self) -> None:
        self._delay_s = 0.0
