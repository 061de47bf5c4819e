"""Server-side Tables (``as=Table``): each kind's rows with kubectl's columns, so that
``kubectl get`` and ``nodectl get`` print what a real cluster prints (``NAME READY
STATUS RESTARTS AGE`` for pods, ...).  The printers of Kubernetes'
pkg/printers/internalversion, column for column; ``-o wide`` shows the columns of
priority 1.  A kind without a printer gets Name and Created At, as the apiserver's
default table does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from nodeagent.api.accept import media_ranges
from nodeagent.objects import eventsv1
from nodeagent.objects.kinds import EVENTS_V1

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


def replicationcontroller_row(r: Obj) -> tuple[Row, Row]:
    spec, st = r.get("spec") or {}, r.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec"))
    sel = spec.get("selector") or {}
    row = [_meta(r).get("name", ""), str(spec.get("replicas", 0)), str(st.get("replicas") or 0),
           str(st.get("readyReplicas") or 0), age(_meta(r).get("creationTimestamp"))]
    return row, [names, images, ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
                 or "<none>"]


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


def endpointslice_row(e: Obj) -> tuple[Row, Row]:
    ports = [str(p["port"]) if p.get("port") is not None else "<unset>"
             for p in e.get("ports") or []]
    addresses = [a for ep in e.get("endpoints") or [] for a in ep.get("addresses") or []]
    shown = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..."
                                       if len(addresses) > 3 else "")
    return [_meta(e).get("name", ""), str(e.get("addressType", "")),
            ",".join(ports) or "<unset>", shown or "<unset>",
            age(_meta(e).get("creationTimestamp"))], []


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


def _core_event(e: Obj) -> Obj:
    """An event in core/v1's shape: events.k8s.io's rows read the same fields."""
    return eventsv1.to_core(e) if e.get("apiVersion") == EVENTS_V1.api_version else e


def event_row(e: Obj) -> tuple[Row, Row]:
    e = _core_event(e)
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


def serviceaccount_row(s: Obj) -> tuple[Row, Row]:
    return [_meta(s).get("name", ""), str(len(s.get("secrets") or [])),
            age(_meta(s).get("creationTimestamp"))], []


def binding_row(b: Obj) -> tuple[Row, Row]:
    ref = b.get("roleRef") or {}
    subjects = b.get("subjects") or []

    def names(kind: str) -> str:
        return ",".join(f"{s.get('namespace')}/{s.get('name')}" if kind == "ServiceAccount"
                        else s.get("name", "") for s in subjects if s.get("kind") == kind)
    return [_meta(b).get("name", ""), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            age(_meta(b).get("creationTimestamp"))], \
        [names("User"), names("Group"), names("ServiceAccount")]


def created_at_row(o: Obj) -> tuple[Row, Row]:
    return [_meta(o).get("name", ""), _meta(o).get("creationTimestamp") or ""], []


def event_wide_row(e: Obj) -> tuple[Row, Row]:
    e = _core_event(e)  # once: event_row takes the core shape as it is
    row, _ = event_row(e)
    io, src = e.get("involvedObject") or {}, e.get("source") or {}
    first = e.get("firstTimestamp") or e.get("eventTime") or \
        _meta(e).get("creationTimestamp")
    source = ", ".join(x for x in (src.get("component"), src.get("host")) if x)
    return row, [io.get("fieldPath") or "", source, age(first),
                 str(e.get("count") or 1), _meta(e).get("name", "")]


# --- server-side Table (meta.k8s.io/v1) -------------------------------------------------------

Column = tuple[str, str, str]  # name, type, description
_NAME: Column = ("Name", "string", "Name must be unique within a namespace.")
_AGE: Column = ("Age", "string", "CreationTimestamp is a timestamp representing the server "
                "time when this object was created.")


def _cols(*names: str) -> list[Column]:
    return [_NAME if n == "Name" else _AGE if n == "Age" else (n, "string", "") for n in names]


Printer = tuple[list[Column], list[Column], Callable[[Obj], tuple[Row, Row]]]
# kind -> (columns, wide columns, row function); a row function gives the cells of both.
PRINTERS: dict[str, Printer] = {
    "Pod": (_cols("Name", "Ready", "Status", "Restarts", "Age"),
            _cols("IP", "Node", "Nominated Node", "Readiness Gates"), pod_row),
    "Service": (_cols("Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"),
                _cols("Selector"), service_row),
    "Deployment": (_cols("Name", "Ready", "Up-to-date", "Available", "Age"),
                   _cols("Containers", "Images", "Selector"), deployment_row),
    "ReplicaSet": (_cols("Name", "Desired", "Current", "Ready", "Age"),
                   _cols("Containers", "Images", "Selector"), replicaset_row),
    "ReplicationController": (_cols("Name", "Desired", "Current", "Ready", "Age"),
                              _cols("Containers", "Images", "Selector"),
                              replicationcontroller_row),
    "Endpoints": (_cols("Name", "Endpoints", "Age"), [], endpoints_row),
    "EndpointSlice": (_cols("Name", "AddressType", "Ports", "Endpoints", "Age"), [],
                      endpointslice_row),
    "Namespace": (_cols("Name", "Status", "Age"), [], namespace_row),
    "Node": (_cols("Name", "Status", "Roles", "Age", "Version"),
             _cols("Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
                   "Container-Runtime", "Gossip"), node_row),
    "ConfigMap": (_cols("Name", "Data", "Age"), [], configmap_row),
    "Secret": (_cols("Name", "Type", "Data", "Age"), [], secret_row),
    "ServiceAccount": (_cols("Name", "Secrets", "Age"), [], serviceaccount_row),
    "Event": (_cols("Last Seen", "Type", "Reason", "Object", "Message"),
              _cols("Subobject", "Source", "First Seen", "Count", "Name"), event_wide_row),
    "PersistentVolume": (_cols("Name", "Capacity", "Access Modes", "Reclaim Policy", "Status",
                               "Claim", "StorageClass", "Reason", "Age"), [], pv_row),
    "PersistentVolumeClaim": (_cols("Name", "Status", "Volume", "Capacity", "Access Modes",
                                    "StorageClass", "Age"), [], pvc_row),
    "Ingress": (_cols("Name", "Class", "Hosts", "Address", "Ports", "Age"), [], ingress_row),
    "RoleBinding": (_cols("Name", "Role", "Age"), _cols("Users", "Groups", "ServiceAccounts"),
                    binding_row),
    "ClusterRoleBinding": (_cols("Name", "Role", "Age"),
                           _cols("Users", "Groups", "ServiceAccounts"), binding_row),
}
_CREATED: Column = ("Created At", "date", "CreationTimestamp is a timestamp representing the "
                    "server time when this object was created.")
_DEFAULT: Printer = ([_NAME, _CREATED], [], created_at_row)


def table_version(accept: str) -> str | None:
    """The Table version an Accept header asks for (``application/json;as=Table;v=v1;
    g=meta.k8s.io``, kubectl's first choice), or None for a plain list."""
    for _media, params in media_ranges(accept):
        if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io" \
                and params.get("v", "v1") in ("v1", "v1beta1"):
            return params.get("v", "v1")
    return None


def _row(kind: str, obj: Obj, include: str) -> dict[str, Any]:
    cols, wide, fn = PRINTERS.get(kind, _DEFAULT)
    cells, extra = fn(obj)
    row: dict[str, Any] = {"cells": cells[:len(cols)] + (extra + [""] * len(wide))[:len(wide)]}
    if include == "Object":
        row["object"] = obj
    elif include != "None":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": obj.get("metadata") or {}}
    return row


def to_table(kind: str, items: list[Obj], list_meta: Obj, *, version: str = "v1",
             include: str = "PartialObjectMetadata", headers: bool = True) -> Obj:
    """A Table of ``items``; ``include`` is the request's includeObject (None, Object or
    PartialObjectMetadata, the default)."""
    cols, wide, _ = PRINTERS.get(kind, _DEFAULT)
    defs = [{"name": n, "type": t, "format": "name" if (n, t, d) == _NAME else "",
             "description": d, "priority": 0} for n, t, d in cols] + \
        [{"name": n, "type": t, "format": "", "description": d, "priority": 1}
         for n, t, d in wide]
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": list_meta,
            "columnDefinitions": defs if headers else [],
            "rows": [_row(kind, o, include) for o in items]}
