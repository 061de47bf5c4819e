"""Label selectors: one implementation for the API, the controllers and nodectl.

Two spellings reach us: the structured form in manifests (``matchLabels`` and
``matchExpressions`` with In, NotIn, Exists, DoesNotExist) and the string form
in query parameters and on the command line
(``app=kubia,tier in (web,api),!canary``).  Both parse into a
:class:`Selector`, a conjunction of :class:`Requirement`, whose ``matches``
the rest of the code calls.  Semantics follow
k8s.io/apimachinery/pkg/labels: ``!=`` and ``notin`` match objects that lack
the key; an empty selector matches everything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Requirement", "Selector", "SelectorError", "parse_selector", "selector_from_dict"]


class SelectorError(ValueError):
    """A selector that cannot be parsed; the message names the offending part."""


OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # one of OPS
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.op == "In":
            return has and labels[self.key] in self.values
        if self.op == "NotIn":
            return not has or labels[self.key] not in self.values
        if self.op == "Exists":
            return has
        if self.op == "DoesNotExist":
            return not has
        if not has:
            return False
        try:  # Gt / Lt: node affinity compares integers
            left, right = int(labels[self.key]), int(self.values[0])
        except ValueError:
            return False
        return left > right if self.op == "Gt" else left < right

    def __str__(self) -> str:
        if self.op == "Exists":
            return self.key
        if self.op == "DoesNotExist":
            return "!" + self.key
        if self.op == "In" and len(self.values) == 1:
            return f"{self.key}={self.values[0]}"
        if self.op == "NotIn" and len(self.values) == 1:
            return f"{self.key}!={self.values[0]}"
        if self.op in ("Gt", "Lt"):
            return f"{self.key}{'>' if self.op == 'Gt' else '<'}{self.values[0]}"
        word = "in" if self.op == "In" else "notin"
        return f"{self.key} {word} ({','.join(self.values)})"


@dataclass(frozen=True, slots=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()
    # A nil selector (as opposed to an empty one) selects nothing.
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)|(?P<op>==|!=|=|!|>|<)"
    r"|(?P<word>[A-Za-z0-9_./-]+))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise SelectorError(f"unable to parse requirement: unexpected {text[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def parse_selector(text: str) -> Selector:
    """Parse the string form: ``a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3``.

    Raises :class:`SelectorError` naming the part that does not parse.
    """
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def expect(kind: str) -> str:
        nonlocal i
        if i >= len(toks) or toks[i][0] != kind:
            found = toks[i][1] if i < len(toks) else "end of string"
            raise SelectorError(f"unable to parse requirement: expected {kind}, found {found!r}")
        i += 1
        return toks[i - 1][1]

    while i < len(toks):
        if toks[i] == ("op", "!"):
            i += 1
            key = expect("word")
            reqs.append(_req(key, "DoesNotExist", ()))
        else:
            key = expect("word")
            if i >= len(toks) or toks[i][0] == "comma":
                reqs.append(_req(key, "Exists", ()))
            elif toks[i][0] == "op":
                op = toks[i][1]
                i += 1
                if op == "!":
                    raise SelectorError(f"unable to parse requirement: unexpected '!' after {key!r}")
                value = toks[i][1] if i < len(toks) and toks[i][0] == "word" else ""
                if value:
                    i += 1
                kind = {"=": "In", "==": "In", "!=": "NotIn", ">": "Gt", "<": "Lt"}[op]
                reqs.append(_req(key, kind, (value,)))
            elif toks[i][0] == "word" and toks[i][1] in ("in", "notin"):
                kind = "In" if toks[i][1] == "in" else "NotIn"
                i += 1
                expect("lparen")
                values: list[str] = []
                while i < len(toks) and toks[i][0] != "rparen":
                    if toks[i][0] == "comma":
                        i += 1
                        continue
                    values.append(expect("word"))
                expect("rparen")
                if not values:
                    raise SelectorError(f"unable to parse requirement: {key!r} needs values")
                reqs.append(_req(key, kind, tuple(values)))
            else:
                raise SelectorError(
                    f"unable to parse requirement: unexpected {toks[i][1]!r} after {key!r}")
        if i < len(toks):
            expect("comma")
            if i >= len(toks):
                raise SelectorError("unable to parse requirement: trailing ','")
    return Selector(tuple(reqs))


def _req(key: str, op: str, values: tuple[str, ...]) -> Requirement:
    from nodeagent.objects.validation import label_key_errors, label_value_errors

    errs = label_key_errors(key)
    if errs:
        raise SelectorError(f"invalid label key {key!r}: {errs[0]}")
    for v in values:
        verrs = label_value_errors(v)
        if verrs:
            raise SelectorError(f"invalid label value {v!r}: {verrs[0]}")
    if op in ("Gt", "Lt"):
        try:
            int(values[0])
        except ValueError as exc:
            raise SelectorError(f"for '{op}' operator, the value must be an integer") from exc
    return Requirement(key, op, tuple(sorted(values)) if op in ("In", "NotIn") else values)


def workload_selector(obj: Mapping[str, Any]) -> Selector:
    """A workload's pod selector: ``spec.selector`` as a LabelSelector, or as the plain
    label map a ReplicationController has (None selects nothing)."""
    sel = (obj.get("spec") or {}).get("selector")
    if obj.get("kind") == "ReplicationController":
        return selector_from_dict({"matchLabels": sel} if sel else None)
    return selector_from_dict(sel)


def selector_from_dict(spec: Mapping[str, Any] | None) -> Selector:
    """Build from a manifest's ``{matchLabels, matchExpressions}``; None selects nothing."""
    if spec is None:
        return Selector(nothing=True)
    reqs = [Requirement(k, "In", (v,)) for k, v in sorted((spec.get("matchLabels") or {}).items())]
    for expr in spec.get("matchExpressions") or []:
        op = expr["operator"]
        values = tuple(sorted(expr.get("values") or ()))
        reqs.append(Requirement(expr["key"], op, values))
    return Selector(tuple(reqs))
