"""The ``kubernetes`` Service in ``default``: how pods reach the API servers.

kube-apiserver keeps it itself: a selectorless Service with the service range's first
address (10.96.0.1) and port 443, and Endpoints listing every live API server.  Here the
servers' registry (apiservers.py) names them, narrowed to the Raft members and, when the
agents gossip, to those not known failed; the Endpoints follow it, so a pod's calls
move off a server that is gone.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from nodeagent import apiservers
from nodeagent.api.allocator import SERVICE_CIDR
from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import ENDPOINTS, SERVICES
from nodeagent.store.base import SERVERS_PREFIX

__all__ = ["KubernetesService"]

log = logging.getLogger("nodeagent.coordinator")

PREFIXES = (SERVERS_PREFIX, SERVICES.key("default", "kubernetes"),
            ENDPOINTS.key("default", "kubernetes"))
NAME, NAMESPACE = "kubernetes", "default"
LABELS = {"component": "apiserver", "provider": "kubernetes"}
Obj = dict[str, Any]


def endpoint_subsets(urls: list[str]) -> list[Obj]:
    """Endpoints subsets for the servers' API URLs, one per port (IPv4 addresses only:
    the pod network is IPv4)."""
    by_port: dict[int, set[str]] = defaultdict(set)
    for url in urls:
        try:
            parts = urlsplit(url)
            ip = ipaddress.ip_address(parts.hostname or "")
            port = parts.port or 443
        except ValueError:
            continue
        if ip.version == 4 and not ip.is_unspecified:
            by_port[port].add(str(ip))
    return [{"addresses": [{"ip": ip} for ip in sorted(ips)],
             "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
            for port, ips in sorted(by_port.items())]


class KubernetesService:
    """``members``: gossip's member states by name, when the agents gossip."""

    def __init__(self, objects: Objects,
                 members: Callable[[], dict[str, str]] | None = None) -> None:
        self.objects, self.members = objects, members

    async def sync(self) -> float | None:
        try:
            servers = apiservers.servers(self.objects.store)
        except ApiError:
            return 1.0  # a member not registered yet
        if self.members is not None:
            states = self.members()
            servers = {n: u for n, u in servers.items() if states.get(n, "alive") != "failed"} \
                or servers  # never none: a lone survivor may not know itself yet
        subsets = endpoint_subsets(list(servers.values()))
        if not subsets:
            return None
        await self._service(subsets[0]["ports"][0]["port"])
        await self._endpoints(subsets)
        return 10.0 if self.members is not None else None  # gossip wakes nothing here

    async def _service(self, target_port: int) -> None:
        try:
            svc = self.objects.get(SERVICES, NAMESPACE, NAME)
        except ApiError as exc:
            if exc.code != 404:
                raise
            svc = None
        ports = [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": target_port}]
        if svc is None:
            first = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
            body: Obj = {"metadata": {"name": NAME, "labels": LABELS},
                         "spec": {"type": "ClusterIP", "clusterIP": first, "ports": ports,
                                  "sessionAffinity": "None"}}
            for attempt in (body, {**body, "spec": {k: v for k, v in body["spec"].items()
                                                    if k != "clusterIP"}}):
                try:
                    await self.objects.create(SERVICES, NAMESPACE, attempt)
                    log.info("created the kubernetes Service")
                    return
                except ApiError as exc:
                    if exc.code == 409:
                        return
                    if exc.code != 422:  # 422: its address is someone else's: take any
                        raise
            return
        spec = svc.get("spec") or {}
        if [{k: p.get(k) for k in ("name", "port", "protocol", "targetPort")}
                for p in spec.get("ports") or []] != ports:
            await self.objects.update(SERVICES, NAMESPACE, NAME,
                                      {**svc, "spec": {**spec, "ports": ports}})

    async def _endpoints(self, subsets: list[Obj]) -> None:
        # Mirrored into an EndpointSlice by the endpoints controller (the proxy reads slices).
        body: Obj = {"metadata": {"name": NAME}, "subsets": subsets}
        try:
            current = self.objects.get(ENDPOINTS, NAMESPACE, NAME)
        except ApiError as exc:
            if exc.code != 404:
                raise
            try:
                await self.objects.create(ENDPOINTS, NAMESPACE, body)
            except ApiError as exc2:
                if exc2.code != 409:
                    raise
            return
        if current.get("subsets") != subsets or current["metadata"].get("labels"):
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await self.objects.update(ENDPOINTS, NAMESPACE, NAME, body)
            log.info("kubernetes Endpoints now %s",
                     ", ".join(f"{a['ip']}:{s['ports'][0]['port']}" for s in subsets
                               for a in s["addresses"]))
