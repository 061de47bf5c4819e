"""Resource usage of this node and its pods, as metrics-server serves it to ``top``.

Every ``interval_s`` the sampler reads each running container's cgroup (cpu time,
memory) through the launcher and the node's from psutil; CPU is the rate between
the last two samples (a window of one interval), memory the last value.  The
API serves them as metrics.k8s.io/v1beta1 PodMetrics and NodeMetrics.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psutil
import trio

from nodeagent.api.objects import now_rfc3339
from nodeagent.podmanager.runtime import RuntimeClient
from nodeagent.podmanager.spec import parse_container_id
from runtime.protocol import ContainerStatus, LauncherError

__all__ = ["Metrics"]

log = logging.getLogger("nodeagent.metrics")
Obj = dict[str, Any]


def _cpu(cores: float) -> str:
    return f"{max(0, round(cores * 1000))}m"


def _memory(n: int) -> str:
    return f"{n // 1024}Ki"


class Metrics:
    def __init__(self, node: str, runtime: RuntimeClient, interval_s: float = 10.0) -> None:
        self.node, self.runtime, self.interval_s = node, runtime, interval_s
        self._samples: dict[str, tuple[float, int, int]] = {}  # cid -> (t, cpu_ns, memory)
        self._rates: dict[str, tuple[float, int]] = {}  # cid -> (cores, memory bytes)
        self._node: tuple[float, int] = (0.0, 0)
        self.stamp = now_rfc3339()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        psutil.cpu_percent()  # the first call starts psutil's window
        task_status.started()
        while True:
            await self.sample()
            await trio.sleep(self.interval_s)

    async def sample(self) -> None:
        now = time.monotonic()
        live = {cid for cid, st in self.runtime.containers.items() if st.status == ContainerStatus.RUNNING}
        for cid in live:
            try:
                stats = await self.runtime.stats(cid)
            except LauncherError:
                continue
            before = self._samples.get(cid)
            self._samples[cid] = (now, stats.cpu_ns, stats.memory_bytes)
            if before is not None and now > before[0]:
                cores = (stats.cpu_ns - before[1]) / 1e9 / (now - before[0])
                self._rates[cid] = (cores, stats.memory_bytes)
        for cid in set(self._samples) - live:
            self._samples.pop(cid, None)
            self._rates.pop(cid, None)
        cpus = psutil.cpu_count() or 1
        self._node = (psutil.cpu_percent() / 100 * cpus, psutil.virtual_memory().used)
        self.stamp = now_rfc3339()

    def pod_metrics(self, pods: list[Obj]) -> list[Obj]:
        by_uid: dict[str, list[tuple[str, float, int]]] = {}
        for cid, (cores, memory) in self._rates.items():
            parsed = parse_container_id(cid)
            if parsed:
                by_uid.setdefault(parsed[0], []).append((parsed[1], cores, memory))
        out = []
        for pod in pods:
            rows = by_uid.get(pod["metadata"]["uid"])
            if not rows:
                continue
            meta = pod["metadata"]
            out.append({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                     "creationTimestamp": self.stamp},
                        "timestamp": self.stamp, "window": f"{self.interval_s:g}s",
                        "containers": [{"name": n, "usage": {"cpu": _cpu(c), "memory": _memory(m)}}
                                       for n, c, m in sorted(rows)]})
        return out

    def node_metrics(self) -> Obj:
        cores, memory = self._node
        return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": self.node, "creationTimestamp": self.stamp},
                "timestamp": self.stamp, "window": f"{self.interval_s:g}s",
                "usage": {"cpu": _cpu(cores), "memory": _memory(memory)}}
