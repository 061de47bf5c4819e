"""kubectl's ``-o jsonpath=TEMPLATE``: the subset scripts use.

Text outside braces is printed as is; inside braces: a path (``.spec.clusterIP``,
``.items[0].metadata.name``, ``.items[*].status.podIP``, ``.metadata.labels['app']``,
``.status.addresses[?(@.type=="InternalIP")].address``), a string literal
(``{"\\n"}``), or ``{range PATH}...{end}`` that renders its body once per element.
Several results print space-separated; objects and lists print as JSON; a missing key
prints nothing (kubectl's default --allow-missing-template-keys).  A template that
cannot be parsed is a ``JsonPathError`` naming where.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["JsonPathError", "render"]

_MISSING = object()


class JsonPathError(ValueError):
    pass


def _tokens(template: str) -> list[tuple[str, str]]:
    """[("text", ...), ("expr", ...)]"""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            out.append(("text", template[i:]))
            break
        if j > i:
            out.append(("text", template[i:j]))
        depth, k, quote = 0, j, ""
        while k < len(template):
            ch = template[k]
            if quote:
                if ch == "\\":
                    k += 1
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        else:
            raise JsonPathError(f"unclosed action at {j}: {template[j:]!r}")
        out.append(("expr", template[j + 1:k].strip()))
        i = k + 1
    return out


_SEGMENT = re.compile(r"""\.([A-Za-z0-9_\-/]+|\*)|\[(\*|-?\d+|'[^']*'|"[^"]*"|\?\(.*?\))\]""")
_FILTER = re.compile(r"""\?\(@((?:\.[A-Za-z0-9_\-/]+)+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|(\S+))\)""")


def _select(path: str, roots: list[Any]) -> list[Any]:
    text = path.strip()
    if text.startswith(("$", "@")):
        text = text[1:]
    if text in ("", "."):
        return roots
    values = roots
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None:
            raise JsonPathError(f"unrecognized path {path!r} at {text[pos:]!r}")
        pos = m.end()
        name, index = m.group(1), m.group(2)
        f = _FILTER.fullmatch(index) if index and index.startswith("?") else None
        if index and index.startswith("?") and f is None:
            raise JsonPathError(f"unsupported filter {index!r}")
        nxt: list[Any] = []
        for v in values:
            if name == "*" or index == "*":
                if isinstance(v, dict):
                    nxt.extend(v.values())
                elif isinstance(v, list):
                    nxt.extend(v)
            elif name is not None:
                if isinstance(v, dict) and name in v:
                    nxt.append(v[name])
            elif index.startswith(("'", '"')):
                if isinstance(v, dict) and index[1:-1] in v:
                    nxt.append(v[index[1:-1]])
            elif f is not None:
                key_path, op = f.group(1), f.group(2)
                want = next(g for g in (f.group(3), f.group(4), f.group(5)) if g is not None)
                for item in v if isinstance(v, list) else []:
                    got = _select(key_path, [item])
                    hit = bool(got) and _text(got[0]) == want
                    if hit == (op == "=="):
                        nxt.append(item)
            else:
                if isinstance(v, list) and -len(v) <= int(index) < len(v):
                    nxt.append(v[int(index)])
        values = nxt
    return values


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    if v is None:
        return ""
    return str(v)


def _literal(expr: str) -> str:
    try:
        return str(json.loads(expr)) if expr.startswith('"') else expr[1:-1]
    except json.JSONDecodeError:
        raise JsonPathError(f"bad string literal {expr}") from None


def _render(tokens: list[tuple[str, str]], start: int, scope: Any, out: list[str],
            nested: bool = False) -> int:
    """Render from ``start`` until a matching {end}; returns the index after it."""
    i = start
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            out.append(value)
        elif value == "end":
            if not nested:
                raise JsonPathError("{end} without {range}")
            return i + 1
        elif value.startswith("range "):
            items = _select(value[6:], [scope])
            end = _skip(tokens, i + 1)
            for item in items:
                _render(tokens, i + 1, item, out, nested=True)
            i = end
            continue
        elif value.startswith(("'", '"')):
            out.append(_literal(value))
        else:
            out.append(" ".join(_text(v) for v in _select(value, [scope])))
        i += 1
    return i


def _skip(tokens: list[tuple[str, str]], start: int) -> int:
    """The index after the {end} matching a {range} whose body starts at ``start``."""
    depth, i = 1, start
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "expr" and value.startswith("range "):
            depth += 1
        elif kind == "expr" and value == "end":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise JsonPathError("{range} without {end}")


def render(template: str, data: Any) -> str:
    template = template.strip()
    if len(template) >= 2 and template[0] == template[-1] and template[0] in "'\"":
        template = template[1:-1]
    tokens = _tokens(template)
    out: list[str] = []
    _render(tokens, 0, data, out)
    return "".join(out)
