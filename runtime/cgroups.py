"""Cgroups for pods and containers: limits from Kubernetes resources, usage, OOM kills, kill-all.

Two drivers with one interface, picked by :func:`detect`: :class:`V1Driver`
(one hierarchy per controller, through cgroupspy's controllers) and
:class:`V2Driver` (the unified hierarchy).  Paths are relative to the
hierarchy root, e.g. ``nodeagent/burstable/pod<uid>/<container>``; the
conversions are kubelet's (``MilliCPUToShares``, ``MilliCPUToQuota``, the
shares-to-weight formula of runc), so a pod gets the same treatment it would
under Kubernetes.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from typing import Protocol

from cgroupspy.controllers import CpuAcctController, CpuController, MemoryController
from cgroupspy.nodes import Node

__all__ = ["CgroupDriver", "Resources", "Usage", "V1Driver", "V2Driver", "cpu_quota",
           "cpu_shares", "detect", "shares_to_weight"]

CPU_PERIOD_US = 100_000
MIN_SHARES = 2
MAX_SHARES = 262_144
MIN_QUOTA_US = 1_000


@dataclass(frozen=True)
class Resources:
    """What a pod or container asks for; None means not set."""

    cpu_request_milli: int | None = None
    cpu_limit_milli: int | None = None
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None


@dataclass(frozen=True)
class Usage:
    cpu_ns: int
    memory_bytes: int
    oom_kills: int


def cpu_shares(milli: int | None) -> int:
    """kubelet's MilliCPUToShares: no request gets the minimum, as BestEffort does."""
    if not milli:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli * 1024 // 1000))


def cpu_quota(milli: int | None, period_us: int = CPU_PERIOD_US) -> int:
    """kubelet's MilliCPUToQuota; -1 is no limit."""
    if not milli:
        return -1
    return max(MIN_QUOTA_US, milli * period_us // 1000)


def shares_to_weight(shares: int) -> int:
    """runc's conversion of cgroup v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000]."""
    return 1 + ((shares - 2) * 9999) // 262142


class CgroupDriver(Protocol):
    version: int

    def create(self, path: str, res: Resources) -> None: ...
    def update(self, path: str, res: Resources) -> None: ...
    def add(self, path: str, pid: int) -> None: ...
    def procs(self, path: str) -> list[int]: ...
    def usage(self, path: str) -> Usage: ...
    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> None: ...
    def delete(self, path: str) -> None: ...
    def exists(self, path: str) -> bool: ...


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _rmdir(path: str, timeout_s: float = 2.0) -> None:
    """rmdir a cgroup; the kernel says EBUSY for a moment after its last process exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _kill_procs(read_procs, sig: int, timeout_s: float = 5.0) -> None:
    """Signal every process until none is left (processes may fork while we do)."""
    deadline = time.monotonic() + timeout_s
    while pids := read_procs():
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if sig != signal.SIGKILL or time.monotonic() > deadline:
            return
        time.sleep(0.005)


class V1Driver:
    """cgroup v1: a directory per controller hierarchy (this machine's layout)."""

    version = 1
    CONTROLLERS = ("cpu", "cpuacct", "memory", "pids")

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root
        self.controllers = tuple(c for c in self.CONTROLLERS
                                 if os.path.isdir(os.path.join(root, c)))

    def _dir(self, controller: str, path: str) -> str:
        return os.path.join(self.root, controller, path.strip("/"))

    def _node(self, controller: str, path: str) -> Node:
        """A cgroupspy node for an existing cgroup, without scanning the whole tree."""
        node = Node(os.fsencode(self.root.rstrip("/")))
        node = Node(os.fsencode(controller), parent=node)
        for part in path.strip("/").split("/"):
            node = Node(os.fsencode(part), parent=node)
        return node

    def exists(self, path: str) -> bool:
        return os.path.isdir(self._dir("memory" if "memory" in self.controllers
                                       else self.controllers[0], path))

    def create(self, path: str, res: Resources) -> None:
        for c in self.controllers:
            os.makedirs(self._dir(c, path), exist_ok=True)
        self.update(path, res)

    def update(self, path: str, res: Resources) -> None:
        if "cpu" in self.controllers:
            cpu = CpuController(self._node("cpu", path))
            cpu.shares = cpu_shares(res.cpu_request_milli)
            cpu.cfs_period_us = CPU_PERIOD_US
            cpu.cfs_quota_us = cpu_quota(res.cpu_limit_milli)
        if "memory" in self.controllers:
            mem = MemoryController(self._node("memory", path))
            mem.limit_in_bytes = res.memory_limit_bytes if res.memory_limit_bytes else -1
        if "pids" in self.controllers:
            _write(os.path.join(self._dir("pids", path), "pids.max"),
                   res.pids_limit if res.pids_limit else "max")

    def add(self, path: str, pid: int) -> None:
        for c in self.controllers:
            _write(os.path.join(self._dir(c, path), "cgroup.procs"), pid)

    def procs(self, path: str) -> list[int]:
        c = "pids" if "pids" in self.controllers else self.controllers[0]
        try:
            return [int(x) for x in _read(os.path.join(self._dir(c, path), "cgroup.procs")).split()]
        except FileNotFoundError:
            return []

    def usage(self, path: str) -> Usage:
        cpu_ns = memory = ooms = 0
        if "cpuacct" in self.controllers:
            cpu_ns = int(CpuAcctController(self._node("cpuacct", path)).usage)
        if "memory" in self.controllers:
            memory = int(MemoryController(self._node("memory", path)).usage_in_bytes)
            oom = _read(os.path.join(self._dir("memory", path), "memory.oom_control"))
            for line in oom.splitlines():
                if line.startswith("oom_kill "):
                    ooms = int(line.split()[1])
        return Usage(cpu_ns, memory, ooms)

    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> None:
        _kill_procs(lambda: self.procs(path), sig)

    def delete(self, path: str) -> None:
        for c in self.controllers:
            _rmdir(self._dir(c, path))


class V2Driver:
    """cgroup v2: one unified hierarchy; controllers enabled down the path."""

    version = 2
    CONTROLLERS = ("cpu", "memory", "pids")

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root

    def _dir(self, path: str) -> str:
        return os.path.join(self.root, path.strip("/"))

    def exists(self, path: str) -> bool:
        return os.path.isdir(self._dir(path))

    def create(self, path: str, res: Resources) -> None:
        parts = path.strip("/").split("/")
        available = set(_read(os.path.join(self.root, "cgroup.controllers")).split())
        enable = " ".join(f"+{c}" for c in self.CONTROLLERS if c in available)
        current = self.root
        for part in parts:
            # A parent must delegate the controllers to its children before they exist there.
            if enable:
                _write(os.path.join(current, "cgroup.subtree_control"), enable)
            current = os.path.join(current, part)
            os.makedirs(current, exist_ok=True)
        self.update(path, res)

    def update(self, path: str, res: Resources) -> None:
        d = self._dir(path)
        _write(os.path.join(d, "cpu.weight"), shares_to_weight(cpu_shares(res.cpu_request_milli)))
        quota = cpu_quota(res.cpu_limit_milli)
        _write(os.path.join(d, "cpu.max"), f"{'max' if quota < 0 else quota} {CPU_PERIOD_US}")
        _write(os.path.join(d, "memory.max"),
               res.memory_limit_bytes if res.memory_limit_bytes else "max")
        _write(os.path.join(d, "pids.max"), res.pids_limit if res.pids_limit else "max")

    def add(self, path: str, pid: int) -> None:
        _write(os.path.join(self._dir(path), "cgroup.procs"), pid)

    def procs(self, path: str) -> list[int]:
        try:
            return [int(x) for x in _read(os.path.join(self._dir(path), "cgroup.procs")).split()]
        except FileNotFoundError:
            return []

    def usage(self, path: str) -> Usage:
        d = self._dir(path)
        cpu_us = 0
        for line in _read(os.path.join(d, "cpu.stat")).splitlines():
            if line.startswith("usage_usec "):
                cpu_us = int(line.split()[1])
        ooms = 0
        for line in _read(os.path.join(d, "memory.events")).splitlines():
            if line.startswith("oom_kill "):
                ooms = int(line.split()[1])
        return Usage(cpu_us * 1000, int(_read(os.path.join(d, "memory.current"))), ooms)

    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> None:
        kill_file = os.path.join(self._dir(path), "cgroup.kill")
        if sig == signal.SIGKILL and os.path.exists(kill_file):
            _write(kill_file, 1)  # the kernel kills every process, forks included (5.14+)
        _kill_procs(lambda: self.procs(path), sig)

    def delete(self, path: str) -> None:
        _rmdir(self._dir(path))


def detect(root: str = "/sys/fs/cgroup") -> CgroupDriver:
    """V2 when the unified hierarchy is mounted at ``root``, else V1 (also for hybrid)."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return V2Driver(root)
    return V1Driver(root)
