"""Fixtures shared by the tiers: a running agent for integration and e2e tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import settings

from agentproc import AgentProcess

# Property tests and fuzzers draw the same examples on every run (a submission's CI must
# not depend on luck); NODEAGENT_FUZZ_RANDOM=1 draws fresh ones to hunt for new bugs.
settings.register_profile("nodeagent", derandomize=os.environ.get("NODEAGENT_FUZZ_RANDOM") != "1",
                          print_blob=True)
settings.load_profile("nodeagent")


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


@pytest.fixture(scope="module")
def k8s_api(shared_agent: AgentProcess) -> Iterator[Any]:
    """The official Python client (kubernetes.client.ApiClient), configured from the shared
    agent's admin kubeconfig."""
    from kubernetes import client, config
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(shared_agent.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        yield c


@pytest.fixture
async def objects(tmp_path: Path) -> AsyncIterator[object]:
    """An in-process object store on a real disk (no fsync), with the built-in namespaces:
    what the coordinator's controllers read and write."""
    from nodeagent.agent import ensure_namespaces
    from nodeagent.api.objects import ObjectStore
    from nodeagent.store import LocalStore
    async with trio.open_nursery() as nursery:
        store = LocalStore(str(tmp_path / "store"), fsync=False)
        await nursery.start(store.run)
        objs = ObjectStore(store)
        await ensure_namespaces(objs)
        yield objs
        nursery.cancel_scope.cancel()
