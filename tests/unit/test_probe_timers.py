"""The probe timer wheel on Trio's fake clock: nobody wakes early, nobody wakes more than
one tick late, probes due close together share a wake-up, and a cancelled sleeper
neither wakes nor blocks the others."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from probes.timers import Timers


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_sleepers_wake_at_their_deadline_at_most_one_tick_late(autojump_clock):
    timers = Timers(tick_s=0.02)
    rng = random.Random(7)
    woke: list[tuple[float, float]] = []

    async def sleeper(deadline: float) -> None:
        await timers.sleep_until(deadline)
        woke.append((deadline, trio.current_time()))

    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        t0 = trio.current_time()
        deadlines = [t0 + rng.uniform(0, 2) for _ in range(300)]
        async with trio.open_nursery() as sleepers:
            for d in deadlines:
                sleepers.start_soon(sleeper, d)
        nursery.cancel_scope.cancel()
    assert len(woke) == 300
    assert all(d <= t <= d + 0.02 + 1e-9 for d, t in woke)
    # 300 deadlines over 2 s share at most one wake-up per tick
    assert len({t for _, t in woke}) <= 2 / 0.02 + 1


async def test_an_earlier_sleeper_moves_the_tickers_wake_up(autojump_clock):
    timers = Timers(tick_s=0.02)
    woke: dict[str, float] = {}

    async def sleeper(name: str, deadline: float) -> None:
        await timers.sleep_until(deadline)
        woke[name] = trio.current_time()

    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        t0 = trio.current_time()
        nursery.start_soon(sleeper, "late", t0 + 10)
        await trio.sleep(1)
        nursery.start_soon(sleeper, "early", t0 + 2)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert woke["early"] == pytest.approx(t0 + 2, abs=0.021)
    assert woke["late"] == pytest.approx(t0 + 10, abs=0.021)


async def test_a_cancelled_sleeper_does_not_wake_and_others_still_do(autojump_clock):
    timers = Timers()
    woke: list[str] = []

    async def sleeper(name: str, deadline: float) -> None:
        await timers.sleep_until(deadline)
        woke.append(name)

    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        t0 = trio.current_time()
        with trio.CancelScope() as doomed:
            async with trio.open_nursery() as inner:
                inner.start_soon(sleeper, "cancelled", t0 + 1)
                await trio.sleep(0.5)
                doomed.cancel()
        nursery.start_soon(sleeper, "kept", t0 + 2)
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    assert woke == ["kept"]


async def test_without_a_ticker_sleepers_sleep_the_plain_way(autojump_clock):
    timers = Timers()
    t0 = trio.current_time()
    await timers.sleep_until(t0 + 5)
    assert trio.current_time() == pytest.approx(t0 + 5)


async def test_first_probes_are_spread_only_just_after_a_start(autojump_clock):
    """As kubelet: a prober that just started (adopting every pod of a restarted agent)
    spreads first probes over a period; a pod added later is probed at once."""
    from probes.state import Kind, ProbeParams
    from probes.worker import ContainerProbe, Prober
    first: dict[str, float] = {}

    def handler(name: str):
        async def probe(timeout_s: float) -> tuple[bool, str]:
            first.setdefault(name, trio.current_time())
            return True, ""
        return probe

    params = ProbeParams(period_s=10)
    async with trio.open_nursery() as nursery:
        prober = Prober("/nonexistent/dir/state.json", lambda *a: None, seed=3)
        prober._save = lambda: None
        await nursery.start(prober.run)
        t0 = trio.current_time()
        for i in range(20):
            prober.add_pod(f"early{i}", [ContainerProbe("c", f"e{i}", Kind.READINESS, params,
                                                        handler(f"early{i}"))])
        await trio.sleep(15)
        t1 = trio.current_time()
        prober.add_pod("late", [ContainerProbe("c", "l", Kind.READINESS, params, handler("late"))])
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    early = sorted(first[f"early{i}"] - t0 for i in range(20))
    assert early[-1] - early[0] > 5  # spread over the period
    assert first["late"] - t1 < 0.05  # at once
