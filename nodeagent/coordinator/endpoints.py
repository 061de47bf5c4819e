"""Endpoints controller: for each Service with a selector, the pods behind it.

Per Service: the pods of its namespace its selector matches that have an IP and
are not finished or being deleted (a pod being deleted leaves the endpoints at
once, before its containers get SIGTERM: that is what lets a rollout drop no
request); ready ones under ``addresses``, the others under
``notReadyAddresses`` (all under ``addresses`` with publishNotReadyAddresses).
Named targetPorts are resolved per pod from its containers' ports, so pods
with different port numbers for one name end up in different subsets, as
Kubernetes packs them.  Services without a selector keep the Endpoints their
user wrote; Endpoints this controller made for a Service that is gone are
deleted.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.coordinator.listcache import ListCache
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import ENDPOINTS, PODS, SERVICES
from nodeagent.objects.podutil import is_ready
from nodeagent.objects.selectors import Selector, selector_from_dict

__all__ = ["PREFIXES", "EndpointsController", "desired_subsets"]

log = logging.getLogger("nodeagent.endpoints")

PREFIXES = (SERVICES.prefix(None), ENDPOINTS.prefix(None), PODS.prefix(None))
MANAGED = "endpoints.kubernetes.io/managed-by"  # marks Endpoints this controller owns
Obj = dict[str, Any]


def _target_port(port: Obj, pod: Obj) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or []:
        for cp in c.get("ports") or []:
            if cp.get("name") == target and cp.get("protocol", "TCP") == port.get("protocol", "TCP"):
                return int(cp["containerPort"])
    return None


def _address(pod: Obj) -> Obj:
    meta = pod["metadata"]
    addr: Obj = {"ip": pod["status"]["podIP"],
                 "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                               "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion")}}
    if (pod.get("spec") or {}).get("nodeName"):
        addr["nodeName"] = pod["spec"]["nodeName"]
    return addr


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    spec = service.get("spec") or {}
    publish_all = bool(spec.get("publishNotReadyAddresses"))
    # (resolved ports) -> ready addresses, not-ready addresses
    groups: dict[tuple, tuple[list[Obj], list[Obj]]] = defaultdict(lambda: ([], []))
    for pod in pods:
        if not (pod.get("status") or {}).get("podIP"):
            continue
        ports = []
        for p in spec.get("ports") or []:
            number = _target_port(p, pod)
            if number is not None:
                ports.append((p.get("name") or "", number, p.get("protocol", "TCP")))
        if not ports and spec.get("ports"):
            continue
        ready, not_ready = groups[tuple(sorted(ports))]
        (ready if publish_all or is_ready(pod) else not_ready).append(_address(pod))
    subsets = []
    for port_set, (ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
        if port_set:
            subset["ports"] = [{**({"name": n} if n else {}), "port": num, "protocol": proto}
                               for n, num, proto in port_set]
        subsets.append(subset)
    return subsets


def _selects(service: Obj) -> Selector | None:
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        return None
    return selector_from_dict({"matchLabels": selector})


def _comparable(subsets: list[Obj]) -> list[Obj]:
    """Subsets without resourceVersions (a pod's status write alone is not a change)."""
    def strip(addrs: list[Obj]) -> list[Obj]:
        return [{**a, "targetRef": {k: v for k, v in a["targetRef"].items()
                                    if k != "resourceVersion"}} if "targetRef" in a else a
                for a in addrs]
    return [{k: strip(v) if k.endswith("ddresses") else v for k, v in s.items()} for s in subsets]


class EndpointsController:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self._pods = ListCache(objects.store, PODS)  # read, never changed here

    async def sync(self) -> float | None:
        pods_by_ns: dict[str, list[Obj]] = defaultdict(list)
        for pod in self._pods.items():
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp"):
                continue
            pods_by_ns[pod["metadata"]["namespace"]].append(pod)
        services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s
                    for s in self.objects.list(SERVICES, None)["items"]}
        existing = {(e["metadata"]["namespace"], e["metadata"]["name"]): e
                    for e in self.objects.list(ENDPOINTS, None)["items"]}
        for key, svc in services.items():
            selector = _selects(svc)
            if selector is None:
                continue  # selectorless: the user's Endpoints stay as written
            pods = [p for p in pods_by_ns[key[0]] if selector.matches(p["metadata"].get("labels"))]
            await self._write(svc, desired_subsets(svc, pods), existing.get(key))
        for key, ep in existing.items():
            labels = ep["metadata"].get("labels") or {}
            if key not in services and labels.get(MANAGED) == "endpoint-controller":
                try:
                    await self.objects.delete(ENDPOINTS, key[0], key[1])
                except ApiError as exc:
                    if exc.code != 404:
                        raise
        return None

    async def _write(self, svc: Obj, subsets: list[Obj], current: Obj | None) -> None:
        meta = svc["metadata"]
        labels = {**(meta.get("labels") or {}), MANAGED: "endpoint-controller"}
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                  "labels": labels}}
        if subsets:
            body["subsets"] = subsets
        if current is None:
            try:
                await self.objects.create(ENDPOINTS, meta["namespace"], body)
            except ApiError as exc:
                if exc.code != 409:
                    raise
            return
        if _comparable(current.get("subsets") or []) == _comparable(subsets) and \
                (current["metadata"].get("labels") or {}) == labels:
            return
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await self.objects.update(ENDPOINTS, meta["namespace"], meta["name"], body)
