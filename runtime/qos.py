"""Kubernetes QoS classes and the pod/container cgroup layout kubelet uses.

Layout under a configurable parent (kubelet's ``kubepods``)::

    PARENT/                      Guaranteed pods directly below
    PARENT/burstable/pod<uid>/<container>
    PARENT/besteffort/pod<uid>/<container>
    PARENT/pod<uid>/<container>  (Guaranteed)

A pod's cgroup gets the sum of its containers' limits when every container has
one (else no limit at that level), and cpu shares from the sum of requests, as
kubelet's ``ResourceConfigForPod`` does; each container's cgroup gets its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the classifier is used by the API's models and nodectl, which need no
    from runtime.cgroups import Resources  # cgroup driver (cgroupspy): loaded where used

__all__ = ["ContainerResources", "container_cgroup", "pod_cgroup", "pod_resources", "qos_class"]

GUARANTEED, BURSTABLE, BESTEFFORT = "Guaranteed", "Burstable", "BestEffort"


@dataclass(frozen=True)
class ContainerResources:
    """A container's requests and limits (cpu in millicores, memory in bytes)."""

    cpu_request_milli: int | None = None
    cpu_limit_milli: int | None = None
    memory_request_bytes: int | None = None
    memory_limit_bytes: int | None = None

    @property
    def effective_cpu_request(self) -> int | None:
        # Kubernetes defaults a missing request to the limit.
        return self.cpu_request_milli if self.cpu_request_milli is not None else self.cpu_limit_milli

    @property
    def effective_memory_request(self) -> int | None:
        if self.memory_request_bytes is not None:
            return self.memory_request_bytes
        return self.memory_limit_bytes

    def as_resources(self, pids_limit: int | None = None) -> Resources:
        from runtime.cgroups import Resources
        return Resources(cpu_request_milli=self.effective_cpu_request,
                         cpu_limit_milli=self.cpu_limit_milli,
                         memory_limit_bytes=self.memory_limit_bytes, pids_limit=pids_limit)


def qos_class(containers: Sequence[ContainerResources]) -> str:
    """Guaranteed: every container has cpu and memory limits equal to its requests.
    BestEffort: no container has any request or limit.  Otherwise Burstable."""
    if all(c.cpu_request_milli is None and c.cpu_limit_milli is None
           and c.memory_request_bytes is None and c.memory_limit_bytes is None
           for c in containers):
        return BESTEFFORT
    for c in containers:
        if c.cpu_limit_milli is None or c.memory_limit_bytes is None:
            return BURSTABLE
        if c.effective_cpu_request != c.cpu_limit_milli or \
                c.effective_memory_request != c.memory_limit_bytes:
            return BURSTABLE
    return GUARANTEED


def pod_resources(containers: Sequence[ContainerResources],
                  pids_limit: int | None = None) -> Resources:
    from runtime.cgroups import Resources
    cpu_requests = sum(c.effective_cpu_request or 0 for c in containers)
    all_cpu_limits = all(c.cpu_limit_milli is not None for c in containers)
    all_mem_limits = all(c.memory_limit_bytes is not None for c in containers)
    return Resources(
        cpu_request_milli=cpu_requests or None,
        cpu_limit_milli=sum(c.cpu_limit_milli or 0 for c in containers) if all_cpu_limits else None,
        memory_limit_bytes=(sum(c.memory_limit_bytes or 0 for c in containers)
                            if all_mem_limits else None),
        pids_limit=pids_limit)


def pod_cgroup(parent: str, qos: str, pod_uid: str) -> str:
    uid = pod_uid.replace("-", "_")  # as kubelet's cgroupfs driver names them
    if qos == GUARANTEED:
        return f"{parent}/pod{uid}"
    return f"{parent}/{qos.lower()}/pod{uid}"


def container_cgroup(pod_path: str, container_id: str) -> str:
    return f"{pod_path}/{container_id}"
