"""Role, ClusterRole, RoleBinding and ClusterRoleBinding (rbac.authorization.k8s.io/v1).

The shapes and checks are Kubernetes': a rule names verbs and either API groups and
resources (with resourceNames, optionally) or nonResourceURLs; a binding's roleRef names
a Role or ClusterRole and cannot change once made; subjects are users, groups and
ServiceAccounts.  What they allow is decided in api/rbac.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nodeagent.objects.meta import LabelSelector, Model, ObjectMeta
from nodeagent.objects.validation import FieldError, Path

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_VERSION = f"{RBAC_GROUP}/v1"


class PolicyRule(Model):
    verbs: list[str]
    api_groups: list[str] | None = None
    resources: list[str] | None = None
    resource_names: list[str] | None = None
    non_resource_urls: list[str] | None = Field(default=None, alias="nonResourceURLs")


class AggregationRule(Model):
    cluster_role_selectors: list[LabelSelector] | None = None


class RoleRef(Model):
    api_group: str
    kind: str
    name: str


class Subject(Model):
    kind: str
    name: str
    api_group: str | None = None
    namespace: str | None = None


def _rules_errors(rules: list[PolicyRule] | None, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, rule in enumerate(rules or []):
        p = Path("rules").index(i)
        if not rule.verbs:
            errs.append(p.child("verbs").required("verbs must contain at least one value"))
        if rule.non_resource_urls:
            if namespaced:
                errs.append(p.child("nonResourceURLs").invalid(
                    rule.non_resource_urls, "namespaced rules cannot apply to non-resource URLs"))
            if rule.api_groups or rule.resources:
                errs.append(p.child("nonResourceURLs").invalid(
                    rule.non_resource_urls, "rules cannot apply to both regular resources and "
                    "non-resource URLs"))
            continue
        if not rule.resources:
            errs.append(p.child("resources").required(
                "resource rules must supply at least one resource"))
        if rule.api_groups is None or not rule.api_groups:
            errs.append(p.child("apiGroups").required(
                "resource rules must supply at least one api group"))
    return errs


def _subjects_errors(subjects: list[Subject] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, s in enumerate(subjects or []):
        p = Path("subjects").index(i)
        if not s.name:
            errs.append(p.child("name").required())
        if s.kind == "ServiceAccount":
            if s.api_group:
                errs.append(p.child("apiGroup").unsupported(s.api_group, [""]))
            if not s.namespace:
                errs.append(p.child("namespace").required())
        elif s.kind in ("User", "Group"):
            if s.api_group != RBAC_GROUP:
                errs.append(p.child("apiGroup").unsupported(s.api_group, [RBAC_GROUP]))
        else:
            errs.append(p.child("kind").unsupported(s.kind, ["ServiceAccount", "User", "Group"]))
    return errs


def _role_ref_errors(ref: RoleRef, kinds: list[str]) -> list[FieldError]:
    p = Path("roleRef")
    errs = []
    if ref.api_group != RBAC_GROUP:
        errs.append(p.child("apiGroup").unsupported(ref.api_group, [RBAC_GROUP]))
    if ref.kind not in kinds:
        errs.append(p.child("kind").unsupported(ref.kind, kinds))
    if not ref.name:
        errs.append(p.child("name").required())
    return errs


def _role_ref_kept(old: RoleRef, new: RoleRef) -> list[FieldError]:
    """A binding's roleRef never changes (Kubernetes: delete and create it again)."""
    if old != new:
        return [Path("roleRef").invalid(new.dump(), "cannot change roleRef")]
    return []


class Role(Model):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = "rbac.authorization.k8s.io/v1"
    kind: Literal["Role"] = "Role"
    metadata: ObjectMeta
    rules: list[PolicyRule] | None = None

    def check(self) -> list[FieldError]:
        return _rules_errors(self.rules, namespaced=True)


class ClusterRole(Model):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = "rbac.authorization.k8s.io/v1"
    kind: Literal["ClusterRole"] = "ClusterRole"
    metadata: ObjectMeta
    rules: list[PolicyRule] | None = None
    aggregation_rule: AggregationRule | None = None

    def check(self) -> list[FieldError]:
        return _rules_errors(self.rules, namespaced=False)


class RoleBinding(Model):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = "rbac.authorization.k8s.io/v1"
    kind: Literal["RoleBinding"] = "RoleBinding"
    metadata: ObjectMeta
    subjects: list[Subject] | None = None
    role_ref: RoleRef

    def check(self) -> list[FieldError]:
        return _subjects_errors(self.subjects) + _role_ref_errors(self.role_ref,
                                                                  ["Role", "ClusterRole"])

    def check_update(self, old: RoleBinding) -> list[FieldError]:
        return _role_ref_kept(old.role_ref, self.role_ref)


class ClusterRoleBinding(Model):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = "rbac.authorization.k8s.io/v1"
    kind: Literal["ClusterRoleBinding"] = "ClusterRoleBinding"
    metadata: ObjectMeta
    subjects: list[Subject] | None = None
    role_ref: RoleRef

    def check(self) -> list[FieldError]:
        return _subjects_errors(self.subjects) + _role_ref_errors(self.role_ref, ["ClusterRole"])

    def check_update(self, old: ClusterRoleBinding) -> list[FieldError]:
        return _role_ref_kept(old.role_ref, self.role_ref)
