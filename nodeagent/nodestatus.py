"""The node registers itself and keeps its Node status true: capacity, allocatable,
addresses, conditions, heartbeat.

Capacity is what psutil sees (CPUs, memory, disk of the data directory) plus a
pod count; allocatable is capacity minus the configured reservations, as
kubelet's ``--system-reserved`` does, so the scheduler never fills the node to
the last byte.  The conditions are kubelet's: Ready, and MemoryPressure,
DiskPressure and PIDPressure from the same kind of eviction thresholds (less
than 100 MiB of memory available, less than 10% of the data disk free, more
than 90% of pid_max in use).  The heartbeat rewrites the conditions'
lastHeartbeatTime every ``heartbeat_s``; the node lifecycle controller reads it,
beside gossip's member states.  Labels and taints a user put on the Node are kept.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
from typing import Any

import psutil
import trio

from nodeagent.api.objects import now_rfc3339
from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NODES

__all__ = ["NodeReporter", "node_status"]

log = logging.getLogger("nodeagent.node")

MAX_PODS = 110
MEMORY_AVAILABLE_MIN = 100 * 1024 * 1024
DISK_FREE_MIN = 0.10
PIDS_USED_MAX = 0.90
VERSION = "v1.37.0-nodeagent"


def _pid_use() -> float:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = int(f.read())
        return len(psutil.pids()) / pid_max
    except (OSError, ValueError):
        return 0.0


def _ki(n: float) -> str:
    return f"{int(n) // 1024}Ki"


def node_status(data_dir: str, addresses: list[str], *, reserved_cpu_m: int = 0,
                reserved_memory: int = 0, max_pods: int = MAX_PODS,
                agent_port: int = 0) -> dict[str, Any]:
    """The status a node reports now (conditions without times: the caller stamps them).
    ``agent_port``: where the node's agent serves its API, reported as the kubelet's port
    (what nodes/proxy reaches)."""
    cpus = psutil.cpu_count() or 1
    mem = psutil.virtual_memory()
    disk = psutil.disk_usage(data_dir if os.path.isdir(data_dir) else "/")
    capacity = {"cpu": str(cpus), "memory": _ki(mem.total), "pods": str(max_pods),
                "ephemeral-storage": _ki(disk.total)}
    allocatable = {"cpu": f"{max(0, cpus * 1000 - reserved_cpu_m)}m",
                   "memory": _ki(max(0, mem.total - reserved_memory)), "pods": str(max_pods),
                   "ephemeral-storage": _ki(disk.total)}

    def cond(kind: str, pressure: bool, when_true: tuple[str, str],
             when_false: tuple[str, str]) -> dict[str, Any]:
        reason, message = when_true if pressure else when_false
        return {"type": kind, "status": "True" if pressure else "False", "reason": reason,
                "message": message}

    conditions = [
        cond("MemoryPressure", mem.available < MEMORY_AVAILABLE_MIN,
             ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
             ("KubeletHasSufficientMemory", "kubelet has sufficient memory available")),
        cond("DiskPressure", disk.free < DISK_FREE_MIN * disk.total,
             ("KubeletHasDiskPressure", "kubelet has disk pressure"),
             ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")),
        cond("PIDPressure", _pid_use() > PIDS_USED_MAX,
             ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
             ("KubeletHasSufficientPID", "kubelet has sufficient PID available")),
        {"type": "Ready", "status": "True", "reason": "KubeletReady",
         "message": "kubelet is posting ready status"},
    ]
    uname = platform.uname()
    endpoints = {"daemonEndpoints": {"kubeletEndpoint": {"Port": agent_port}}} \
        if agent_port else {}
    return {**endpoints,
        "capacity": capacity, "allocatable": allocatable, "conditions": conditions,
        "addresses": [*({"type": "InternalIP", "address": a} for a in addresses),
                      {"type": "Hostname", "address": socket.gethostname()}],
        "nodeInfo": {"kernelVersion": uname.release, "osImage": _os_image(),
                     "containerRuntimeVersion": "nodeagent://0.1", "kubeletVersion": VERSION,
                     "kubeProxyVersion": VERSION, "operatingSystem": "linux",
                     "architecture": _arch(),
                     "machineID": _read("/etc/machine-id"),
                     "bootID": _read("/proc/sys/kernel/random/boot_id")},
    }


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


class NodeReporter:
    def __init__(self, objects: Objects, name: str, data_dir: str, addresses: list[str], *,
                 heartbeat_s: float = 10.0, labels: dict[str, str] | None = None,
                 pod_cidr: str = "", **status_args: int) -> None:
        """``status_args``: node_status()'s reservations and agent port."""
        self.objects, self.name, self.data_dir = objects, name, data_dir
        self.addresses, self.heartbeat_s = addresses, heartbeat_s
        self.labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": _arch(), **(labels or {})}
        self.status_args = status_args
        self.pod_cidr = pod_cidr  # configured on the agent; else the coordinator gives one

    async def report(self) -> dict[str, Any]:
        """Create or refresh the Node; conditions keep their transition times."""
        status = await trio.to_thread.run_sync(lambda: node_status(
            self.data_dir, self.addresses, **self.status_args))
        now = now_rfc3339()
        try:
            node = self.objects.get(NODES, None, self.name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            for c in status["conditions"]:
                c["lastHeartbeatTime"] = c["lastTransitionTime"] = now
            spec = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]} if self.pod_cidr else {}
            node = await self.objects.create(NODES, None, {
                "metadata": {"name": self.name, "labels": self.labels}, "spec": spec,
                "status": status})
            log.info("node registered name=%s cpu=%s memory=%s", self.name,
                     status["capacity"]["cpu"], status["capacity"]["memory"])
            return node
        before = {c["type"]: c for c in (node.get("status") or {}).get("conditions") or []}
        for c in status["conditions"]:
            old = before.get(c["type"])
            c["lastHeartbeatTime"] = now
            c["lastTransitionTime"] = old["lastTransitionTime"] if old and \
                old.get("status") == c["status"] and old.get("lastTransitionTime") else now
        # Keep what the coordinator or a user set (podCIDR, taints, labels); add ours.
        labels = {**self.labels, **(node["metadata"].get("labels") or {})}
        if labels != node["metadata"].get("labels"):
            node["metadata"]["labels"] = labels
            node = await self.objects.update(NODES, None, self.name, node)
        return await self.objects.update(NODES, None, self.name, {**node, "status": status},
                                         subresource="status")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        while True:
            # A cluster still electing its first leader answers 503; a restarted server
            # whose copy of the store is still catching up may not see its Node yet, and
            # creating it again answers 409.  Either way: wait and look again.
            try:
                await self.report()
                break
            except ApiError as exc:
                if exc.code not in (409, 503):
                    raise
                log.info("node not registered yet (%s); retrying", exc.message)
                await trio.sleep(1.0 if exc.code == 503 else 0.1)
        task_status.started()
        while True:
            await trio.sleep(self.heartbeat_s)
            try:
                await self.report()
            except ApiError as exc:
                log.warning("node status not written: %s", exc.message)


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
