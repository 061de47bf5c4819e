"""Structured log lines: ``ts=... level=... node=... logger=... msg="..."``."""

from __future__ import annotations

import logging
import time


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
