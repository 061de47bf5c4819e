"""Probe workers with real targets on loopback: readiness follows the target, liveness
asks for a restart with kubelet's message, startup gates the others, a hanging target
does not hold up other pods, and readiness survives an agent restart."""

from __future__ import annotations

import socket

import trio
import trio.lowlevel

from probes.handlers import tcp_socket
from probes.state import Kind, ProbeParams
from probes.worker import ContainerProbe, Prober

FAST = ProbeParams(period_s=0.05, timeout_s=0.5, failure_threshold=2)


class Target:
    """A TCP target that can be switched on and off."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.up = False

    def start(self) -> None:
        self.sock.listen(64)
        self.up = True

    def stop(self) -> None:
        self.sock.close()
        self.up = False


def tcp(port: int):
    async def handler(timeout_s: float) -> tuple[bool, str]:
        return await tcp_socket("127.0.0.1", port, timeout_s)
    return handler


async def wait_for(events: list, wanted: tuple, timeout_s: float = 5.0) -> None:
    with trio.fail_after(timeout_s):
        while wanted not in [e[:4] for e in events]:  # noqa: ASYNC110 - a plain list, polled
            await trio.sleep(0.01)


async def test_readiness_follows_the_target_and_survives_a_restart(tmp_path):
    target = Target()
    events: list = []
    state = str(tmp_path / "probes.json")
    async with trio.open_nursery() as nursery:
        prober = Prober(state, lambda *e: events.append(e), seed=1)
        await nursery.start(prober.run)
        probe = ContainerProbe("app", "c1", Kind.READINESS, FAST, tcp(target.port))
        prober.add_pod("pod1", [probe])
        assert prober.passing("pod1", "app", Kind.READINESS) is False  # starts not ready
        target.start()
        await wait_for(events, ("pod1", "app", Kind.READINESS, True))
        nursery.cancel_scope.cancel()
    # A restarted agent restores readiness for the same container before any probe.
    async with trio.open_nursery() as nursery:
        prober = Prober(state, lambda *e: None)
        await nursery.start(prober.run)
        prober.add_pod("pod1", [ContainerProbe("app", "c1", Kind.READINESS, FAST,
                                               tcp(target.port))])
        await trio.lowlevel.checkpoint()
        assert prober.passing("pod1", "app", Kind.READINESS) is True
        prober.add_pod("pod1", [ContainerProbe("app", "c2", Kind.READINESS, FAST,
                                               tcp(target.port))])
        await trio.lowlevel.checkpoint()
        assert prober.passing("pod1", "app", Kind.READINESS) is False  # a new instance: no
        nursery.cancel_scope.cancel()
    target.stop()


async def test_liveness_failure_asks_for_a_restart_with_the_message(tmp_path):
    target = Target()  # never listening: connection refused
    events: list = []
    async with trio.open_nursery() as nursery:
        prober = Prober(str(tmp_path / "p.json"), lambda *e: events.append(e), seed=2)
        await nursery.start(prober.run)
        prober.add_pod("pod1", [ContainerProbe("app", "c1", Kind.LIVENESS, FAST,
                                               tcp(target.port))])
        await wait_for(events, ("pod1", "app", Kind.LIVENESS, False))
        message = events[-1][4]
        assert message.startswith("Liveness probe failed: dial tcp 127.0.0.1:")
        assert message.endswith("connect: connection refused")
        nursery.cancel_scope.cancel()
    target.stop()


async def test_startup_gates_readiness(tmp_path):
    startup_target, ready_target = Target(), Target()
    ready_target.start()
    events: list = []
    async with trio.open_nursery() as nursery:
        prober = Prober(str(tmp_path / "p.json"), lambda *e: events.append(e), seed=3)
        await nursery.start(prober.run)
        prober.add_pod("pod1", [
            ContainerProbe("app", "c1", Kind.STARTUP,
                           ProbeParams(period_s=0.05, timeout_s=0.5, failure_threshold=100),
                           tcp(startup_target.port)),
            ContainerProbe("app", "c1", Kind.READINESS, FAST, tcp(ready_target.port))])
        await trio.sleep(0.5)
        assert not any(e[2] is Kind.READINESS for e in events)  # gated: not even probed
        startup_target.start()
        await wait_for(events, ("pod1", "app", Kind.STARTUP, True))
        await wait_for(events, ("pod1", "app", Kind.READINESS, True))
        nursery.cancel_scope.cancel()
    startup_target.stop()
    ready_target.stop()


async def test_a_hanging_probe_does_not_hold_up_other_pods(tmp_path):
    fast_target = Target()
    fast_target.start()
    events: list = []

    async def hangs(timeout_s: float) -> tuple[bool, str]:
        await trio.sleep_forever()
        return True, ""
    async with trio.open_nursery() as nursery:
        prober = Prober(str(tmp_path / "p.json"), lambda *e: events.append(e), seed=4)
        await nursery.start(prober.run)
        prober.add_pod("stuck", [ContainerProbe("app", "s1", Kind.READINESS, FAST, hangs)])
        prober.add_pod("fine", [ContainerProbe("app", "f1", Kind.READINESS, FAST,
                                               tcp(fast_target.port))])
        await wait_for(events, ("fine", "app", Kind.READINESS, True))
        prober.remove_pod("stuck")  # cancelled at once, hanging probe and all
        nursery.cancel_scope.cancel()
    fast_target.stop()
