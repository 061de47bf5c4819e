"""Fixtures shared by the tiers: a running agent for integration and e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentproc import AgentProcess


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    """A fresh agent with its own data dir, killed after the test."""
    a = AgentProcess(tmp_path / "agent").start()
    try:
        yield a
    finally:
        a.close()


@pytest.fixture(scope="module")
def shared_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """One agent for a module of tests that each use their own namespace."""
    a = AgentProcess(tmp_path_factory.mktemp("agent")).start()
    try:
        yield a
    finally:
        a.close()
