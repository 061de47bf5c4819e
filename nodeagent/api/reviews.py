"""The questions a client asks about authorization, answered and never stored, as
kube-apiserver's authorization.k8s.io and authentication.k8s.io do:

    POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews     may I ...?
    POST /apis/authorization.k8s.io/v1/subjectaccessreviews         may they ...?
    POST /apis/authorization.k8s.io/v1/namespaces/NS/localsubjectaccessreviews
    POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews      what may I do in NS?
    POST /apis/authentication.k8s.io/v1/selfsubjectreviews          who am I?

``kubectl auth can-i`` (and ``--list``) and ``kubectl auth whoami`` ask these.
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.authn import User
from nodeagent.api.authz import Attributes, Authorizer, Decision, SuperUser
from nodeagent.api.status import ApiError

__all__ = ["REVIEWS", "Review", "answer", "match"]

AUTHZ = "authorization.k8s.io"
AUTHN = "authentication.k8s.io"


class Review:
    def __init__(self, group: str, plural: str, kind: str, namespaced: bool = False) -> None:
        self.group, self.plural, self.kind, self.namespaced = group, plural, kind, namespaced


REVIEWS = (Review(AUTHZ, "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
           Review(AUTHZ, "subjectaccessreviews", "SubjectAccessReview"),
           Review(AUTHZ, "localsubjectaccessreviews", "LocalSubjectAccessReview", True),
           Review(AUTHZ, "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
           Review(AUTHN, "selfsubjectreviews", "SelfSubjectReview"))


def match(path: str) -> tuple[Review, str] | None:
    """The review a path asks for, with its namespace ("" for the cluster-scoped ones)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 4 or parts[0] != "apis" or parts[2] != "v1":
        return None
    namespace = ""
    rest = parts[3:]
    if len(rest) == 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) != 1:
        return None
    for review in REVIEWS:
        if review.group == parts[1] and review.plural == rest[0] and \
                review.namespaced == bool(namespace):
            return review, namespace
    return None


def _str(spec: dict[str, Any], key: str, where: str) -> str:
    value = spec.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError.bad_request(f"{where}.{key}: expected a string")
    return value


def _strings(spec: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = spec.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError.bad_request(f"{where}.{key}: expected a list of strings")
    return tuple(value)


def _attributes(user: User, spec: dict[str, Any], namespace: str) -> Attributes:
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (res is None) == (non is None):
        raise ApiError.bad_request("spec: exactly one of resourceAttributes and "
                                   "nonResourceAttributes must be given")
    if non is not None:
        if not isinstance(non, dict):
            raise ApiError.bad_request("spec.nonResourceAttributes: expected an object")
        where = "spec.nonResourceAttributes"
        return Attributes(user, _str(non, "verb", where), False, path=_str(non, "path", where))
    if not isinstance(res, dict):
        raise ApiError.bad_request("spec.resourceAttributes: expected an object")
    where = "spec.resourceAttributes"
    ns = _str(res, "namespace", where)
    if namespace and ns and ns != namespace:
        raise ApiError.bad_request(f"{where}.namespace: must be {namespace!r} (the namespace "
                                   "of the request) or empty")
    return Attributes(user, _str(res, "verb", where), True, api_group=_str(res, "group", where),
                      api_version=_str(res, "version", where),
                      resource=_str(res, "resource", where),
                      subresource=_str(res, "subresource", where), namespace=ns or namespace,
                      name=_str(res, "name", where))


def answer(review: Review, namespace: str, body: Any, caller: User, authorizer: Authorizer,
           rules: Any = None) -> dict[str, Any]:
    """The review's answer: the body as sent with its ``status`` filled in.  ``rules``:
    (user, namespace) -> the RBAC rules that apply (for rules reviews)."""
    if not isinstance(body, dict) or not isinstance(body.get("spec", {}), dict):
        raise ApiError.bad_request("body: expected an object with a spec")
    spec: dict[str, Any] = body.get("spec") or {}
    out = {"apiVersion": f"{review.group}/v1", "kind": review.kind,
           "metadata": {"creationTimestamp": None}, "spec": spec}
    if review.kind == "SelfSubjectReview":
        out["status"] = {"userInfo": caller.info()}
        return out
    if review.kind == "SelfSubjectRulesReview":
        ns = _str(spec, "namespace", "spec")
        out["status"] = _rules(caller, ns, authorizer, rules)
        return out
    user = caller
    if review.kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
        name = _str(spec, "user", "spec")
        groups = _strings(spec, "groups", "spec")
        if not name and not groups:
            raise ApiError.bad_request("spec.user or spec.groups: at least one is required")
        user = User(name, groups, _str(spec, "uid", "spec"))
    attrs = _attributes(user, spec, namespace)
    decision, reason = authorizer.authorize(attrs)
    status: dict[str, Any] = {"allowed": decision is Decision.ALLOW}
    if decision is not Decision.ALLOW and reason:
        status["reason"] = reason
    out["status"] = status
    return out


def _rules(user: User, namespace: str, authorizer: Authorizer, rules: Any) -> dict[str, Any]:
    if SuperUser().authorize(Attributes(user, "*", True))[0] is Decision.ALLOW:
        return {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False}
    resource_rules, non_resource_rules = [], []
    for rule in (rules(user, namespace) if rules is not None else []):
        if rule.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": rule.get("verbs") or [],
                                       "nonResourceURLs": rule["nonResourceURLs"]})
        else:
            row = {"verbs": rule.get("verbs") or [], "apiGroups": rule.get("apiGroups") or [],
                   "resources": rule.get("resources") or []}
            if rule.get("resourceNames"):
                row["resourceNames"] = rule["resourceNames"]
            resource_rules.append(row)
    # Nodes and bootstrap tokens are decided by authorizers that list no rules.
    return {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
            "incomplete": rules is None or "system:nodes" in user.groups}
