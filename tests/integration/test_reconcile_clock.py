"""reconcile's back-off and the proxy's coalescing, on Trio's virtual clock (MockClock):
minutes of retries in milliseconds, and exact times rather than sleeps and hopes.

The store is a real LocalStore on disk.  Its WAL writes run in a thread, on real time;
so where a test writes, the clock jumps only after a second of real idleness (not at
once), and a write in flight never lets the virtual time run past a window.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import trio
import trio.testing

from nodeagent.agent import ensure_namespaces
from nodeagent.api.objects import ObjectStore
from nodeagent.api.status import ApiError
from nodeagent.objects.kinds import SERVICES
from nodeagent.proxy import service as proxy
from nodeagent.reconcile import reconcile
from nodeagent.store import LocalStore


async def test_a_failing_pass_is_retried_doubling_to_the_cap_and_a_success_starts_over(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    store = LocalStore(str(tmp_path / "store"), fsync=False)
    outcomes = iter("FFFFFFSFFS")
    calls: list[float] = []

    async def sync() -> float | None:
        calls.append(trio.current_time())
        outcome = next(outcomes, "S")
        if outcome == "F":
            if len(calls) % 2:
                raise RuntimeError("a bug in a pass")
            raise ApiError(409, "Conflict", "someone wrote first")  # the same back-off
        return 0.5  # a success asks to be called again in half a second

    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        nursery.start_soon(functools.partial(reconcile, "test", store, ("/registry/x/",), sync,
                                             coalesce_s=0.0, resync_s=1000.0, retry_max_s=0.4))
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(calls)][:9]
    assert gaps == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.5, 0.05, 0.1]


class RecordingRules:
    """The rules backend, recording each sync.  A stand-in for the kernel's rules here
    because the virtual clock cannot drive them: nft runs in a thread, on real time (the
    rules themselves are tested against the kernel in test_proxy.py)."""

    def __init__(self) -> None:
        self.syncs: list[tuple[float, int]] = []  # (virtual time, ports)

    def sync(self, ports: list, changed: set[str] | None = None) -> str:
        self.syncs.append((trio.from_thread.run_sync(trio.current_time), len(ports)))
        return "full"


async def test_the_proxy_applies_a_burst_of_changes_once(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    """A rollout's burst (20 Services created at once) is one rules sync, made the
    coalescing window (COALESCE_S) after the first change; a change after that is
    another."""
    mock_clock.autojump_threshold = 1.0  # real seconds of idleness: see the module's note
    store = LocalStore(str(tmp_path / "store"), fsync=False)
    rules = RecordingRules()
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        objects = ObjectStore(store)
        await ensure_namespaces(objects)
        await nursery.start(functools.partial(proxy.run, objects, rules, resync_s=1000.0))
        assert rules.syncs == [(rules.syncs[0][0], 0)]
        started = trio.current_time()
        for i in range(20):
            await objects.create(SERVICES, "default", {
                "metadata": {"name": f"s{i}"},
                "spec": {"ports": [{"port": 80}], "selector": {"app": f"s{i}"}}})
        await trio.sleep(1)
        assert [n for _, n in rules.syncs] == [0, 20]
        assert rules.syncs[1][0] - started == proxy.COALESCE_S
        await objects.create(SERVICES, "default", {
            "metadata": {"name": "late"}, "spec": {"ports": [{"port": 80}]}})
        await trio.sleep(1)
        assert [n for _, n in rules.syncs] == [0, 20, 21]
        nursery.cancel_scope.cancel()
