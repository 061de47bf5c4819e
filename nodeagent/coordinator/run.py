"""Everything the coordinator runs, in one nursery: the caller's cancel scope is the
leadership (a single agent holds it for good; with Raft, the leader holds it while it
leads).  Each controller is its own level-triggered loop, so one stuck on a
slow write does not hold the others, and a new leader starts them from the store
with nothing to replay."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import trio

from nodeagent.coordinator import (
    deployment,
    endpoints,
    eventttl,
    garbage,
    kubernetesservice,
    loadbalancer,
    namespaces,
    nodeipam,
    nodelifecycle,
    noexecute,
    replicaset,
    scheduler,
    serviceaccounts,
)
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import REPLICATION_CONTROLLERS
from nodeagent.reconcile import Controller, reconcile

__all__ = ["run_coordinator"]

log = logging.getLogger("nodeagent.coordinator")


async def run_coordinator(objects: Objects, *, members: Callable[[], dict[str, str]] | None = None,
                          members_changed: Callable[[], Awaitable[None]] | None = None,
                          cluster_cidr: str = "", node_cidr_mask: int = 24,
                          unreachable_toleration_s: float = 30.0,
                          ca_bundle: Callable[[], bytes] | None = None,
                          task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """``members``: gossip's member states by name, when the agents gossip (the node
    lifecycle controller needs them; ``members_changed`` returns when they change);
    ``cluster_cidr``: the pod network that Nodes get
    their blocks of (none handed out without it); ``ca_bundle``: the cluster CAs' PEM,
    published to every namespace for pods (None: the cluster has no CA)."""
    store = objects.store
    async with trio.open_nursery() as nursery:
        await nursery.start(namespaces.run, objects)
        loops: list[tuple[str, tuple[str, ...], Controller, float]] = [
            # (name, what wakes it, controller, how long a burst of changes is gathered)
            ("scheduler", scheduler.PREFIXES, scheduler.Scheduler(objects), 0.02),
            ("deployment", deployment.PREFIXES, deployment.DeploymentController(objects), 0.02),
            ("replicaset", replicaset.PREFIXES, replicaset.ReplicaSetController(objects), 0.02),
            ("replicationcontroller", replicaset.RC_PREFIXES, replicaset.ReplicaSetController(
                objects, resource=REPLICATION_CONTROLLERS), 0.02),
            ("endpoints", endpoints.PREFIXES, endpoints.EndpointsController(objects), 0.02),
            ("garbage-collector", garbage.PREFIXES, garbage.GarbageCollector(objects),
             garbage.COALESCE_S),
            ("loadbalancer", loadbalancer.PREFIXES, loadbalancer.LoadBalancerController(objects),
             0.02),
            ("event-ttl", eventttl.PREFIXES, eventttl.EventExpiry(objects), 0.02),
            ("serviceaccount", serviceaccounts.PREFIXES,
             serviceaccounts.ServiceAccounts(objects, ca_bundle), 0.02),
            ("kubernetes-service", kubernetesservice.PREFIXES,
             kubernetesservice.KubernetesService(objects, members), 0.02),
            ("taint-eviction", noexecute.PREFIXES, noexecute.TaintEviction(
                objects, default_toleration_s=unreachable_toleration_s), 0.02),
        ]
        if cluster_cidr:
            loops.append(("node-ipam", nodeipam.PREFIXES,
                          nodeipam.NodeIpam(objects, cluster_cidr, node_cidr_mask), 0.02))
        for name, prefixes, controller, coalesce_s in loops:
            await nursery.start(functools.partial(reconcile, coalesce_s=coalesce_s),
                                name, store, prefixes, controller.sync)
        names = ["namespace"] + [n for n, *_ in loops]
        if members is not None:  # woken by gossip as well as by the Nodes
            await nursery.start(functools.partial(reconcile, coalesce_s=0.0, wake=members_changed),
                                "node-lifecycle", store, nodelifecycle.PREFIXES,
                                nodelifecycle.NodeLifecycle(objects, members).sync)
            names.append("node-lifecycle")
        log.info("coordinator running controllers=%s", ",".join(names))
        task_status.started()
