"""What a caller may do: a request's attributes as Kubernetes names them, and the
authorizers that decide on them, asked in order until one decides.

Attributes (k8s.io/apiserver's authorizer.Attributes): a *resource request* has a
verb (get, list, watch, create, update, patch, delete, deletecollection), an API
group, a resource and subresource (``pods/exec``), a namespace and a name; any other
path is a *non-resource request* whose verb is the HTTP method in lower case.

Authorizers, in order:

1. ``system:masters`` may do anything (kube-apiserver's superuser group; the admin
   kubeconfig's certificate is in it).
2. Bootstrap tokens may join, and nothing else.
3. The agents' own paths: the replica stream (``/replica/...``) is for nodes;
   ``POST /raft/hello`` (servers finding each other), ``POST /encryption-config`` (a
   rotated key for Secrets) and ``POST /ca-rotation`` (a step of a CA rotation) for Raft
   servers only; ``POST /renew`` (new certificates for the caller's own identity) for
   nodes.
4. The Raft servers' node credentials may do anything; any other node's, what the Node
   authorizer allows (nodeauth.py).
5. RBAC (rbac.py) for everyone else.

An authorizer answers ALLOW, DENY or NO_OPINION; all having none is a denial.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from nodeagent.api.authn import BOOTSTRAPPERS, User
from nodeagent.api.routes import Target
from nodeagent.clusterpki import ADMIN_GROUP, NODE_GROUP, SERVER_GROUP

__all__ = ["Attributes", "Authorizer", "Decision", "Union", "chain", "forbidden_message",
           "request_attributes"]


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True)
class Attributes:
    user: User
    verb: str
    resource_request: bool
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def request_attributes(user: User, method: str, path: str, target: Target | None, *,
                       watch: bool = False, websocket: bool = False) -> Attributes:
    """The attributes of a request; ``target`` is its parsed resource path, None for a
    non-resource path.  A WebSocket upgrade (exec, attach) is a create, as kube-apiserver
    has asked since 1.30."""
    if target is None:
        return Attributes(user, method.lower(), False, path=path)
    res = target.resource
    if websocket:
        verb = "create"
    elif method in ("GET", "HEAD"):
        verb = "watch" if watch else ("get" if target.name is not None else "list")
    elif method == "DELETE":
        verb = "delete" if target.name is not None else "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return Attributes(user, verb, True, api_group=res.group, api_version=res.version,
                      resource=res.plural, subresource=target.subresource or "",
                      namespace=target.namespace or "", name=target.name or "", path=path)


METRICS_PREFIX = ("apis", "metrics.k8s.io", "v1beta1")


def metrics_attributes(user: User, path: str) -> Attributes | None:
    """A metrics.k8s.io read as the resource request it is (``pods`` or ``nodes`` in
    metrics.k8s.io, RBAC's system:aggregated-metrics-reader), not a path any
    authenticated user may GET; None for its discovery paths."""
    parts = [p for p in path.split("/") if p]
    if tuple(parts[:3]) != METRICS_PREFIX or len(parts) == 3:
        return None
    rest, namespace = parts[3:], ""
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if not rest or rest[0] not in ("pods", "nodes") or len(rest) > 2:
        return None
    name = rest[1] if len(rest) == 2 else ""
    return Attributes(user, "get" if name else "list", True, api_group="metrics.k8s.io",
                      api_version="v1beta1", resource=rest[0], namespace=namespace, name=name,
                      path=path)


def forbidden_message(a: Attributes, reason: str = "") -> str:
    """kube-apiserver's wording, which kubectl and people read."""
    who = f'User "{a.user.name}"'
    if not a.resource_request:
        msg = f'forbidden: {who} cannot {a.verb} path "{a.path}"'
    else:
        resource = a.resource + (f"/{a.subresource}" if a.subresource else "")
        what = f'{resource} "{a.name}"' if a.name else resource
        where = f' in the namespace "{a.namespace}"' if a.namespace else \
            (" at the cluster scope" if a.verb != "create" or not a.name else "")
        msg = (f'{what} is forbidden: {who} cannot {a.verb} resource "{resource}" in API '
               f'group "{a.api_group}"{where}')
    return msg + (f": {reason}" if reason else "")


class Authorizer(Protocol):
    def authorize(self, a: Attributes) -> tuple[Decision, str]: ...


class SuperUser:
    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        return (Decision.ALLOW, "") if ADMIN_GROUP in a.user.groups else (Decision.NO_OPINION, "")


JOIN_PATH = "/join"


class Bootstrap:
    """A bootstrap token's holder may ask to join (POST /join) and nothing else."""

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        if BOOTSTRAPPERS not in a.user.groups:
            return Decision.NO_OPINION, ""
        if not a.resource_request and a.path == JOIN_PATH and a.verb == "post":
            return Decision.ALLOW, ""
        return Decision.DENY, "a bootstrap token may only join"


class AgentPaths:
    """The paths agents use between themselves."""

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        if a.resource_request:
            return Decision.NO_OPINION, ""
        if a.path.startswith("/replica/"):
            return (Decision.ALLOW, "") if NODE_GROUP in a.user.groups else \
                (Decision.DENY, "the replica stream is for the cluster's nodes")
        if a.path == "/raft/hello":
            return (Decision.ALLOW, "") if SERVER_GROUP in a.user.groups else \
                (Decision.DENY, "only Raft servers look for each other")
        if a.path == "/encryption-config":
            return (Decision.ALLOW, "") if SERVER_GROUP in a.user.groups else \
                (Decision.DENY, "only Raft servers hand each other the keys of Secrets")
        if a.path == "/ca-rotation":
            return (Decision.ALLOW, "") if SERVER_GROUP in a.user.groups else \
                (Decision.DENY, "only Raft servers hand each other the cluster's CA")
        if a.path == "/renew":
            return (Decision.ALLOW, "") if NODE_GROUP in a.user.groups else \
                (Decision.DENY, "only a node renews its own certificates")
        return Decision.NO_OPINION, ""


class Union:
    def __init__(self, *authorizers: Authorizer) -> None:
        self.authorizers = authorizers

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        reasons = []
        for authorizer in self.authorizers:
            decision, reason = authorizer.authorize(a)
            if decision is not Decision.NO_OPINION:
                return decision, reason
            if reason:
                reasons.append(reason)
        return Decision.DENY, "; ".join(reasons)


def chain(*more: Authorizer) -> Union:
    """The authorizers in their order: these, then ``more`` (the servers', the Node
    authorizer and RBAC, which read the store)."""
    return Union(SuperUser(), Bootstrap(), AgentPaths(), *more)
