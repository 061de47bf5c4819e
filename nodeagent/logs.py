"""Structured log lines: ``ts=... level=... node=... logger=... msg="..."``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class KeyValueFormatter(logging.Formatter):
    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        msg = record.getMessage().replace('"', "'")
        line = (f'ts={ts}.{int(record.msecs):03d}Z level={record.levelname.lower()} '
                f'node={self.node} logger={record.name} msg="{msg}"')
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(node: str, level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter(node))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # hypercorn's own per-connection noise stays at warning
    logging.getLogger("nodeagent.http").setLevel(logging.WARNING)


class ThrottledLog:
    """At most one line per ``key`` per ``interval_s``; the lines held back are counted
    and the count rides on the next line.  Errors that an attacker (or a broken peer)
    can repeat at will -- a forged packet, a bad object in the store, EMFILE on
    accept -- then cost a line every few seconds, never a full disk."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, key: str, msg: str, *args: object, level: int = logging.WARNING) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval_s`` ago;
        True if it was logged."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) > 10_000:  # keys come from outside: keep the table bounded
            self._last.clear()
            self._held.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        suffix = f" ({held} more like it not logged)" if held else ""
        self.logger.log(level, msg + suffix, *args)
        return True
