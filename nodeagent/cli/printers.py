"""Tables the way kubectl prints them, from the server's Tables (meta.k8s.io/v1).

The server decides the columns of each kind (api/tables.py: ``NAME READY STATUS
RESTARTS AGE`` for pods, ...), as kube-apiserver does for kubectl; nodectl prints
the columns of priority 0, and with ``-o wide`` those of priority 1 too.
"""

from __future__ import annotations

from typing import Any

import yaml

Obj = dict[str, Any]


def render_table(columns: list[Obj], rows: list[Obj], *, wide: bool = False,
                 with_namespace: bool = False, name_prefix: str = "",
                 show_headers: bool = True, show_labels: bool = False) -> str:
    """A Table's ``columnDefinitions`` and ``rows`` as kubectl prints them: the name
    column (format ``name``) prefixed when several kinds are shown, NAMESPACE first with
    -A, LABELS last with --show-labels (from each row's object metadata)."""
    shown = [i for i, c in enumerate(columns) if wide or not c.get("priority")]
    head = (["NAMESPACE"] if with_namespace else []) + \
        [str(columns[i].get("name", "")).upper() for i in shown] + \
        (["LABELS"] if show_labels else [])
    out: list[list[str]] = []
    for r in rows:
        cells = r.get("cells") or []
        meta = (r.get("object") or {}).get("metadata") or {}
        row = []
        for i in shown:
            cell = cells[i] if i < len(cells) else ""
            text = "<none>" if cell is None else str(cell)
            if name_prefix and columns[i].get("format") == "name":
                text = name_prefix + text
            row.append(text)
        if with_namespace:
            row = [str(meta.get("namespace", "")), *row]
        if show_labels:
            labels = meta.get("labels") or {}
            row.append(",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
        out.append(row)
    return format_rows([head, *out] if show_headers else out)


def format_rows(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)
