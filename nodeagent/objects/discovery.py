"""discovery.k8s.io/v1 EndpointSlices: a Service's endpoints in slices of at most 100,
each endpoint with its ready, serving and terminating conditions (Endpoints knows only
ready or not, and drops a terminating pod at once).  Kept by the endpoints controller
(coordinator/endpoints.py) and read by the service proxy."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from nodeagent.objects.meta import Model, ObjectMeta, ObjectReference, merge_by
from nodeagent.objects.validation import (
    FieldError,
    Path,
    dns1123_label_errors,
    port_name_errors,
)

__all__ = ["ADDRESS_TYPES", "MANAGED_BY", "SERVICE_NAME", "Endpoint", "EndpointConditions",
           "EndpointSlice"]

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
SERVICE_NAME = "kubernetes.io/service-name"  # the Service a slice belongs to
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MAX_ENDPOINTS, MAX_ADDRESSES, MAX_PORTS = 1000, 100, 100  # Kubernetes' caps


class EndpointConditions(Model):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class ForZone(Model):
    name: str


class ForNode(Model):
    name: str


class EndpointHints(Model):
    for_zones: list[ForZone] | None = None
    for_nodes: list[ForNode] | None = None


class Endpoint(Model):
    addresses: Annotated[list[str], merge_by()]
    conditions: EndpointConditions | None = None
    hostname: str | None = None
    target_ref: ObjectReference | None = None
    deprecated_topology: dict[str, str] | None = None
    node_name: str | None = None
    zone: str | None = None
    hints: EndpointHints | None = None


class EndpointPort(Model):
    name: str | None = None
    protocol: str | None = "TCP"
    port: int | None = None
    app_protocol: str | None = None


class EndpointSlice(Model):
    api_version: Literal["discovery.k8s.io/v1"] = "discovery.k8s.io/v1"
    kind: Literal["EndpointSlice"] = "EndpointSlice"
    metadata: ObjectMeta
    address_type: str
    endpoints: list[Endpoint]
    ports: list[EndpointPort] | None = None

    def check(self) -> list[FieldError]:
        errs: list[FieldError] = []
        if self.address_type not in ADDRESS_TYPES:
            errs.append(Path("addressType").unsupported(self.address_type, ADDRESS_TYPES))
        if len(self.endpoints) > MAX_ENDPOINTS:
            errs.append(Path("endpoints").too_many(len(self.endpoints), MAX_ENDPOINTS))
        for i, e in enumerate(self.endpoints[:MAX_ENDPOINTS]):
            ep = Path("endpoints").index(i)
            if not e.addresses or len(e.addresses) > MAX_ADDRESSES:
                errs.append(ep.child("addresses").invalid(
                    len(e.addresses), f"must have at least 1 and at most {MAX_ADDRESSES} "
                    "addresses"))
            for j, address in enumerate(e.addresses[:MAX_ADDRESSES]):
                errs.extend(_address_errors(self.address_type, address,
                                            ep.child("addresses").index(j)))
            if e.hostname is not None:
                errs.extend(ep.child("hostname").invalid(e.hostname, m)
                            for m in dns1123_label_errors(e.hostname))
        ports = self.ports or []
        if len(ports) > MAX_PORTS:
            errs.append(Path("ports").too_many(len(ports), MAX_PORTS))
        names: set[str] = set()
        for i, p in enumerate(ports[:MAX_PORTS]):
            pp = Path("ports").index(i)
            if p.name:
                errs.extend(pp.child("name").invalid(p.name, m) for m in port_name_errors(p.name))
            if (p.name or "") in names:
                errs.append(pp.child("name").duplicate(p.name or ""))
            names.add(p.name or "")
            if p.protocol not in PROTOCOLS:
                errs.append(pp.child("protocol").unsupported(p.protocol, PROTOCOLS))
            if p.port is not None and not 0 <= p.port <= 65535:
                errs.append(pp.child("port").invalid(p.port, "must be between 0 and 65535, "
                                                              "inclusive"))
        return errs

    def check_update(self, old: EndpointSlice) -> list[FieldError]:
        if self.address_type != old.address_type:
            return [Path("addressType").invalid(self.address_type,
                                                "field is immutable")]
        return []


def _address_errors(kind: str, address: str, path: Path) -> list[FieldError]:
    if kind == "FQDN":
        return [] if address and len(address) <= 253 else [
            path.invalid(address, "must be a DNS name of at most 253 characters")]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return [path.invalid(address, f"must be a valid {kind} address")]
    if ip.version != (4 if kind == "IPv4" else 6):
        return [path.invalid(address, f"must be a valid {kind} address")]
    return []
