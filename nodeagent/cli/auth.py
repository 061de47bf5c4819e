"""``nodectl auth can-i`` and ``nodectl auth whoami``: the questions kubectl asks the
server (a SelfSubjectAccessReview, a SelfSubjectRulesReview, a SelfSubjectReview) and
its way of printing the answers."""

from __future__ import annotations

from typing import Any

from nodeagent.objects.kinds import lookup

__all__ = ["access_review", "rules_table", "whoami_table"]


def access_review(verb: str, what: str, namespace: str, subresource: str = ""
                  ) -> tuple[dict[str, Any], str]:
    """The SelfSubjectAccessReview for ``can-i VERB WHAT`` (TYPE, TYPE/NAME or a /path),
    and a warning for a type the client does not know (kubectl asks anyway)."""
    review: dict[str, Any] = {"apiVersion": "authorization.k8s.io/v1",
                              "kind": "SelfSubjectAccessReview", "spec": {}}
    if what.startswith("/"):
        review["spec"]["nonResourceAttributes"] = {"verb": verb, "path": what}
        return review, ""
    kind, _, name = what.partition("/")
    res = lookup(kind)
    warning = ""
    if res is None:
        plural, _, group = kind.partition(".")
        warning = f"Warning: the server doesn't have a resource type '{kind}'"
    else:
        plural, group = res.plural, res.group
        if not res.namespaced:
            namespace = ""
    attrs = {"namespace": namespace, "verb": verb, "group": group, "resource": plural}
    if subresource:
        attrs["subresource"] = subresource
    if name:
        attrs["name"] = name
    review["spec"]["resourceAttributes"] = attrs
    return review, warning


def rules_table(status: dict[str, Any]) -> list[list[str]]:
    """``can-i --list``: kubectl's columns."""
    rows = [["Resources", "Non-Resource URLs", "Resource Names", "Verbs"]]
    for rule in status.get("resourceRules") or []:
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                name = f"{resource}.{group}" if group else resource
                rows.append([name, "[]", _list(rule.get("resourceNames")),
                             _list(rule.get("verbs"))])
    for rule in status.get("nonResourceRules") or []:
        rows.append(["", _list(rule.get("nonResourceURLs")), "[]", _list(rule.get("verbs"))])
    return rows


def _list(values: Any) -> str:
    return "[" + " ".join(values or []) + "]"


def whoami_table(status: dict[str, Any]) -> list[list[str]]:
    info = status.get("userInfo") or {}
    rows = [["ATTRIBUTE", "VALUE"], ["Username", info.get("username", "")]]
    if info.get("uid"):
        rows.append(["UID", info["uid"]])
    rows.append(["Groups", _list(info.get("groups"))])
    return rows
