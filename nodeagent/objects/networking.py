"""Ingress (networking.k8s.io/v1), and the extensions/v1beta1 form the seeds use.

The v1beta1 form (``backend: {serviceName, servicePort}``, ``spec.backend``)
is read and converted to v1 on the way in, as the apiserver did while it
served both versions; it is stored and returned as v1.
"""

from __future__ import annotations

from typing import Any, Literal

from nodeagent.objects.meta import Model, ObjectMeta
from nodeagent.objects.service import LoadBalancerStatus
from nodeagent.objects.validation import (
    FieldError,
    Path,
    dns1123_subdomain_errors,
    port_name_errors,
    port_number_errors,
)

PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]


class ServiceBackendPort(Model):
    name: str | None = None
    number: int | None = None


class IngressServiceBackend(Model):
    name: str
    port: ServiceBackendPort | None = None


class TypedLocalObjectReference(Model):
    api_group: str | None = None
    kind: str
    name: str


class IngressBackend(Model):
    service: IngressServiceBackend | None = None
    resource: TypedLocalObjectReference | None = None


class HTTPIngressPath(Model):
    path: str | None = None
    path_type: str | None = None
    backend: IngressBackend


class HTTPIngressRuleValue(Model):
    paths: list[HTTPIngressPath]


class IngressRule(Model):
    host: str | None = None
    http: HTTPIngressRuleValue | None = None


class IngressTLS(Model):
    hosts: list[str] | None = None
    secret_name: str | None = None


class IngressSpec(Model):
    ingress_class_name: str | None = None
    default_backend: IngressBackend | None = None
    tls: list[IngressTLS] | None = None
    rules: list[IngressRule] | None = None


class IngressStatus(Model):
    load_balancer: LoadBalancerStatus | None = None


class Ingress(Model):
    api_version: Literal["networking.k8s.io/v1"] = "networking.k8s.io/v1"
    kind: Literal["Ingress"] = "Ingress"
    metadata: ObjectMeta
    spec: IngressSpec | None = None
    status: IngressStatus | None = None

    def apply_defaults(self) -> None:
        if self.spec is None:
            self.spec = IngressSpec()
        if self.status is None:
            self.status = IngressStatus(load_balancer=LoadBalancerStatus())

    def check(self) -> list[FieldError]:
        s = self.spec or IngressSpec()
        sp = Path("spec")
        errs: list[FieldError] = []
        if not s.rules and s.default_backend is None:
            errs.append(sp.invalid({}, "either `defaultBackend` or `rules` must be specified"))
        if s.default_backend is not None:
            errs.extend(_backend_errors(s.default_backend, sp.child("defaultBackend")))
        for i, r in enumerate(s.rules or []):
            rp = sp.child("rules").index(i)
            if r.host:
                host = r.host[2:] if r.host.startswith("*.") else r.host
                errs.extend(rp.child("host").invalid(r.host, e)
                            for e in dns1123_subdomain_errors(host))
            for j, p in enumerate((r.http.paths if r.http else None) or []):
                pp = rp.child("http").child("paths").index(j)
                if p.path_type is None:
                    errs.append(pp.child("pathType").required("pathType must be specified"))
                elif p.path_type not in PATH_TYPES:
                    errs.append(pp.child("pathType").unsupported(p.path_type, PATH_TYPES))
                if p.path is not None and p.path_type in ("Exact", "Prefix") and \
                        not p.path.startswith("/"):
                    errs.append(pp.child("path").invalid(p.path, "must be an absolute path"))
                errs.extend(_backend_errors(p.backend, pp.child("backend")))
        return errs


def _backend_errors(b: IngressBackend, path: Path) -> list[FieldError]:
    if (b.service is None) == (b.resource is None):
        return [path.invalid("", "cannot set both resource and service backends" if b.service
                             else "one backend must be specified")]
    errs: list[FieldError] = []
    if b.service is not None:
        sp = path.child("service")
        port = b.service.port
        if port is None or (port.name is None) == (port.number is None):
            errs.append(sp.child("port").invalid(
                port.dump() if port else None, "port name or number is required"))
        elif port.number is not None:
            errs.extend(sp.child("port").child("number").invalid(port.number, e)
                        for e in port_number_errors(port.number))
        elif port.name is not None:
            errs.extend(sp.child("port").child("name").invalid(port.name, e)
                        for e in port_name_errors(port.name))
    return errs


def _convert_backend(b: Any) -> Any:
    """v1beta1 ``{serviceName, servicePort}`` -> v1 ``{service: {name, port}}``."""
    if not isinstance(b, dict) or ("serviceName" not in b and "servicePort" not in b):
        return b
    b = dict(b)
    name = b.pop("serviceName", None)
    port = b.pop("servicePort", None)
    service: dict[str, Any] = {"name": name}
    if isinstance(port, int):
        service["port"] = {"number": port}
    elif isinstance(port, str):
        service["port"] = {"number": int(port)} if port.isdigit() else {"name": port}
    b["service"] = service
    return b


def convert_v1beta1(obj: dict[str, Any]) -> dict[str, Any]:
    """Convert an extensions/v1beta1 or networking.k8s.io/v1beta1 Ingress dict to v1.

    Only the shape is converted; what is left unknown is reported by strict
    decoding afterwards, with its v1 path.
    """
    out = dict(obj)
    out["apiVersion"] = "networking.k8s.io/v1"
    spec = out.get("spec")
    if isinstance(spec, dict):
        spec = dict(spec)
        if "backend" in spec:
            spec["defaultBackend"] = _convert_backend(spec.pop("backend"))
        rules = spec.get("rules")
        if isinstance(rules, list):
            new_rules = []
            for r in rules:
                if isinstance(r, dict) and isinstance(r.get("http"), dict):
                    r = dict(r)
                    http = dict(r["http"])
                    paths = http.get("paths")
                    if isinstance(paths, list):
                        new_paths = []
                        for p in paths:
                            if isinstance(p, dict):
                                p = dict(p)
                                p.setdefault("pathType", "ImplementationSpecific")
                                if "backend" in p:
                                    p["backend"] = _convert_backend(p["backend"])
                            new_paths.append(p)
                        http["paths"] = new_paths
                    r["http"] = http
                new_rules.append(r)
            spec["rules"] = new_rules
        out["spec"] = spec
    return out
