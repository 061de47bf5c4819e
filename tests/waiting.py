"""Waiting in tests: the one ``until`` for the whole suite, and the one root marker.

A test waits for what a user would wait for (a pod Running, a rule in the kernel), by
polling, because what it waits on is outside the test's process.  Timing is never
asserted: the timeouts are generous bounds that only decide when a wait has failed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
import trio

__all__ = ["needs_root", "until", "until_async"]

T = TypeVar("T")



def needs_root(why: str) -> pytest.MarkDecorator:
    """Skip unless root, saying what needs it; CI runs as root, so there they all run."""
    return pytest.mark.skipif(os.geteuid() != 0, reason=f"needs root: {why}")


# Failures a check may meet while what it waits for comes up: not answers yet, not errors.
NOT_YET: tuple[type[Exception], ...] = (httpx.HTTPError, OSError, KeyError, ValueError)


def until(check: Callable[[], T], timeout_s: float = 30.0, what: str = "",
          every_s: float = 0.1) -> T:
    """Call ``check`` until it returns something true and return that; an AssertionError
    naming ``what`` once ``timeout_s`` passed.  A check that raises one of NOT_YET counts
    as not yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
        except NOT_YET:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for "
                                 f"{what or getattr(check, '__name__', 'the check')}")
        time.sleep(every_s)


async def until_async(check: Callable[[], Any], timeout_s: float = 10.0, what: str = "",
                      every_s: float = 0.05) -> None:
    """``until`` inside a Trio test: the check is polled between sleeps of the test's own
    clock, so a MockClock's autojump moves the waits on."""
    with trio.move_on_after(timeout_s) as scope:
        while not check():  # noqa: ASYNC110  (what is waited on is outside Trio)
            await trio.sleep(every_s)
    if scope.cancelled_caught:
        raise AssertionError(f"timed out after {timeout_s:g} s waiting for "
                             f"{what or getattr(check, '__name__', 'the check')}")
