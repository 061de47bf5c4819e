"""RBAC as kube-apiserver's RBAC authorizer decides: rules granted by Roles and
ClusterRoles through RoleBindings and ClusterRoleBindings, never a denial.

A request is allowed when some rule bound to its user -- by name, by one of its groups,
or as a ServiceAccount (``system:serviceaccount:<ns>:<name>``) -- matches it:

- a ClusterRoleBinding's ClusterRole in every namespace and at the cluster scope;
- a RoleBinding's Role or ClusterRole only in the binding's namespace.

A rule matches (rbac/v1 helpers, RuleAllows) when its verbs hold the verb or ``*``; for
a resource request its apiGroups hold the group or ``*``, its resources hold the
resource, ``resource/subresource``, ``*`` or ``*/subresource``, and its resourceNames,
if any, hold the object's name; for any other path its nonResourceURLs hold the path,
``*``, or a prefix ending in ``*``.  A ClusterRole with an aggregationRule has the rules
of every ClusterRole its selectors pick (Kubernetes' aggregation controller writes them
in; here they are gathered as the policy is read, so they are never stale).

The policy is read from the store and kept until the store's revision moves on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nodeagent.api.authn import User
from nodeagent.api.authz import Attributes, Decision
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES
from nodeagent.objects.selectors import SelectorError, selector_from_dict

__all__ = ["Policy", "Rbac", "rule_allows"]

Rule = dict[str, Any]


def _has(values: Iterable[str] | None, wanted: str) -> bool:
    values = list(values or ())
    return "*" in values or wanted in values


def rule_allows(a: Attributes, rule: Rule) -> bool:
    if not _has(rule.get("verbs"), a.verb):
        return False
    if not a.resource_request:
        for url in rule.get("nonResourceURLs") or ():
            if url == "*" or url == a.path or (url.endswith("*") and a.path.startswith(url[:-1])):
                return True
        return False
    if rule.get("nonResourceURLs") and not rule.get("resources"):
        return False
    if not _has(rule.get("apiGroups"), a.api_group):
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resources = rule.get("resources") or ()
    if not any(r == "*" or r == combined or (a.subresource and r == f"*/{a.subresource}")
               for r in resources):
        return False
    names = rule.get("resourceNames") or ()
    return not names or (bool(a.name) and a.name in names)


def _applies(subject: dict[str, Any], user: User, binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.name == f"system:serviceaccount:{ns}:{name}"
    return False


@dataclass(frozen=True)
class Policy:
    """The RBAC objects as of one revision, decoded once."""
    roles: dict[tuple[str, str], list[Rule]]  # (namespace, name) -> rules
    cluster_roles: dict[str, list[Rule]]
    bindings: list[tuple[str, str, str, list[dict[str, Any]]]]  # ns, ref kind, ref name, subjects
    cluster_bindings: list[tuple[str, list[dict[str, Any]]]]  # ClusterRole name, subjects

    @classmethod
    def read(cls, objects: Objects) -> Policy:
        cluster_objs = objects.list(CLUSTER_ROLES, None)["items"]
        plain = {o["metadata"]["name"]: list(o.get("rules") or []) for o in cluster_objs}
        cluster_roles = dict(plain)
        for o in cluster_objs:  # aggregated: the rules of the ClusterRoles selected
            selectors = (o.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
            if not selectors:
                continue
            rules: list[Rule] = []
            for sel in selectors:
                try:
                    selector = selector_from_dict(sel)
                except (SelectorError, KeyError, TypeError):
                    continue
                for other in cluster_objs:
                    if other is not o and selector.matches(other["metadata"].get("labels") or {}):
                        rules.extend(plain.get(other["metadata"]["name"], []))
            cluster_roles[o["metadata"]["name"]] = rules
        roles = {(o["metadata"]["namespace"], o["metadata"]["name"]): list(o.get("rules") or [])
                 for o in objects.list(ROLES, None)["items"]}
        bindings = [(o["metadata"]["namespace"], o["roleRef"]["kind"], o["roleRef"]["name"],
                     list(o.get("subjects") or []))
                    for o in objects.list(ROLE_BINDINGS, None)["items"]]
        cluster_bindings = [(o["roleRef"]["name"], list(o.get("subjects") or []))
                            for o in objects.list(CLUSTER_ROLE_BINDINGS, None)["items"]]
        return cls(roles, cluster_roles, bindings, cluster_bindings)

    def rules_for(self, user: User, namespace: str) -> Iterable[Rule]:
        for role, subjects in self.cluster_bindings:
            if any(_applies(s, user, "") for s in subjects):
                yield from self.cluster_roles.get(role, ())
        if not namespace:
            return
        for ns, kind, name, subjects in self.bindings:
            if ns != namespace or not any(_applies(s, user, ns) for s in subjects):
                continue
            yield from (self.roles.get((ns, name), ()) if kind == "Role"
                        else self.cluster_roles.get(name, ()))


class Rbac:
    """The authorizer: ``objects`` is the store the policy is read from."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self._policy: Policy | None = None
        self._revision = -1

    def policy(self) -> Policy:
        revision = self.objects.store.revision
        if self._policy is None or revision != self._revision:
            self._policy, self._revision = Policy.read(self.objects), revision
        return self._policy

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        for rule in self.policy().rules_for(a.user, a.namespace):
            if rule_allows(a, rule):
                return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""
