"""The default RBAC policy, as kube-apiserver's bootstrap policy makes it, for the
resources served here: cluster-admin, the aggregated admin, edit and view, and what
every authenticated user may do (discover the API, ask what it may do).

The leader writes whichever is missing at start (``ensure_defaults``), labelled
``kubernetes.io/bootstrapping: rbac-defaults``; an operator's changes to them stay.
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.objects.kinds import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES

__all__ = ["CLUSTER_ROLES_DEFAULT", "ensure_defaults"]

RBAC = "rbac.authorization.k8s.io"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def _role(name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None,
          aggregate: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
                           "metadata": {"name": name, "labels": {**_BOOTSTRAP, **(labels or {})},
                                        "annotations": {"rbac.authorization.kubernetes.io/"
                                                        "autoupdate": "true"}},
                           "rules": rules}
    if aggregate:
        obj["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {f"{RBAC}/aggregate-to-{aggregate}": "true"}}]}
        obj["rules"] = []
    return obj


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _to(*levels: str) -> dict[str, str]:
    return {f"{RBAC}/aggregate-to-{level}": "true" for level in levels}


_VIEW = [
    _rule([""], ["pods", "pods/log", "pods/status", "configmaps", "endpoints",
                 "persistentvolumeclaims", "persistentvolumeclaims/status", "services",
                 "services/status", "serviceaccounts", "events", "replicationcontrollers",
                 "replicationcontrollers/scale", "replicationcontrollers/status"], READ),
    _rule([""], ["namespaces", "namespaces/status"], READ),
    _rule(["apps"], ["deployments", "deployments/scale", "deployments/status", "replicasets",
                     "replicasets/scale", "replicasets/status"], READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status"], READ),
    _rule(["events.k8s.io"], ["events"], READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
]
_EDIT = [
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy",
                 "pods/eviction"], ["create", "delete", "deletecollection", "patch", "update"]),
    _rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy",
                 "services/proxy"], ["get"]),
    _rule([""], ["configmaps", "endpoints", "persistentvolumeclaims", "replicationcontrollers",
                 "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                 "services/proxy"], WRITE),
    _rule([""], ["secrets"], READ),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(["apps"], ["deployments", "deployments/scale", "deployments/rollback", "replicasets",
                     "replicasets/scale"], WRITE),
    _rule(["networking.k8s.io"], ["ingresses"], WRITE),
    _rule(["discovery.k8s.io"], ["endpointslices"], WRITE),
]
_ADMIN = [
    _rule([RBAC], ["roles", "rolebindings"], READ + WRITE),
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
]

CLUSTER_ROLES_DEFAULT: list[dict[str, Any]] = [
    _role("cluster-admin", [_rule(["*"], ["*"], ["*"]),
                            {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
    _role("admin", [], _to(), aggregate="admin"),
    _role("edit", [], _to("admin"), aggregate="edit"),
    _role("view", [], _to("admin", "edit"), aggregate="view"),
    _role("system:aggregate-to-admin", _ADMIN, _to("admin")),
    _role("system:aggregate-to-edit", _EDIT, _to("admin", "edit")),
    _role("system:aggregate-to-view", _VIEW, _to("admin", "edit", "view")),
    # metrics-server's: what kubectl top reads, for whoever may view the cluster's pods.
    _role("system:aggregated-metrics-reader",
          [_rule(["metrics.k8s.io"], ["pods", "nodes"], READ)], _to("admin", "edit", "view")),
    _role("system:basic-user", [_rule(["authorization.k8s.io"],
                                      ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                                      ["create"]),
                                _rule(["authentication.k8s.io"], ["selfsubjectreviews"],
                                      ["create"])]),
    _role("system:discovery", [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*",
                                                    "/healthz", "/livez", "/readyz",
                                                    "/openapi", "/openapi/*", "/version",
                                                    "/version/"], "verbs": ["get"]}]),
    _role("system:public-info-viewer", [{"nonResourceURLs": ["/healthz", "/livez", "/readyz",
                                                             "/version", "/version/"],
                                         "verbs": ["get"]}]),
]


def _binding(name: str, role: str, *groups: str) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(_BOOTSTRAP),
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in groups]}


CLUSTER_ROLE_BINDINGS_DEFAULT = [
    _binding("cluster-admin", "cluster-admin", "system:masters"),
    _binding("system:basic-user", "system:basic-user", "system:authenticated"),
    _binding("system:discovery", "system:discovery", "system:authenticated"),
    _binding("system:public-info-viewer", "system:public-info-viewer", "system:authenticated",
             "system:unauthenticated"),
]


async def ensure_defaults(objects: Any) -> int:
    """Create the default roles and bindings that are missing; how many were made."""
    made = 0
    for res, objs in ((CLUSTER_ROLES, CLUSTER_ROLES_DEFAULT),
                      (CLUSTER_ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS_DEFAULT)):
        for obj in objs:
            try:
                await objects.create(res, None, obj)
                made += 1
            except ApiError as exc:
                if exc.code != 409:
                    raise
    return made
