"""e2e fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from agentproc import AgentProcess


@pytest.fixture(scope="module")
def fuzz_client(shared_agent: AgentProcess) -> Iterator[httpx.Client]:
    with shared_agent.client(timeout_s=5) as c:
        r = c.post("/api/v1/namespaces", json={"metadata": {"name": "fuzz"}})
        assert r.status_code == 201
        yield c
