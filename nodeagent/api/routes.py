"""URL paths -> (resource, namespace, name, subresource), the Kubernetes way.

Kubernetes paths are regular but ambiguous for a generic router:
``/api/v1/namespaces/x`` is a Namespace, ``/api/v1/namespaces/x/pods`` is a
list of pods in it, ``/api/v1/namespaces/x/status`` the Namespace's status.
Parsing them by hand in one place is clearer than a table of patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodeagent.api.scale import SCALABLE
from nodeagent.api.status import ApiError
from nodeagent.objects.kinds import Resource, by_plural

SUBRESOURCES = ("status", "finalize", "binding", "log", "exec", "token", "scale", "eviction",
                "ephemeralcontainers", "attach", "portforward", "proxy")
# The kinds whose objects the API proxies HTTP to: the path goes on after ``proxy``.
PROXIED = frozenset({"Pod", "Service", "Node"})
POD_SUBRESOURCES = ("binding", "log", "exec", "eviction", "ephemeralcontainers", "attach",
                    "portforward")


@dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str | None  # None: all namespaces (namespaced kinds) or cluster-scoped
    name: str | None
    subresource: str | None


def parse_resource_path(path: str) -> Target | None:
    """Parse ``/api/v1/...`` or ``/apis/G/V/...``; None if the path is not a resource path.

    Raises ApiError 404 for an unknown resource under a known prefix.
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    res = by_plural(group, version, plural)
    if res is None:
        gv = f"{group}/{version}" if group else version
        raise ApiError(404, "NotFound", f"the server could not find the requested resource "
                       f"({plural} in {gv})")
    if namespace is not None and not res.namespaced:
        raise ApiError(404, "NotFound", f"the server could not find the requested resource: "
                       f"{plural} is not namespaced")
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) >= 3 else None
    if (len(rest) > 3 and sub != "proxy") or (sub is not None and sub not in SUBRESOURCES):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if sub == "status" and not res.has_status:
        raise ApiError(404, "NotFound", f"the server could not find the requested resource "
                       f"({plural}/status)")
    if (sub == "finalize" and res.kind != "Namespace") or \
            (sub in POD_SUBRESOURCES and res.kind != "Pod") or \
            (sub == "token" and res.kind != "ServiceAccount") or \
            (sub == "scale" and res.kind not in SCALABLE) or \
            (sub == "proxy" and res.kind not in PROXIED):
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if name is not None and not name:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return Target(res, namespace, name, sub)
