"""A pod's status from its containers' states, as kubelet writes it; restart back-off.

Pure functions of what the pod manager observed: ``pod_phase`` is kubelet's
getPhase, ``conditions`` keeps each condition's lastTransitionTime unless its
status flips, ``container_status`` renders one container the way ``kubectl
get pod -o yaml`` shows it.  ``RestartBackoff`` is kubelet's crash-loop delay:
the first restart at once, then 10 s doubling to 300 s, forgotten once a
container ran for 10 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodeagent.backoff import Backoff

__all__ = ["ContainerRecord", "RestartBackoff", "conditions", "container_status", "pod_phase"]

Obj = dict[str, Any]


@dataclass
class ContainerRecord:
    """What the pod manager knows of one container of a pod."""

    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"  # waiting/terminated reason
    message: str = ""
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str = ""
    image_id: str = ""
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    last_state: Obj = field(default_factory=dict)


def container_status(c: ContainerRecord) -> Obj:
    if c.state == "running":
        state: Obj = {"running": {"startedAt": c.started_at}}
    elif c.state == "terminated":
        state = {"terminated": {k: v for k, v in {
            "exitCode": c.exit_code, "reason": c.reason, "message": c.message or None,
            "startedAt": c.started_at, "finishedAt": c.finished_at,
            "containerID": c.container_id or None}.items() if v is not None}}
    else:
        state = {"waiting": {k: v for k, v in {"reason": c.reason,
                                               "message": c.message or None}.items() if v}}
    out: Obj = {"name": c.name, "image": c.image, "imageID": c.image_id, "state": state,
                "lastState": c.last_state, "ready": c.ready, "restartCount": c.restart_count,
                "started": c.started}
    if c.container_id:
        out["containerID"] = c.container_id
    return out


def pod_phase(restart_policy: str, init: list[ContainerRecord],
              containers: list[ContainerRecord]) -> str:
    """kubelet's getPhase."""
    for c in init:
        if c.state == "terminated" and c.exit_code == 0:
            continue
        failed = c.state == "terminated" or bool(c.last_state.get("terminated"))
        if failed and restart_policy == "Never":
            return "Failed"
        return "Pending"  # initialising
    running = waiting = stopped = succeeded = 0
    for c in containers:
        if c.state == "running":
            running += 1
        elif c.state == "terminated":
            stopped += 1
            succeeded += c.exit_code == 0
        elif c.last_state.get("terminated"):
            stopped += 1  # waiting to be restarted
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"  # restarting
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if restart_policy == "Never" else "Running"
    return "Pending"


def conditions(old: list[Obj] | None, now: str, *, initialized: bool, containers_ready: bool,
               scheduled: bool = True) -> list[Obj]:
    """PodScheduled, Initialized, ContainersReady, Ready; transition times kept."""
    before = {c.get("type"): c for c in old or []}
    wanted = [("PodScheduled", scheduled, None), ("Initialized", initialized, None),
              ("ContainersReady", containers_ready, "ContainersNotReady"),
              ("Ready", containers_ready, "ContainersNotReady")]
    out = []
    for kind, ok, reason in wanted:
        status = "True" if ok else "False"
        prev = before.get(kind)
        cond: Obj = {"type": kind, "status": status,
                     "lastTransitionTime": prev.get("lastTransitionTime", now)
                     if prev and prev.get("status") == status else now}
        if not ok and reason:
            cond["reason"] = reason
        out.append(cond)
    return out


@dataclass
class RestartBackoff:
    """kubelet's CrashLoopBackOff, per container: a container that crashed restarts at once
    the first time, then after 10 s, doubling to 5 minutes; one that ran for 10 minutes
    starts over."""
    initial_s: float = 10.0
    max_s: float = 300.0
    reset_after_s: float = 600.0
    _backoff: dict[str, Backoff] = field(default_factory=dict)
    _not_before: dict[str, float] = field(default_factory=dict)

    def exited(self, key: str, started: float, finished: float) -> float:
        """A container stopped; returns when it may start again (a monotonic time)."""
        backoff = self._backoff.get(key)
        if backoff is None or finished - started >= self.reset_after_s:
            # A container that ran long enough (or never crashed before) restarts at once;
            # the next crash waits initial_s.
            self._backoff[key] = Backoff(self.initial_s, self.max_s)
            wait = 0.0
        else:
            wait = backoff.next()
        self._not_before[key] = finished + wait
        return self._not_before[key]

    def waiting(self, key: str, now: float) -> float:
        """Seconds left before the container may restart (0: now)."""
        return max(0.0, self._not_before.get(key, 0.0) - now)

    def message(self, key: str, container: str, pod: str) -> str:
        """kubelet's CrashLoopBackOff message."""
        backoff = self._backoff.get(key)
        shown = max(self.initial_s, backoff.last_s if backoff else 0.0)
        return (f"back-off {int(shown) // 60}m{int(shown) % 60}s restarting failed "
                f"container={container} pod={pod}" if shown >= 60 else
                f"back-off {int(shown)}s restarting failed container={container} pod={pod}")

    def forget(self, key: str) -> None:
        self._backoff.pop(key, None)
        self._not_before.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        """Forget every key of a pod (``<uid>/``) whose containers are gone."""
        for key in [k for k in self._backoff if k.startswith(prefix)]:
            self.forget(key)
