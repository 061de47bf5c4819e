"""The table of resources the API serves: one row per kind.

Everything that needs to know about a kind (URL paths, store keys, discovery,
short names in nodectl, which model decodes it) reads this table, so adding a
kind is one row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nodeagent.objects import eventsv1
from nodeagent.objects.apps import Deployment, ReplicaSet
from nodeagent.objects.cluster import ConfigMap, Event, Namespace, Node, Secret, ServiceAccount
from nodeagent.objects.discovery import EndpointSlice
from nodeagent.objects.meta import Model
from nodeagent.objects.networking import Ingress
from nodeagent.objects.pod import Pod
from nodeagent.objects.rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding
from nodeagent.objects.replication import ReplicationController
from nodeagent.objects.service import Endpoints, Service
from nodeagent.objects.storage import PersistentVolume, PersistentVolumeClaim
from nodeagent.objects.validation import (
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    path_segment_errors,
)

__all__ = ["RESOURCES", "SERVED", "VIEWS", "Resource", "by_kind", "by_plural", "lookup"]


@dataclass(frozen=True)
class Resource:
    kind: str
    plural: str
    singular: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    model: type[Model]
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    # Kinds whose objects wait for the pod manager before they go (pods) get a grace period.
    graceful_delete: bool = False
    name_check: Callable[[str], list[str]] = dns1123_subdomain_errors
    categories: tuple[str, ...] = ()
    other_versions: tuple[str, ...] = field(default=())
    # A kind served over another's objects (events.k8s.io Events are core Events): the
    # kind they are stored as, and the conversions between the two shapes.
    stored_as: Resource | None = None
    to_stored: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    from_stored: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def key(self, namespace: str | None, name: str) -> str:
        return f"{self.prefix(namespace)}{name}"

    def prefix(self, namespace: str | None) -> str:
        """Store key prefix for all objects (namespace None) or one namespace's."""
        if not self.namespaced or namespace is None:
            return f"/registry/{self.plural}/"
        return f"/registry/{self.plural}/{namespace}/"

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


# Every resource served, each a constant: code names the one it means, and the type
# checker knows it is there.
NAMESPACES = Resource("Namespace", "namespaces", "namespace", "", "v1", False, Namespace, ("ns",),
                      name_check=dns1123_label_errors)
NODES = Resource("Node", "nodes", "node", "", "v1", False, Node, ("no",))
PODS = Resource("Pod", "pods", "pod", "", "v1", True, Pod, ("po",), graceful_delete=True,
                categories=("all",))
SERVICES = Resource("Service", "services", "service", "", "v1", True, Service, ("svc",),
                    name_check=dns1035_label_errors, categories=("all",))
ENDPOINTS = Resource("Endpoints", "endpoints", "endpoints", "", "v1", True, Endpoints, ("ep",),
                     has_status=False)
CONFIGMAPS = Resource("ConfigMap", "configmaps", "configmap", "", "v1", True, ConfigMap, ("cm",),
                      has_status=False)
SECRETS = Resource("Secret", "secrets", "secret", "", "v1", True, Secret, (), has_status=False)
SERVICE_ACCOUNTS = Resource("ServiceAccount", "serviceaccounts", "serviceaccount", "", "v1", True,
                            ServiceAccount, ("sa",), has_status=False)
EVENTS = Resource("Event", "events", "event", "", "v1", True, Event, ("ev",), has_status=False)
PERSISTENT_VOLUMES = Resource("PersistentVolume", "persistentvolumes", "persistentvolume", "",
                              "v1", False, PersistentVolume, ("pv",))
PERSISTENT_VOLUME_CLAIMS = Resource("PersistentVolumeClaim", "persistentvolumeclaims",
                                    "persistentvolumeclaim", "", "v1", True, PersistentVolumeClaim,
                                    ("pvc",))
REPLICASETS = Resource("ReplicaSet", "replicasets", "replicaset", "apps", "v1", True, ReplicaSet,
                       ("rs",), categories=("all",))
REPLICATION_CONTROLLERS = Resource("ReplicationController", "replicationcontrollers",
                                   "replicationcontroller", "", "v1", True,
                                   ReplicationController, ("rc",), categories=("all",))
DEPLOYMENTS = Resource("Deployment", "deployments", "deployment", "apps", "v1", True, Deployment,
                       ("deploy",), categories=("all",))
INGRESSES = Resource("Ingress", "ingresses", "ingress", "networking.k8s.io", "v1", True, Ingress,
                     ("ing",), other_versions=("extensions/v1beta1", "networking.k8s.io/v1beta1"))

ENDPOINT_SLICES = Resource("EndpointSlice", "endpointslices", "endpointslice", "discovery.k8s.io",
                           "v1", True, EndpointSlice, (), has_status=False)

_RBAC = "rbac.authorization.k8s.io"
ROLES = Resource("Role", "roles", "role", _RBAC, "v1", True, Role, has_status=False,
                 name_check=path_segment_errors)
CLUSTER_ROLES = Resource("ClusterRole", "clusterroles", "clusterrole", _RBAC, "v1", False,
                         ClusterRole, has_status=False, name_check=path_segment_errors)
ROLE_BINDINGS = Resource("RoleBinding", "rolebindings", "rolebinding", _RBAC, "v1", True,
                         RoleBinding, has_status=False, name_check=path_segment_errors)
CLUSTER_ROLE_BINDINGS = Resource("ClusterRoleBinding", "clusterrolebindings",
                                 "clusterrolebinding", _RBAC, "v1", False, ClusterRoleBinding,
                                 has_status=False, name_check=path_segment_errors)

EVENTS_V1 = Resource("Event", "events", "event", "events.k8s.io", "v1", True, eventsv1.Event,
                     ("ev",), has_status=False, stored_as=EVENTS, to_stored=eventsv1.to_core,
                     from_stored=eventsv1.from_core)

# The kinds stored, each under its own prefix.
RESOURCES: tuple[Resource, ...] = (
    NAMESPACES, NODES, PODS, SERVICES, ENDPOINTS, CONFIGMAPS, SECRETS, SERVICE_ACCOUNTS, EVENTS,
    PERSISTENT_VOLUMES, PERSISTENT_VOLUME_CLAIMS, REPLICASETS, REPLICATION_CONTROLLERS,
    DEPLOYMENTS, INGRESSES, ENDPOINT_SLICES, ROLES, CLUSTER_ROLES, ROLE_BINDINGS,
    CLUSTER_ROLE_BINDINGS)

# Kinds served over another's objects (``stored_as``).
VIEWS: tuple[Resource, ...] = (EVENTS_V1,)
# Every kind the API serves: what discovery, OpenAPI and the router list.
SERVED = RESOURCES + VIEWS

_BY_GROUP_PLURAL = {(r.group, r.version, r.plural): r for r in SERVED}
_BY_KIND = {r.kind: r for r in RESOURCES}
_BY_NAME: dict[str, Resource] = {}
for _r in RESOURCES:
    for _n in (_r.plural, _r.singular, _r.kind.lower(), *_r.short_names):
        _BY_NAME[_n] = _r
_BY_NAME.update({f"{_r.plural}.{_r.group}": _r for _r in SERVED if _r.group})
_BY_NAME.update({f"{_r.singular}.{_r.group}": _r for _r in SERVED if _r.group})


def by_plural(group: str, version: str, plural: str) -> Resource | None:
    return _BY_GROUP_PLURAL.get((group, version, plural))


def by_kind(kind: str) -> Resource | None:
    return _BY_KIND.get(kind)


def lookup(name: str) -> Resource | None:
    """What nodectl accepts: plural, singular, kind, short name or ``plural.group``."""
    return _BY_NAME.get(name.lower())


def groups() -> dict[str, list[Resource]]:
    """API groups (excluding core) and their resources, for discovery."""
    out: dict[str, list[Resource]] = {}
    for r in SERVED:
        if r.group:
            out.setdefault(r.group, []).append(r)
    return out
