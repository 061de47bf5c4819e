"""Service and Endpoints.

Defaults: type ClusterIP, sessionAffinity None (ClientIP gets a 10800 s
timeout), port protocol TCP, targetPort = port, externalTrafficPolicy
Cluster for NodePort/LoadBalancer.  Here a requested address is checked for form
and range only; ClusterIP and NodePort are allocated in the create's own
transaction (api/allocator.py).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field

from nodeagent.objects.meta import IntOrString, Model, ObjectMeta, ObjectReference, merge_by
from nodeagent.objects.validation import (
    FieldError,
    Path,
    dns1123_label_errors,
    port_name_errors,
    port_number_errors,
    validate_labels,
)

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
NODE_PORT_RANGE = (30000, 32767)
DEFAULT_AFFINITY_TIMEOUT_S = 10800


class ServicePort(Model):
    port: int
    name: str | None = None
    protocol: str = "TCP"
    target_port: IntOrString | None = None
    node_port: int | None = None
    app_protocol: str | None = None


class ClientIPConfig(Model):
    timeout_seconds: int | None = None


class SessionAffinityConfig(Model):
    client_ip: ClientIPConfig | None = Field(default=None, alias="clientIP")


class ServiceSpec(Model):
    ports: Annotated[list[ServicePort] | None, merge_by("port")] = None
    selector: dict[str, str] | None = None
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    type: str = "ClusterIP"
    external_ips: list[str] | None = Field(default=None, alias="externalIPs")
    session_affinity: str = "None"
    session_affinity_config: SessionAffinityConfig | None = None
    load_balancer_ip: str | None = Field(default=None, alias="loadBalancerIP")
    external_name: str | None = None
    external_traffic_policy: str | None = None
    internal_traffic_policy: str = "Cluster"
    publish_not_ready_addresses: bool | None = None
    allocate_load_balancer_node_ports: bool | None = None
    ip_families: list[str] | None = None
    ip_family_policy: str | None = None


class LoadBalancerIngress(Model):
    ip: str | None = None
    hostname: str | None = None


class LoadBalancerStatus(Model):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(Model):
    load_balancer: LoadBalancerStatus | None = None


class Service(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Service"] = "Service"
    metadata: ObjectMeta
    spec: ServiceSpec | None = None
    status: ServiceStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = ServiceSpec()
        s = self.spec
        for p in s.ports or []:
            if p.target_port is None:
                p.target_port = p.port
        if s.session_affinity == "ClientIP":
            cfg = s.session_affinity_config or SessionAffinityConfig()
            if cfg.client_ip is None:
                cfg.client_ip = ClientIPConfig()
            if cfg.client_ip.timeout_seconds is None:
                cfg.client_ip.timeout_seconds = DEFAULT_AFFINITY_TIMEOUT_S
            s.session_affinity_config = cfg
        if s.type in ("NodePort", "LoadBalancer") and s.external_traffic_policy is None:
            s.external_traffic_policy = "Cluster"
        if s.type != "ExternalName":  # a single-stack IPv4 cluster, as Kubernetes says it
            if s.ip_families is None:
                s.ip_families = ["IPv4"]
            if s.ip_family_policy is None:
                s.ip_family_policy = "SingleStack"
        if self.status is None:
            self.status = ServiceStatus(load_balancer=LoadBalancerStatus())

    def check(self) -> list[FieldError]:
        errs: list[FieldError] = []
        s = self.spec or ServiceSpec()
        sp = Path("spec")
        if s.type not in SERVICE_TYPES:
            errs.append(sp.child("type").unsupported(s.type, SERVICE_TYPES))
        if s.type == "ExternalName":
            if not s.external_name:
                errs.append(sp.child("externalName").required())
        elif not s.ports:
            errs.append(sp.child("ports").required())
        names: set[str] = set()
        seen: set[tuple[int, str]] = set()
        for i, p in enumerate(s.ports or []):
            pp = sp.child("ports").index(i)
            if len(s.ports or []) > 1 and not p.name:
                errs.append(pp.child("name").required())
            if p.name:
                errs.extend(pp.child("name").invalid(p.name, e) for e in dns1123_label_errors(p.name))
                if p.name in names:
                    errs.append(pp.child("name").duplicate(p.name))
                names.add(p.name)
            errs.extend(pp.child("port").invalid(p.port, e) for e in port_number_errors(p.port))
            if p.protocol not in PROTOCOLS:
                errs.append(pp.child("protocol").unsupported(p.protocol, PROTOCOLS))
            if (p.port, p.protocol) in seen:
                errs.append(pp.duplicate({"port": p.port, "protocol": p.protocol}))
            seen.add((p.port, p.protocol))
            tp = pp.child("targetPort")
            if isinstance(p.target_port, int):
                errs.extend(tp.invalid(p.target_port, e) for e in port_number_errors(p.target_port))
            elif isinstance(p.target_port, str):
                errs.extend(tp.invalid(p.target_port, e) for e in port_name_errors(p.target_port))
            if p.node_port is not None and p.node_port != 0:
                if s.type not in ("NodePort", "LoadBalancer"):
                    errs.append(pp.child("nodePort").forbidden(
                        "may not be used when `type` is 'ClusterIP'"))
                elif not NODE_PORT_RANGE[0] <= p.node_port <= NODE_PORT_RANGE[1]:
                    errs.append(pp.child("nodePort").invalid(
                        p.node_port, "provided port is not in the valid range. "
                        f"The range of valid ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"))
        errs.extend(validate_labels(s.selector, sp.child("selector")))
        for i, family in enumerate(s.ip_families or []):
            if family != "IPv4":
                errs.append(sp.child("ipFamilies").index(i).invalid(
                    family, "not configured on this cluster: it is single-stack IPv4"
                    if family == "IPv6" else "must be IPv4 or IPv6"))
        if s.ip_family_policy not in (None, "SingleStack", "PreferDualStack"):
            errs.append(sp.child("ipFamilyPolicy").invalid(
                s.ip_family_policy, "this cluster is not configured for dual-stack services"
                if s.ip_family_policy == "RequireDualStack"
                else "must be SingleStack, PreferDualStack or RequireDualStack"))
        if s.session_affinity not in ("None", "ClientIP"):
            errs.append(sp.child("sessionAffinity").unsupported(
                s.session_affinity, ["ClientIP", "None"]))
        cfg = s.session_affinity_config
        if cfg and cfg.client_ip and cfg.client_ip.timeout_seconds is not None:
            t = cfg.client_ip.timeout_seconds
            if not 0 < t <= 86400:
                errs.append(sp.child("sessionAffinityConfig").child("clientIP")
                            .child("timeoutSeconds").invalid(t, "must be greater than 0 and "
                                                             "less than 86400"))
        if s.cluster_ip not in (None, "", "None"):
            try:
                ipaddress.ip_address(s.cluster_ip)
            except ValueError:
                errs.append(sp.child("clusterIP").invalid(
                    s.cluster_ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        for i, ip in enumerate(s.external_ips or []):
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                errs.append(sp.child("externalIPs").index(i).invalid(
                    ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        return errs

    def check_update(self, old: Service) -> list[FieldError]:
        old_ip = old.spec.cluster_ip if old.spec else None
        new_ip = self.spec.cluster_ip if self.spec else None
        if old_ip and new_ip not in (None, "", old_ip):
            return [Path("spec").child("clusterIP").invalid(new_ip, "field is immutable")]
        if old_ip and self.spec is not None and not new_ip:
            # kubectl apply without clusterIP keeps the allocated one.
            self.spec.cluster_ip = old_ip
            self.spec.cluster_ips = old.spec.cluster_ips if old.spec else None
        if self.spec is not None and old.spec is not None:
            # ... and a port without nodePort keeps the one it had (same port and protocol).
            had = {(p.port, p.protocol): p.node_port for p in old.spec.ports or [] if p.node_port}
            for p in self.spec.ports or []:
                if p.node_port is None and self.spec.type in ("NodePort", "LoadBalancer"):
                    p.node_port = had.get((p.port, p.protocol))
        return []


# --- Endpoints ---------------------------------------------------------------------------


class EndpointAddress(Model):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(Model):
    port: int
    name: str | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None


class EndpointSubset(Model):
    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Endpoints"] = "Endpoints"
    metadata: ObjectMeta
    subsets: list[EndpointSubset] | None = None

    def check(self) -> list[FieldError]:
        errs: list[FieldError] = []
        for i, sub in enumerate(self.subsets or []):
            sp = Path("subsets").index(i)
            for field, addrs in (("addresses", sub.addresses),
                                 ("notReadyAddresses", sub.not_ready_addresses)):
                for j, a in enumerate(addrs or []):
                    try:
                        ipaddress.ip_address(a.ip)
                    except ValueError:
                        errs.append(sp.child(field).index(j).child("ip").invalid(
                            a.ip, "must be a valid IP address"))
            for j, p in enumerate(sub.ports or []):
                pp = sp.child("ports").index(j)
                errs.extend(pp.child("port").invalid(p.port, e) for e in port_number_errors(p.port))
                if p.protocol not in PROTOCOLS:
                    errs.append(pp.child("protocol").unsupported(p.protocol, PROTOCOLS))
        return errs
