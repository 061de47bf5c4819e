"""Probe workers: Trio tasks, one nursery per pod, one worker per container probe.

:class:`Prober` owns them.  ``add_pod`` starts a pod's workers (cancelling any
old ones), ``remove_pod`` cancels them; a slow or hanging target only ever
holds its own worker, and no probe outlives its timeout.  Changes of a
container's readiness, liveness or startup are reported through ``on_change``
(the pod manager turns them into status, events and restarts).  The last known
readiness of each container is persisted, so an agent restart does not flap
endpoints to not-ready before the first probe runs again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from probes.state import Kind, ProbeParams, ProbeState, Result
from probes.timers import Timers

__all__ = ["ContainerProbe", "Prober"]

log = logging.getLogger("probes")

Handler = Callable[[float], Awaitable[tuple[bool, str]]]  # timeout -> (ok, message)
OnChange = Callable[[str, str, Kind, bool, str], None]  # pod, container, kind, passing, message


@dataclass(frozen=True)
class ContainerProbe:
    container: str
    container_id: str  # the running instance: persisted readiness is only trusted for it
    kind: Kind
    params: ProbeParams
    handler: Handler


class Prober:
    def __init__(self, state_path: str, on_change: OnChange, *, seed: int | None = None) -> None:
        self.state_path = state_path
        self.on_change = on_change
        self.rng = random.Random(seed)
        self.timers = Timers()
        self.started_at = -math.inf
        self._nursery: trio.Nursery | None = None
        self._pods: dict[str, trio.CancelScope] = {}
        self.states: dict[tuple[str, str, Kind], ProbeState] = {}
        self._ready = self._load()

    # --- persisted readiness ----------------------------------------------------------------

    def _load(self) -> dict[str, bool]:
        try:
            with open(self.state_path) as f:
                data = json.load(f)
            return {k: bool(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        tmp = self.state_path + ".tmp"
        os.makedirs(os.path.dirname(self.state_path) or ".", exist_ok=True)
        with open(tmp, "w") as f:
            json.dump(self._ready, f)
        os.replace(tmp, self.state_path)

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.timers.run)
            self.started_at = trio.current_time()
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def add_pod(self, pod: str, probes: list[ContainerProbe]) -> None:
        assert self._nursery is not None, "run() first"
        self.remove_pod(pod)
        now = trio.current_time()
        for p in probes:
            state = ProbeState(p.kind, p.params, now)
            if now - self.started_at < p.params.period_s:
                # Just started (an agent restart adopting every pod at once): spread the
                # first probes over a period so they do not all fire together.  A pod added
                # later is probed at once, so it becomes ready without waiting (as kubelet).
                state.jitter_first(self.rng)
            if p.kind is Kind.READINESS and self._ready.get(f"{pod}/{p.container_id}"):
                state.result = Result.SUCCESS  # as it was before the agent restarted
            self.states[(pod, p.container, p.kind)] = state
        scope = trio.CancelScope()
        self._pods[pod] = scope
        self._nursery.start_soon(self._pod, pod, probes, scope)

    def remove_pod(self, pod: str) -> None:
        scope = self._pods.pop(pod, None)
        if scope is not None:
            scope.cancel()
        for key in [k for k in self.states if k[0] == pod]:
            del self.states[key]

    def passing(self, pod: str, container: str, kind: Kind) -> bool | None:
        state = self.states.get((pod, container, kind))
        return None if state is None else state.passing

    # --- workers --------------------------------------------------------------------------

    async def _pod(self, pod: str, probes: list[ContainerProbe], scope: trio.CancelScope) -> None:
        with scope:
            started = {p.container: trio.Event() for p in probes if p.kind is Kind.STARTUP}
            async with trio.open_nursery() as nursery:
                for p in probes:
                    nursery.start_soon(self._worker, pod, p, started)

    async def _worker(self, pod: str, p: ContainerProbe, started: dict[str, trio.Event]) -> None:
        state = self.states[(pod, p.container, p.kind)]
        gate = started.get(p.container)
        if p.kind is not Kind.STARTUP and gate is not None:
            await gate.wait()  # liveness and readiness wait for the startup probe
            state._next = max(state.next_due(), trio.current_time())
        while True:
            await self.timers.sleep_until(state.next_due())
            # The handlers keep their own timeouts; this guard holds for any other handler.
            with trio.move_on_after(p.params.timeout_s + 0.5) as guard:
                try:
                    ok, message = await p.handler(p.params.timeout_s)
                except Exception as exc:  # a bad spec or handler bug is a failed probe
                    ok, message = False, f"probe error: {exc}"
            if guard.cancelled_caught:
                ok, message = False, f"probe timed out after {p.params.timeout_s:g}s"
            if state.record(ok, trio.current_time(), message):
                self._changed(pod, p, state)
            if p.kind is Kind.STARTUP and state.result is Result.SUCCESS and gate is not None:
                gate.set()
                return  # a startup probe is done once it succeeded
            if state.restart_requested:
                return  # the pod manager restarts the container and adds the pod again

    def _changed(self, pod: str, p: ContainerProbe, state: ProbeState) -> None:
        if p.kind is Kind.READINESS:
            self._ready[f"{pod}/{p.container_id}"] = state.passing
            self._save()
        message = state.last_message if not state.passing else ""
        if p.kind is Kind.LIVENESS and state.restart_requested:
            message = f"Liveness probe failed: {state.last_message}"
        log.info("probe pod=%s container=%s kind=%s passing=%s %s", pod, p.container,
                 p.kind.value, state.passing, message)
        self.on_change(pod, p.container, p.kind, state.passing, message)
