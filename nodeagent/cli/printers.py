"""Tables and descriptions the way kubectl prints them.

Each kind has a row function giving kubectl's columns (``NAME READY STATUS
RESTARTS AGE`` for pods, ``NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE`` for
services, ...), with the extra ``-o wide`` columns after them.  Unknown
kinds get ``NAME AGE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import yaml

Row = list[str]
Obj = dict[str, Any]


def age(ts: str | None, now: dt.datetime | None = None) -> str:
    """kubectl's human durations: 45s, 5m12s, 3h4m, 2d3h, 400d."""
    if not ts:
        return "<unknown>"
    try:
        t = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<invalid>"
    secs = int(((now or dt.datetime.now(dt.UTC)) - t).total_seconds())
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 10:
        return f"{mins}m{secs % 60}s" if secs % 60 else f"{mins}m"
    if mins < 180:
        return f"{mins}m"
    hours = mins // 60
    if hours < 8:
        return f"{hours}h{mins % 60}m" if mins % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d"


def _meta(o: Obj) -> Obj:
    return o.get("metadata") or {}


def _selector_text(sel: dict[str, Any] | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = e.get("operator")
        if op in ("In", "NotIn"):
            parts.append(f"{e['key']} {op.lower()} ({','.join(e.get('values') or [])})")
        elif op == "Exists":
            parts.append(e["key"])
        else:
            parts.append("!" + e["key"])
    return ",".join(parts) or "<none>"


def _containers(spec: Obj | None) -> tuple[str, str]:
    cs = (spec or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs) or "<none>", \
        ",".join(c.get("image", "") for c in cs) or "<none>"


# --- pods ------------------------------------------------------------------------------------


def pod_status_text(p: Obj) -> str:
    meta, status = _meta(p), p.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            t = state["terminated"]
            reason = t.get("reason") or (f"Signal:{t['signal']}" if t.get("signal")
                                         else f"ExitCode:{t.get('exitCode')}")
    return reason


def pod_row(p: Obj) -> tuple[Row, Row]:
    status = p.get("status") or {}
    spec = p.get("spec") or {}
    total = len(spec.get("containers") or [])
    cstat = status.get("containerStatuses") or []
    ready = sum(1 for c in cstat if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in cstat)
    row = [_meta(p).get("name", ""), f"{ready}/{total}", pod_status_text(p), str(restarts),
           age(_meta(p).get("creationTimestamp"))]
    wide = [status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", "<none>"]
    return row, wide


def service_ports(s: Obj) -> str:
    ports = []
    for p in (s.get("spec") or {}).get("ports") or []:
        text = str(p.get("port"))
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def service_row(s: Obj) -> tuple[Row, Row]:
    spec = s.get("spec") or {}
    ext = spec.get("externalIPs") or []
    lb = [i.get("ip") or i.get("hostname") for i in
          ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
    if spec.get("type") == "LoadBalancer":
        external = ",".join(lb + ext) or "<pending>"
    elif spec.get("type") == "ExternalName":
        external = spec.get("externalName") or "<none>"
    else:
        external = ",".join(ext) or "<none>"
    sel = spec.get("selector")
    row = [_meta(s).get("name", ""), spec.get("type", "ClusterIP"),
           spec.get("clusterIP") or "<none>", external, service_ports(s),
           age(_meta(s).get("creationTimestamp"))]
    wide = [",".join(f"{k}={v}" for k, v in sorted(sel.items())) if sel else "<none>"]
    return row, wide


def deployment_row(d: Obj) -> tuple[Row, Row]:
    spec, st = d.get("spec") or {}, d.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec"))
    row = [_meta(d).get("name", ""), f"{st.get('readyReplicas') or 0}/{spec.get('replicas', 0)}",
           str(st.get("updatedReplicas") or 0), str(st.get("availableReplicas") or 0),
           age(_meta(d).get("creationTimestamp"))]
    return row, [names, images, _selector_text(spec.get("selector"))]


def replicaset_row(r: Obj) -> tuple[Row, Row]:
    spec, st = r.get("spec") or {}, r.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec"))
    row = [_meta(r).get("name", ""), str(spec.get("replicas", 0)), str(st.get("replicas") or 0),
           str(st.get("readyReplicas") or 0), age(_meta(r).get("creationTimestamp"))]
    return row, [names, images, _selector_text(spec.get("selector"))]


def endpoints_text(e: Obj, limit: int = 3) -> str:
    eps = []
    for sub in e.get("subsets") or []:
        for a in sub.get("addresses") or []:
            for p in sub.get("ports") or [{}]:
                eps.append(f"{a.get('ip')}:{p['port']}" if p.get("port") else a.get("ip", ""))
    if not eps:
        return "<none>"
    if len(eps) > limit:
        return ",".join(eps[:limit]) + f" + {len(eps) - limit} more..."
    return ",".join(eps)


def endpoints_row(e: Obj) -> tuple[Row, Row]:
    return [_meta(e).get("name", ""), endpoints_text(e), age(_meta(e).get("creationTimestamp"))], []


def namespace_row(n: Obj) -> tuple[Row, Row]:
    return [_meta(n).get("name", ""), (n.get("status") or {}).get("phase", "Active"),
            age(_meta(n).get("creationTimestamp"))], []


def node_row(n: Obj) -> tuple[Row, Row]:
    st = n.get("status") or {}
    ready = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), None)
    status = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (n.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = _meta(n).get("labels") or {}
    roles = ",".join(sorted(k.split("/", 1)[1] for k in labels
                            if k.startswith("node-role.kubernetes.io/"))) or "<none>"
    info = st.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    row = [_meta(n).get("name", ""), status, roles, age(_meta(n).get("creationTimestamp")),
           info.get("kubeletVersion") or "<none>"]
    wide = [addrs.get("InternalIP", "<none>"), addrs.get("ExternalIP", "<none>"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>",
            (_meta(n).get("annotations") or {}).get("nodeagent.io/gossip", "<none>")]
    return row, wide


def configmap_row(c: Obj) -> tuple[Row, Row]:
    n = len(c.get("data") or {}) + len(c.get("binaryData") or {})
    return [_meta(c).get("name", ""), str(n), age(_meta(c).get("creationTimestamp"))], []


def secret_row(s: Obj) -> tuple[Row, Row]:
    return [_meta(s).get("name", ""), s.get("type", "Opaque"), str(len(s.get("data") or {})),
            age(_meta(s).get("creationTimestamp"))], []


def event_row(e: Obj) -> tuple[Row, Row]:
    io = e.get("involvedObject") or {}
    last = e.get("lastTimestamp") or e.get("eventTime") or _meta(e).get("creationTimestamp")
    return [age(last), e.get("type") or "", e.get("reason") or "",
            f"{(io.get('kind') or '').lower()}/{io.get('name', '')}", e.get("message") or ""], []


def _modes(modes: list[str] | None) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
             "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(m, m) for m in modes or [])


def pv_row(p: Obj) -> tuple[Row, Row]:
    spec, st = p.get("spec") or {}, p.get("status") or {}
    claim = spec.get("claimRef") or {}
    return [_meta(p).get("name", ""), (spec.get("capacity") or {}).get("storage", ""),
            _modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
            st.get("phase", ""), f"{claim['namespace']}/{claim['name']}" if claim else "",
            spec.get("storageClassName") or "", st.get("reason") or "",
            age(_meta(p).get("creationTimestamp"))], []


def pvc_row(p: Obj) -> tuple[Row, Row]:
    spec, st = p.get("spec") or {}, p.get("status") or {}
    return [_meta(p).get("name", ""), st.get("phase", ""), spec.get("volumeName") or "",
            (st.get("capacity") or {}).get("storage", ""), _modes(st.get("accessModes")),
            spec.get("storageClassName") or "", age(_meta(p).get("creationTimestamp"))], []


def ingress_row(i: Obj) -> tuple[Row, Row]:
    spec = i.get("spec") or {}
    hosts = ",".join(r.get("host") or "*" for r in spec.get("rules") or []) or "*"
    lb = ((i.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ports = "80, 443" if spec.get("tls") else "80"
    return [_meta(i).get("name", ""), spec.get("ingressClassName") or "<none>", hosts,
            ",".join(x.get("ip") or x.get("hostname") or "" for x in lb), ports,
            age(_meta(i).get("creationTimestamp"))], []


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
