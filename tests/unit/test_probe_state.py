"""Kubelet's probe semantics on a fake clock: delays, periods, thresholds, startup gating."""

from __future__ import annotations

import random

import pytest

from probes.state import Kind, ProbeParams, ProbeState, Result


def test_readiness_starts_failing_and_liveness_passing():
    assert not ProbeState(Kind.READINESS, ProbeParams(), 0).passing
    assert ProbeState(Kind.LIVENESS, ProbeParams(), 0).passing
    assert not ProbeState(Kind.STARTUP, ProbeParams(), 0).passing


def test_initial_delay_then_period():
    s = ProbeState(Kind.READINESS, ProbeParams(initial_delay_s=15, period_s=10), started_at=100)
    assert s.next_due() == 115
    s.record(True, now=115)
    assert s.next_due() == 125


def test_thresholds_need_consecutive_results():
    s = ProbeState(Kind.READINESS, ProbeParams(success_threshold=2, failure_threshold=3), 0)
    assert not s.record(True, 1)  # one success is not enough
    assert s.record(True, 2) and s.passing
    assert not s.record(False, 3) and not s.record(False, 4)
    assert not s.record(True, 5)  # a success in between resets the failure count
    assert not s.record(False, 6) and not s.record(False, 7)
    assert s.record(False, 8) and not s.passing


def test_liveness_failure_past_the_threshold_asks_for_a_restart_with_the_message():
    s = ProbeState(Kind.LIVENESS, ProbeParams(failure_threshold=3), 0)
    for t in range(2):
        s.record(False, t, "HTTP probe failed with statuscode: 500")
    assert s.passing and not s.restart_requested
    s.record(False, 3, "HTTP probe failed with statuscode: 500")
    assert s.restart_requested and s.result is Result.FAILURE
    assert s.last_message == "HTTP probe failed with statuscode: 500"


def test_first_probes_are_spread_over_a_period():
    rng = random.Random(7)
    dues = []
    for _ in range(1000):
        s = ProbeState(Kind.READINESS, ProbeParams(period_s=10), started_at=0)
        s.jitter_first(rng)
        dues.append(s.next_due())
    assert min(dues) >= 0 and max(dues) <= 10
    assert len({int(d) for d in dues}) == 10  # every second of the period gets some


def test_params_from_a_pod_probe():
    p = ProbeParams.from_spec({"initialDelaySeconds": 15, "timeoutSeconds": 3, "periodSeconds": 10,
                               "failureThreshold": 5})
    assert (p.initial_delay_s, p.timeout_s, p.period_s, p.success_threshold,
            p.failure_threshold) == (15, 3, 10, 1, 5)


def test_readiness_retries_soon_until_first_ready_then_keeps_the_period():
    s = ProbeState(Kind.READINESS, ProbeParams(period_s=1, failure_threshold=3), started_at=0)
    assert s.next_due() == 0
    s.record(False, now=0.0)
    assert s.next_due() == pytest.approx(0.05)  # the server is not listening yet: soon again
    s.record(False, now=0.05)
    assert s.next_due() == pytest.approx(0.15)  # doubling
    assert s.record(True, now=0.15) and s.passing
    s.record(False, now=1.15)
    assert s.next_due() == pytest.approx(2.15)  # once ready, failures keep the period
    live = ProbeState(Kind.LIVENESS, ProbeParams(period_s=1), started_at=0)
    live.record(False, now=0.0)
    assert live.next_due() == 1  # liveness failures count toward a restart: never hurried
