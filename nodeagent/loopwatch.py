"""Which task held the event loop, and for how long: a trio instrument the agent installs
when ``loop_warn_ms`` is set.

Everything the agent does shares one thread, so one request that parses or validates for
a second stalls every probe, heartbeat and Raft tick on the node.  DESIGN's rule is that
no request holds the loop for more than 50 ms; with this on, any task step longer than
the threshold is logged with the task's name (at most once a second per task), and the
fuzz tier runs agents with it to hold them to the rule.
"""

from __future__ import annotations

import logging
import time

import trio

from nodeagent.logs import ThrottledLog

__all__ = ["SlowSteps"]

log = logging.getLogger("nodeagent.loop")


class SlowSteps(trio.abc.Instrument):
    def __init__(self, threshold_ms: float) -> None:
        self.threshold_s = threshold_ms / 1000
        self.worst_s = 0.0
        self._started = time.perf_counter()  # added from inside a step: that one counts from here
        self._log = ThrottledLog(log, interval_s=1.0)

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        held = time.perf_counter() - self._started
        if held > self.threshold_s:
            self.worst_s = max(self.worst_s, held)
            self._log.log(task.name, "event loop held for %.0f ms by task %s (it now waits "
                          "at %s)", held * 1000, task.name, _waiting_at(task))


def _waiting_at(task: trio.lowlevel.Task) -> str:
    """Where the task stopped after its step: the innermost await of its coroutine chain
    (what the slow step led up to)."""
    coro: object = task.coro
    where = "?"
    for _ in range(100):
        frame = next((f for a in ("cr_frame", "ag_frame", "gi_frame")
                      if (f := getattr(coro, a, None)) is not None), None)
        if frame is not None:
            where = f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}"
        coro = next((c for a in ("cr_await", "ag_await", "gi_yieldfrom")
                     if (c := getattr(coro, a, None)) is not None), None)
        if coro is None:
            break
    return where
