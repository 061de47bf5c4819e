"""Everything the coordinator runs, in one nursery: the caller's cancel scope is the
leadership (a single agent holds it for good; with Raft, the leader holds it while it
leads, issue 8).  Each controller is its own level-triggered loop, so one stuck on a
slow write does not hold the others, and a new leader starts them from the store
with nothing to replay."""

from __future__ import annotations

import logging
from typing import Any

import trio

from nodeagent.coordinator import (
    deployment,
    endpoints,
    garbage,
    loadbalancer,
    namespaces,
    replicaset,
    scheduler,
)
from nodeagent.reconcile import reconcile

__all__ = ["run_coordinator"]

log = logging.getLogger("nodeagent.coordinator")


async def run_coordinator(objects: Any, *,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    store = objects.store
    async with trio.open_nursery() as nursery:
        await nursery.start(namespaces.run, objects)
        loops = [
            ("scheduler", scheduler.PREFIXES, scheduler.Scheduler(objects)),
            ("deployment", deployment.PREFIXES, deployment.DeploymentController(objects)),
            ("replicaset", replicaset.PREFIXES, replicaset.ReplicaSetController(objects)),
            ("endpoints", endpoints.PREFIXES, endpoints.EndpointsController(objects)),
            ("garbage-collector", garbage.PREFIXES, garbage.GarbageCollector(objects)),
            ("loadbalancer", loadbalancer.PREFIXES, loadbalancer.LoadBalancerController(objects)),
        ]
        for name, prefixes, controller in loops:
            await nursery.start(reconcile, name, store, prefixes, controller.sync)
        log.info("coordinator running controllers=%s", ",".join(["namespace"] + [n for n, *_ in loops]))
        task_status.started()
