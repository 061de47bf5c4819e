"""Requests per identity (api/ratelimit.py), on a clock the test moves: a user's bucket
empties and refills at its rate, another user's is its own, nodes have ten times the
budget, the administrator and the Raft servers are never held back, and the table of
buckets stays bounded however many users come."""

from __future__ import annotations

from nodeagent.api.authn import User
from nodeagent.api.ratelimit import MAX_BUCKETS, RateLimits, Retry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_noisy_user_drains_only_its_own_bucket() -> None:
    clock = Clock()
    limits = RateLimits(rate=10, burst=20, clock=clock)
    noisy, quiet = User("noisy", ("devs",)), User("quiet", ("devs",))
    assert all(limits.take(noisy) is None for _ in range(20))
    assert limits.take(noisy) == Retry(1)
    assert limits.take(quiet) is None
    clock.now += 0.5  # five tokens back
    assert all(limits.take(noisy) is None for _ in range(5))
    assert limits.take(noisy) is not None
    node = User("system:node:a", ("system:nodes",))
    assert all(limits.take(node) is None for _ in range(200))
    assert limits.take(node) is not None
    for exempt in (User("admin", ("system:masters",)),
                   User("system:node:s", ("system:nodes", "nodeagent:servers"))):
        assert all(limits.take(exempt) is None for _ in range(10_000))


def test_the_buckets_stay_bounded() -> None:
    clock = Clock()
    limits = RateLimits(rate=10, burst=20, clock=clock)
    for i in range(MAX_BUCKETS + 50):
        limits.take(User(f"u{i}"))
    assert len(limits._buckets) <= MAX_BUCKETS
