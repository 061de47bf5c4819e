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

from nodeagent.api.tables import (
    Obj,
    Row,
    _meta,
    age,
    configmap_row,
    deployment_row,
    endpoints_row,
    event_row,
    ingress_row,
    namespace_row,
    node_row,
    pod_row,
    pv_row,
    pvc_row,
    replicaset_row,
    secret_row,
    service_row,
)

TABLES: dict[str, tuple[list[str], list[str], Callable[[Obj], tuple[Row, Row]]]] = {
    "Pod": (["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"], pod_row),
    "Service": (["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], ["SELECTOR"],
                service_row),
    "Deployment": (["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                   ["CONTAINERS", "IMAGES", "SELECTOR"], deployment_row),
    "ReplicaSet": (["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
                   ["CONTAINERS", "IMAGES", "SELECTOR"], replicaset_row),
    "Endpoints": (["NAME", "ENDPOINTS", "AGE"], [], endpoints_row),
    "Namespace": (["NAME", "STATUS", "AGE"], [], namespace_row),
    "Node": (["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
             ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME",
              "GOSSIP"],
             node_row),
    "ConfigMap": (["NAME", "DATA", "AGE"], [], configmap_row),
    "Secret": (["NAME", "TYPE", "DATA", "AGE"], [], secret_row),
    "Event": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], [], event_row),
    "PersistentVolume": (["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS",
                          "CLAIM", "STORAGECLASS", "REASON", "AGE"], [], pv_row),
    "PersistentVolumeClaim": (["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES",
                               "STORAGECLASS", "AGE"], [], pvc_row),
    "Ingress": (["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], [], ingress_row),
}


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
