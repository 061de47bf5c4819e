"""The fuzz tier: hostile bytes at every parser of what arrives from outside.

Seeded (hypothesis derandomized, tests/conftest.py) so CI is repeatable;
NODEAGENT_FUZZ_RANDOM=1 draws fresh examples to hunt.  Agents here run with
``loop_warn_ms`` = 50, DESIGN's bound on how long one request may hold the event loop,
and every test ends by checking that none did, that the agent still answers, and that
it never answered 5xx.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentproc import AgentProcess

LOOP_WARN_MS = 50
SLOW = re.compile(r"event loop held for (\d+) ms by task (\S+)")


class FuzzAgent(AgentProcess):
    def __init__(self, workdir: Path) -> None:
        # No coordinator: what is measured is the requests' own handling, not controllers
        # working through what the fuzzer stored.
        super().__init__(workdir, "fuzz", "--no-coordinator",
                         env={"NODEAGENT_LOOP_WARN_MS": str(LOOP_WARN_MS)})
        self._checked = 0

    def start(self, timeout_s: float = 20.0) -> FuzzAgent:
        super().start(timeout_s)
        # Start-up is not a request: its last step (a full collection, then "agent ready")
        # is reported just after the ready line, so the count starts a moment later.
        time.sleep(0.3)
        self._checked = len(self.log_text())
        return self

    def check_healthy(self) -> None:
        """Still running, answering, and no task step since the last check held the loop
        over the bound."""
        assert self.proc is not None and self.proc.poll() is None, self.log_text()[-3000:]
        with self.client(timeout_s=10) as c:
            assert c.get("/readyz").status_code == 200
        text = self.log_text()
        slow = SLOW.findall(text[self._checked:])
        self._checked = len(text)
        assert not slow, f"the event loop was held over {LOOP_WARN_MS} ms: {slow}"
        assert "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module")
def fuzz_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzAgent]:
    a = FuzzAgent(tmp_path_factory.mktemp("fuzz"))
    a.start()
    try:
        yield a
    finally:
        a.close()
