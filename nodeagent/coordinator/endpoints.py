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

The same pods are kept as EndpointSlices (discovery.k8s.io/v1, at most 100 endpoints a
slice, named by the Service and the slice's place), which also hold the pods being
deleted, marked terminating and not ready, as Kubernetes' slices do.  A selectorless
Service's Endpoints, written by its user, are mirrored into slices, so the proxy,
which reads slices, serves both.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.coordinator.listcache import ListCache
from nodeagent.objects.access import Objects
from nodeagent.objects.discovery import MANAGED_BY, SERVICE_NAME
from nodeagent.objects.kinds import ENDPOINT_SLICES, ENDPOINTS, PODS, SERVICES
from nodeagent.objects.podutil import is_ready
from nodeagent.objects.selectors import Selector, selector_from_dict

__all__ = ["PREFIXES", "EndpointsController", "desired_slices", "desired_subsets"]

log = logging.getLogger("nodeagent.endpoints")

PREFIXES = (SERVICES.prefix(None), ENDPOINTS.prefix(None), PODS.prefix(None),
            ENDPOINT_SLICES.prefix(None))
MANAGED = "endpoints.kubernetes.io/managed-by"  # marks Endpoints this controller owns
SLICER = "endpointslice-controller.k8s.io"  # Kubernetes' names for the two slice keepers
MIRROR = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
PER_SLICE = 100
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


def _served(spec: Obj, pods: list[Obj]) -> Iterator[tuple[Obj, tuple]]:
    """(pod, its resolved ports, sorted) for each pod with an IP that serves the Service's
    ports (a named targetPort the pod lacks leaves that port out)."""
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
        yield pod, tuple(sorted(ports))


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    spec = service.get("spec") or {}
    publish_all = bool(spec.get("publishNotReadyAddresses"))
    # (resolved ports) -> ready addresses, not-ready addresses
    groups: dict[tuple, tuple[list[Obj], list[Obj]]] = defaultdict(lambda: ([], []))
    for pod, ports in _served(spec, pods):
        ready, not_ready = groups[ports]
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


def desired_slices(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The Service's EndpointSlices (bodies without metadata): pods grouped by their
    resolved ports as in desired_subsets, terminating ones kept with their conditions."""
    spec = service.get("spec") or {}
    publish_all = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple, list[Obj]] = defaultdict(list)
    for pod, ports in _served(spec, pods):
        address = _address(pod)
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        serving = is_ready(pod)
        endpoint: Obj = {"addresses": [address["ip"]],
                         "conditions": {"ready": (publish_all or serving) and not terminating,
                                        "serving": serving, "terminating": terminating},
                         "targetRef": address["targetRef"]}
        if "nodeName" in address:
            endpoint["nodeName"] = address["nodeName"]
        groups[ports].append(endpoint)
    slices = []
    for port_set, endpoints in sorted(groups.items()):
        endpoints.sort(key=lambda e: e["addresses"][0])
        named = [{"name": n, "port": num, "protocol": proto} for n, num, proto in port_set]
        for i in range(0, len(endpoints), PER_SLICE):
            slices.append({"addressType": "IPv4", "endpoints": endpoints[i:i + PER_SLICE],
                           "ports": named})
    return slices


def mirrored_slices(endpoints: Obj) -> list[Obj]:
    """A selectorless Service's Endpoints (its user's) as slices, one or more a subset."""
    slices = []
    for subset in endpoints.get("subsets") or []:
        eps = [{"addresses": [a["ip"]], "conditions": {"ready": ready},
                **{k: a[k] for k in ("hostname", "nodeName", "targetRef") if a.get(k)}}
               for field, ready in (("addresses", True), ("notReadyAddresses", False))
               for a in subset.get(field) or []]
        ports = [{"name": p.get("name") or "", "port": p["port"],
                  "protocol": p.get("protocol", "TCP")} for p in subset.get("ports") or []]
        for i in range(0, len(eps), PER_SLICE):
            slices.append({"addressType": "IPv4", "endpoints": eps[i:i + PER_SLICE],
                           "ports": ports})
    return slices


def _slice_name(service: Obj, i: int) -> str:
    """A stable name per Service and place (Kubernetes generates them; stable names let a
    pass compare and update in place)."""
    digest = hashlib.sha256(f"{service['metadata'].get('uid')}/{i}".encode()).hexdigest()
    return f"{service['metadata']['name'][:56]}-{digest[:5]}"


def _selects(service: Obj) -> Selector | None:
    selector = (service.get("spec") or {}).get("selector")
    if not selector:
        return None
    return selector_from_dict({"matchLabels": selector})


def _without_versions(items: list[Obj]) -> list[Obj]:
    """Addresses or endpoints without their targetRefs' resourceVersions (a pod's status
    write alone is not a change)."""
    return [{**a, "targetRef": {k: v for k, v in a["targetRef"].items()
                                if k != "resourceVersion"}} if "targetRef" in a else a
            for a in items]


def _comparable(subsets: list[Obj]) -> list[Obj]:
    return [{k: _without_versions(v) if k.endswith("ddresses") else v for k, v in s.items()}
            for s in subsets]


class EndpointsController:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self._pods = ListCache(objects.store, PODS)  # read, never changed here

    async def sync(self) -> float | None:
        pods_by_ns: dict[str, list[Obj]] = defaultdict(list)
        for pod in self._pods.items():
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                continue  # (pods being deleted: terminating endpoints of the slices)
            pods_by_ns[pod["metadata"]["namespace"]].append(pod)
        services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s
                    for s in self.objects.list(SERVICES, None)["items"]}
        existing = {(e["metadata"]["namespace"], e["metadata"]["name"]): e
                    for e in self.objects.list(ENDPOINTS, None)["items"]}
        slices: dict[tuple[str, str], list[Obj]] = defaultdict(list)
        for sl in self.objects.list(ENDPOINT_SLICES, None)["items"]:
            labels = sl["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY) in (SLICER, MIRROR) and labels.get(SERVICE_NAME):
                slices[(sl["metadata"]["namespace"], labels[SERVICE_NAME])].append(sl)
        for key, svc in services.items():
            selector = _selects(svc)
            if selector is None:  # selectorless: the user's Endpoints stay as written
                ep = existing.get(key)
                labels = (ep or {}).get("metadata", {}).get("labels") or {}
                mirrored = mirrored_slices(ep) if ep is not None and MANAGED not in labels \
                    and labels.get(SKIP_MIRROR) != "true" else []
                await self._write_slices(svc, mirrored, slices.pop(key, []), MIRROR)
                continue
            matching = [p for p in pods_by_ns[key[0]]
                        if selector.matches(p["metadata"].get("labels"))]
            live = [p for p in matching if not p["metadata"].get("deletionTimestamp")]
            # Slices first: a pod manager waits for its pod to leave the Endpoints and then
            # for the rules to reach that revision; the proxy reads slices.
            await self._write_slices(svc, desired_slices(svc, matching), slices.pop(key, []),
                                     SLICER)
            await self._write(svc, desired_subsets(svc, live), existing.get(key))
        for key, ep in existing.items():
            labels = ep["metadata"].get("labels") or {}
            if key not in services and labels.get(MANAGED) == "endpoint-controller":
                await self._delete(ENDPOINTS, key[0], key[1])
        for orphans in slices.values():  # of Services that are gone
            for sl in orphans:
                await self._delete(ENDPOINT_SLICES, sl["metadata"]["namespace"],
                                   sl["metadata"]["name"])
        return None

    async def _delete(self, res: Any, namespace: str, name: str) -> None:
        try:
            await self.objects.delete(res, namespace, name)
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _write_slices(self, svc: Obj, wanted: list[Obj], current: list[Obj],
                            manager: str) -> None:
        meta = svc["metadata"]
        by_name = {sl["metadata"]["name"]: sl for sl in current}
        labels = {SERVICE_NAME: meta["name"], MANAGED_BY: manager}
        owner = [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                  "uid": meta.get("uid"), "controller": True, "blockOwnerDeletion": True}]
        for i, body in enumerate(wanted):
            name = _slice_name(svc, i)
            have = by_name.pop(name, None)
            obj: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"name": name, "namespace": meta["namespace"],
                                     "labels": labels, "ownerReferences": owner}, **body}
            if have is None:
                try:
                    await self.objects.create(ENDPOINT_SLICES, meta["namespace"], obj)
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                continue
            if _same_slice(have, obj):
                continue
            obj["metadata"]["resourceVersion"] = have["metadata"]["resourceVersion"]
            await self.objects.update(ENDPOINT_SLICES, meta["namespace"], name, obj)
        for name in by_name:  # more slices than needed now
            await self._delete(ENDPOINT_SLICES, meta["namespace"], name)

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


def _same_slice(have: Obj, want: Obj) -> bool:
    """Equal but for targetRefs' resourceVersions and what the server adds."""
    hm, wm = have["metadata"], want["metadata"]
    return _without_versions(have.get("endpoints") or []) == \
        _without_versions(want["endpoints"]) and \
        (have.get("ports") or []) == want["ports"] and \
        (hm.get("labels") or {}) == wm["labels"] and \
        (hm.get("ownerReferences") or []) == wm["ownerReferences"]
