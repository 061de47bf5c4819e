"""Tables and descriptions the way kubectl prints them.

Each kind has a row function giving kubectl's columns (``NAME READY STATUS
RESTARTS AGE`` for pods, ``NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE`` for
services, ...), with the extra ``-o wide`` columns after them.  Unknown
kinds get ``NAME AGE``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from nodeagent.api.tables import PRINTERS, Obj, Row, _meta, age, event_row


def _upper(cols: list[tuple[str, str, str]]) -> list[str]:
    return [name.upper() for name, _type, _desc in cols]


# The server's columns (api/tables.py), in kubectl's capitals, for the kinds nodectl has
# always printed so; a Node's wide row adds its gossip state, and events stay narrow.
TABLES: dict[str, tuple[list[str], list[str], Callable[[Obj], tuple[Row, Row]]]] = {
    kind: (_upper(PRINTERS[kind][0]), _upper(PRINTERS[kind][1]), PRINTERS[kind][2])
    for kind in ("Pod", "Service", "Deployment", "ReplicaSet", "Endpoints", "Namespace",
                 "Node", "ConfigMap", "Secret", "PersistentVolume", "PersistentVolumeClaim",
                 "Ingress")}
TABLES["Node"][1].append("GOSSIP")
TABLES["Event"] = (_upper(PRINTERS["Event"][0]), [], event_row)


def table(kind: str, items: list[Obj], *, wide: bool = False, with_namespace: bool = False,
          name_prefix: str = "", show_headers: bool = True, show_labels: bool = False) -> str:
    headers, wide_headers, fn = TABLES.get(
        kind, (["NAME", "AGE"], [], lambda o: ([_meta(o).get("name", ""),
                                               age(_meta(o).get("creationTimestamp"))], [])))
    head = (["NAMESPACE"] if with_namespace else []) + headers + (wide_headers if wide else []) \
        + (["LABELS"] if show_labels else [])
    rows: list[Row] = []
    for o in items:
        row, extra = fn(o)
        if name_prefix and kind != "Event":
            row = [name_prefix + row[0], *row[1:]]
        if wide:
            row = row + extra
        if with_namespace:
            row = [_meta(o).get("namespace", ""), *row]
        if show_labels:
            labels = _meta(o).get("labels") or {}
            row.append(",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
        rows.append(row)
    return format_rows([head, *rows] if show_headers else rows)


def format_rows(rows: list[Row]) -> str:
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
