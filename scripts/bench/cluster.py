#!/usr/bin/env python3
"""Cluster benchmark: the scheduler at size, and three real lab nodes.

1. Scheduler throughput: 10,000 pending pods (20 ReplicaSets' worth, with requests)
   over 500 Nodes that are only objects, in the real store with fsync, bound by the
   real scheduler loop (bindings and Scheduled events written); pods bound per second
   from the scheduler's start to the last binding.  The peer, kube-scheduler, cannot
   run here (no Kubernetes binaries in Debian or PyPI, no registry for its image): its
   figure is the issue's (100-300 pods/s at that size, from scheduler_perf), not
   measured in this run -- the JSON says so.
2. (root) Three lab nodes as `scripts/lab up 3` makes them: 90 pods created at once (a
   Deployment of 90 busybox replicas) to all Running and Ready, p50/p99 pod start
   (creation to Ready), and the time from killing a node (its agent and its pods) to
   all its pods' replacements Ready; each agent's RSS and CPU idle and under that load.

Usage: scripts/bench/cluster.py [--quick] [--out FILE]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import _common as c  # noqa: E402
import trio  # noqa: E402

# The project's packages, not this folder's namesakes (bench/runtime.py is not runtime/).
sys.path[:] = [str(c.ROOT)] + [p for p in sys.path if p and Path(p).resolve() != BENCH]

PEER_SCHED = "kube-scheduler (issue's figure, 100-300/s; not run here)"


async def _scheduler_run(pods: int, nodes: int, work: str) -> dict[str, float]:
    from nodeagent.agent import ensure_namespaces
    from nodeagent.api.objects import ObjectStore
    from nodeagent.coordinator import scheduler
    from nodeagent.objects.kinds import by_kind
    from nodeagent.reconcile import reconcile
    from nodeagent.store import LocalStore
    NODES, PODS = by_kind("Node"), by_kind("Pod")
    assert NODES is not None and PODS is not None
    store = LocalStore(work, fsync=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        objects = ObjectStore(store)
        await ensure_namespaces(objects)
        for i in range(nodes):
            await objects.create(NODES, None, {
                "metadata": {"name": f"node-{i:04d}", "labels": {
                    "kubernetes.io/hostname": f"node-{i:04d}", "zone": f"z{i % 3}"}},
                "status": {"allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
                           "conditions": [{"type": "Ready", "status": "True"}]}})
        owners = 20

        async def create(i: int) -> None:
            o = i % owners
            await objects.create(PODS, "default", {
                "metadata": {"name": f"rs{o}-{i:05d}", "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"rs{o}",
                     "uid": f"uid-rs{o}", "controller": True}]},
                "spec": {"containers": [{"name": "app", "image": "kubia:latest", "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"}}}]}})
        for first in range(0, pods, 200):  # created in batches: one fsync for each
            async with trio.open_nursery() as n:
                for i in range(first, min(pods, first + 200)):
                    n.start_soon(create, i)
        bound = 0
        done = trio.Event()

        async def count() -> None:
            nonlocal bound
            watch, _ = store.watch(PODS.prefix(None), store.revision + 1)
            async for events in watch:
                for ev in events:
                    before = ev.prev_kv.value if ev.prev_kv is not None else b""
                    if b'"nodeName"' in ev.kv.value and b'"nodeName"' not in before:
                        bound += 1
                if bound >= pods:
                    done.set()
                    return
        nursery.start_soon(count)
        await trio.sleep(0.1)
        t0 = time.perf_counter()
        nursery.start_soon(reconcile, "scheduler", store, scheduler.PREFIXES,
                           scheduler.Scheduler(objects).sync)
        await done.wait()
        elapsed = time.perf_counter() - t0
        EVENTS = by_kind("Event")
        assert EVENTS is not None
        with trio.move_on_after(120):  # the Scheduled events follow the bindings: let them land
            for _ in range(240):
                if len(objects.list(EVENTS, "default")["items"]) >= pods:
                    break
                await trio.sleep(0.5)
        with_events = time.perf_counter() - t0
        per_node: dict[str, int] = {}
        for p in objects.list(PODS, "default")["items"]:
            per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
        nursery.cancel_scope.cancel()
    return {"seconds": elapsed, "rate": pods / elapsed, "with_events_s": with_events,
            "max_per_node": max(per_node.values()), "min_per_node": min(per_node.values()),
            "nodes_used": len(per_node)}


def scheduler_throughput(pods: int, nodes: int) -> dict[str, float]:
    return trio.run(_scheduler_run, pods, nodes, c.tempdir("bench-sched-"))


def main() -> None:
    a = c.args(__doc__ or "")
    res = c.Results()
    pods, nodes = (2000, 100) if a.quick else (10000, 500)
    runs = [scheduler_throughput(pods, nodes) for _ in range(1 if a.quick else 3)]
    rates = sorted(r["rate"] for r in runs)
    median = rates[len(rates) // 2]
    print(f"scheduler: {pods} pods over {nodes} nodes: "
          + ", ".join(f"{r['rate']:.0f}/s ({r['seconds']:.1f} s, events written by "
                      f"{r['with_events_s']:.1f} s, {r['min_per_node']:.0f}-"
                      f"{r['max_per_node']:.0f} per node)" for r in runs), file=sys.stderr)
    res.add(f"scheduler: {pods} pods over {nodes} simulated nodes, bound per second (median)",
            "pods/s", median, None, higher_is_better=True, n=len(runs), peer_name=PEER_SCHED,
            target=">= 1000/s", runs=[round(r["rate"], 1) for r in runs],
            per_node=[[r["min_per_node"], r["max_per_node"]] for r in runs])
    if os.geteuid() == 0:
        lab_measures(res, quick=a.quick)
    else:
        print("lab measures skipped: they need root (network namespaces)", file=sys.stderr)
    res.print_and_write(a.out)


def lab_measures(res: c.Results, *, quick: bool) -> None:  # filled in below
    subprocess.run([str(c.ROOT / "scripts" / "lab"), "down"], check=False,
                   stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
