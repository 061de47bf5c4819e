"""Errors anyone can repeat at will are logged at a bounded rate: one line per key per
interval, with the count of those held back on the next line."""

from __future__ import annotations

import logging

from nodeagent.logs import ThrottledLog


def test_a_flood_of_one_error_costs_a_line_per_interval(caplog) -> None:
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("test.throttle"), interval_s=10.0,
                             clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        for i in range(1000):  # EMFILE ten times a second, for 100 s
            now[0] = i / 10
            throttled.log("accept", "accept failed: %s", "EMFILE")
        throttled.log("other", "another kind is not held back")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 11
    assert lines[0] == "accept failed: EMFILE"
    assert lines[1] == "accept failed: EMFILE (99 more like it not logged)"
    assert lines[-1] == "another kind is not held back"
