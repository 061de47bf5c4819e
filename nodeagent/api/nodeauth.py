"""What a node's own credential may do: Kubernetes' Node authorizer and NodeRestriction.

A node is ``system:node:<name>`` in ``system:nodes``.  The Raft servers' node
certificates are in ``nodeagent:servers`` too: they hold the CA's key and the whole
store, and run the coordinator, so they are not narrowed (``Servers``).  Any other node:

- reads, through the API, the Secrets, ConfigMaps and PersistentVolumeClaims that a pod
  bound to it names (volumes, projected sources, env, envFrom, imagePullSecrets) and no
  others ("no relationship found between node 'a' and this object", as the Node
  authorizer says); nodes, pods, services, endpoints(lices), events and namespaces it may read;
- asks for the tokens of the ServiceAccounts its pods run as, bound to those pods
  (serviceaccounts.py checks the binding);
- writes its own Node (and its status), the status of pods bound to it, and deletes
  those pods once they are done; events it may create.  Anything else is refused.

The same holds for the raw transactions a node's store copy sends (``/replica/txn``,
``check_txn``): a Node other than its own, a pod bound elsewhere, a pod's spec, any other
kind -- refused, naming the key.  The copy it is fed holds no Secrets (api/replica.py):
its pod manager asks for the ones its pods name, one by one, through the API.
"""

from __future__ import annotations

import re
from typing import Any

from nodeagent.api.authn import User
from nodeagent.api.authz import Attributes, Decision
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import NODE_GROUP, SERVER_GROUP
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import EVENTS, NODES, PODS
from nodeagent.objects.podutil import pod_references
from nodeagent.store.mvcc import OpKind, Txn

__all__ = ["NodeAuthorizer", "Servers", "check_txn", "node_name", "pod_references"]

_NODE_USER = re.compile(r"^system:node:(.+)$")
READ = ("get", "list", "watch")
DISCOVERY = ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz")


def node_name(user: User) -> str | None:
    """The node a credential is (None: not a node's)."""
    m = _NODE_USER.match(user.name)
    return m.group(1) if m and NODE_GROUP in user.groups else None


class Servers:
    """The Raft servers' credentials: the cluster's own control plane."""

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        if SERVER_GROUP in a.user.groups and node_name(a.user) is not None:
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


def _bound(pod: dict[str, Any] | None, node: str) -> bool:
    return pod is not None and (pod.get("spec") or {}).get("nodeName") == node


class NodeAuthorizer:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        node = node_name(a.user)
        if node is None:
            return Decision.NO_OPINION, ""
        if not a.resource_request:
            ok = a.verb == "get" and (a.path in DISCOVERY or a.path.startswith(("/api/", "/apis/")))
            return (Decision.ALLOW, "") if ok else (Decision.DENY, "a node reads only discovery")
        if a.api_group == "" and a.resource in ("secrets", "configmaps",
                                                  "persistentvolumeclaims"):
            if a.verb == "get" and a.name and not a.subresource and \
                    self._referenced(node, a.namespace, a.resource, a.name):
                return Decision.ALLOW, ""
            return Decision.DENY, f"no relationship found between node '{node}' and this object"
        if a.api_group != "":
            return Decision.DENY, "a node may not touch this kind"
        if a.resource == "serviceaccounts" and a.subresource == "token" and a.verb == "create":
            # Bound to which pod, the request's body says: serviceaccounts.token_request
            # checks that pod is this node's.
            if any((p.get("spec") or {}).get("serviceAccountName", "default") == a.name
                   for p in self._pods(node, a.namespace)):
                return Decision.ALLOW, ""
            return Decision.DENY, f"no relationship found between node '{node}' and this object"
        if a.verb in READ and a.resource in ("nodes", "pods", "services", "endpoints", "events",
                                              "namespaces", "endpointslices") and \
                a.subresource in ("", "status"):
            return Decision.ALLOW, ""
        if a.resource == "nodes" and a.verb in ("create", "update", "patch") and \
                a.subresource in ("", "status"):
            if a.name == node:  # a create names no object: its body is checked nowhere here
                return Decision.ALLOW, ""
            return Decision.DENY, f"node '{node}' may only change its own Node"
        if a.resource == "pods" and a.name and (
                (a.verb in ("update", "patch") and a.subresource == "status") or
                (a.verb == "delete" and not a.subresource)):
            if _bound(self._get(PODS, a.namespace, a.name), node):
                return Decision.ALLOW, ""
            return Decision.DENY, f"node '{node}' may only change pods bound to it"
        if a.resource == "events" and a.verb in ("create", "update", "patch"):
            return Decision.ALLOW, ""
        return Decision.DENY, f"node '{node}' may not {a.verb} {a.resource}"

    def _get(self, res: Any, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.objects.get(res, namespace or None, name)
        except ApiError:
            return None

    def _pods(self, node: str, namespace: str) -> list[dict[str, Any]]:
        return list(self.objects.list(PODS, namespace or None,
                                      field_selector=f"spec.nodeName={node}")["items"])

    def _referenced(self, node: str, namespace: str, resource: str, name: str) -> bool:
        return any((resource, name) in pod_references(pod) for pod in self._pods(node, namespace))


def check_txn(objects: Objects, node: str, command: Txn) -> None:
    """NodeRestriction for a node's raw transaction; ApiError 403 naming the key."""
    from nodeagent.api.replica import resource_of  # replica.py checks the shape first
    for op in command.success + command.failure:
        res, namespace, name = resource_of(op.key)
        refusal = f"node '{node}' may not write {op.key}"
        if res is NODES:
            if op.kind is OpKind.PUT and name == node:
                continue
            raise ApiError(403, "Forbidden", f"{refusal}: only its own Node")
        if res is EVENTS:
            if op.kind is OpKind.PUT:
                continue
            raise ApiError(403, "Forbidden", f"{refusal}: events are only created")
        if res is PODS:
            try:
                old: dict[str, Any] | None = objects.get(PODS, namespace, name)
            except ApiError:
                old = None
            if not _bound(old, node):
                raise ApiError(403, "Forbidden", f"{refusal}: the pod is not bound to it")
            if op.kind is OpKind.DELETE:
                continue
            from nodeagent.api.objects import load_stored
            new = load_stored(op.value, op.key)
            assert old is not None
            if new is None or not _bound(new, node) or new.get("spec") != old.get("spec") or \
                    any((new.get("metadata") or {}).get(k) != (old.get("metadata") or {}).get(k)
                        for k in ("labels", "ownerReferences", "annotations")):
                raise ApiError(403, "Forbidden", f"{refusal}: a node changes only its pods' "
                               "status")
            continue
        raise ApiError(403, "Forbidden", f"{refusal}: a node writes only its own Node, its "
                       "pods' status and events (send other writes to a server's API)")
