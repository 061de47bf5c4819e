"""``nodectl describe``: kubectl's describe layout for the kinds people describe most.

Common header (Name, Namespace, Labels, Annotations), then what the kind is
about, then the Events that name the object.  Kinds without a describer show
their spec and status as YAML-like indented text, which is also what kubectl
falls back to.
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.tables import age, endpoints_text
from nodeagent.cli.printers import format_rows

Obj = dict[str, Any]


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def kv(self, key: str, value: Any, indent: int = 0) -> None:
        pad = "  " * indent
        label = f"{pad}{key}:"
        self.lines.append(f"{label.ljust(max(len(label) + 1, 20 - 0))}{value}".rstrip())

    def map(self, key: str, m: dict[str, str] | None, indent: int = 0) -> None:
        items = sorted((m or {}).items())
        if not items:
            self.kv(key, "<none>", indent)
            return
        first, *rest = items
        self.kv(key, f"{first[0]}={first[1]}", indent)
        for k, v in rest:
            self.lines.append(" " * 20 + f"{k}={v}")

    def text(self, line: str = "") -> None:
        self.lines.append(line)


def _probe_text(kind: str, p: Obj) -> str:
    if p.get("httpGet"):
        h = p["httpGet"]
        what = (f"http-get {h.get('scheme', 'HTTP').lower()}://{h.get('host', '')}:"
                f"{h.get('port')}{h.get('path', '')}")
    elif p.get("tcpSocket"):
        what = f"tcp-socket :{p['tcpSocket'].get('port')}"
    elif p.get("exec"):
        what = "exec [" + " ".join(p["exec"].get("command") or []) + "]"
    elif p.get("grpc"):
        what = f"grpc <pod>:{p['grpc'].get('port')} {p['grpc'].get('service', '')}"
    else:
        what = "<unknown>"
    return (f"{what} delay={p.get('initialDelaySeconds', 0)}s timeout={p.get('timeoutSeconds', 1)}s "
            f"period={p.get('periodSeconds', 10)}s #success={p.get('successThreshold', 1)} "
            f"#failure={p.get('failureThreshold', 3)}")


def _header(o: Obj, out: _Out) -> None:
    meta = o.get("metadata") or {}
    out.kv("Name", meta.get("name", ""))
    if meta.get("namespace"):
        out.kv("Namespace", meta["namespace"])
    out.map("Labels", meta.get("labels"))
    ann = {k: v for k, v in (meta.get("annotations") or {}).items()
           if k != "kubectl.kubernetes.io/last-applied-configuration"}
    out.map("Annotations", ann)


def _pod(o: Obj, out: _Out) -> None:
    spec, st, meta = o.get("spec") or {}, o.get("status") or {}, o.get("metadata") or {}
    out.kv("Priority", spec.get("priority", 0))
    out.kv("Service Account", spec.get("serviceAccountName") or "default")
    out.kv("Node", spec.get("nodeName") or "<none>")
    out.kv("Start Time", st.get("startTime") or "<unset>")
    out.kv("Status", "Terminating" if meta.get("deletionTimestamp") else st.get("phase", ""))
    out.kv("IP", st.get("podIP") or "")
    owners = meta.get("ownerReferences") or []
    out.kv("Controlled By", ", ".join(f"{r['kind']}/{r['name']}" for r in owners) or "<none>")
    statuses = {c.get("name"): c for c in st.get("containerStatuses") or []}
    out.text("Containers:")
    for c in spec.get("containers") or []:
        cs = statuses.get(c.get("name"), {})
        out.text(f"  {c.get('name')}:")
        out.kv("Container ID", cs.get("containerID", ""), 2)
        out.kv("Image", c.get("image", ""), 2)
        ports = c.get("ports") or []
        out.kv("Port", ", ".join(f"{p['containerPort']}/{p.get('protocol', 'TCP')}"
                                 for p in ports) or "<none>", 2)
        state = cs.get("state") or {}
        out.kv("State", next(iter(state), "Waiting").capitalize(), 2)
        for k, v in (next(iter(state.values()), {}) or {}).items():
            out.kv(k[0].upper() + k[1:], v, 3)
        out.kv("Ready", str(bool(cs.get("ready"))), 2)
        out.kv("Restart Count", cs.get("restartCount", 0), 2)
        res = c.get("resources") or {}
        for kind in ("limits", "requests"):
            if res.get(kind):
                out.text(f"    {kind.capitalize()}:")
                for k, v in sorted(res[kind].items()):
                    out.kv(k, v, 3)
        for label, key in (("Liveness", "livenessProbe"), ("Readiness", "readinessProbe"),
                           ("Startup", "startupProbe")):
            if c.get(key):
                out.kv(label, _probe_text(label, c[key]), 2)
        env = c.get("env") or []
        if env:
            out.text("    Environment:")
            for e in env:
                out.text(f"      {e['name']}:  {e.get('value', '<set from valueFrom>')}")
        else:
            out.kv("Environment", "<none>", 2)
        mounts = c.get("volumeMounts") or []
        out.kv("Mounts", "<none>" if not mounts else "", 2)
        for m in mounts:
            out.text(f"      {m['mountPath']} from {m['name']} "
                     f"({'ro' if m.get('readOnly') else 'rw'})")
    conds = st.get("conditions") or []
    if conds:
        out.text("Conditions:")
        out.text("\n".join("  " + line for line in format_rows(
            [["Type", "Status"]] + [[c["type"], c["status"]] for c in conds]).splitlines()))
    vols = spec.get("volumes") or []
    out.kv("Volumes", "<none>" if not vols else "")
    for v in vols:
        kind = next((k for k in v if k != "name"), "?")
        out.text(f"  {v['name']}:")
        out.kv("Type", kind, 2)
    out.kv("QoS Class", st.get("qosClass", ""))
    out.map("Node-Selectors", spec.get("nodeSelector"))


def _service(o: Obj, out: _Out, endpoints: Obj | None) -> None:
    spec = o.get("spec") or {}
    sel = spec.get("selector") or {}
    out.kv("Selector", ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>")
    out.kv("Type", spec.get("type", "ClusterIP"))
    out.kv("IP Family Policy", "SingleStack")
    out.kv("IP", spec.get("clusterIP") or "<none>")
    for p in spec.get("ports") or []:
        name = p.get("name") or "<unset>"
        out.kv("Port", f"{name}  {p['port']}/{p.get('protocol', 'TCP')}")
        out.kv("TargetPort", f"{p.get('targetPort')}/{p.get('protocol', 'TCP')}")
        if p.get("nodePort"):
            out.kv("NodePort", f"{name}  {p['nodePort']}/{p.get('protocol', 'TCP')}")
        out.kv("Endpoints", endpoints_text(endpoints, limit=1000) if endpoints else "<none>")
    out.kv("Session Affinity", spec.get("sessionAffinity", "None"))
    if spec.get("externalTrafficPolicy"):
        out.kv("External Traffic Policy", spec["externalTrafficPolicy"])


def _workload(o: Obj, out: _Out) -> None:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    sel = spec.get("selector") or {}
    from nodeagent.api.tables import _selector_text
    out.kv("Selector", _selector_text(sel))
    if o.get("kind") == "Deployment":
        out.kv("Replicas", f"{spec.get('replicas', 0)} desired | {st.get('updatedReplicas') or 0} "
                           f"updated | {st.get('replicas') or 0} total | "
                           f"{st.get('availableReplicas') or 0} available | "
                           f"{st.get('unavailableReplicas') or 0} unavailable")
        strat = spec.get("strategy") or {}
        out.kv("StrategyType", strat.get("type", ""))
        out.kv("MinReadySeconds", spec.get("minReadySeconds", 0))
        ru = strat.get("rollingUpdate")
        if ru:
            out.kv("RollingUpdateStrategy", f"{ru.get('maxUnavailable')} max unavailable, "
                                            f"{ru.get('maxSurge')} max surge")
    else:
        out.kv("Replicas", f"{st.get('replicas') or 0} current / {spec.get('replicas', 0)} desired")
        out.kv("Pods Status", f"{st.get('readyReplicas') or 0} Running / 0 Waiting / "
                              "0 Succeeded / 0 Failed")
    tmpl = spec.get("template") or {}
    out.text("Pod Template:")
    out.map("Labels", (tmpl.get("metadata") or {}).get("labels"), 1)
    out.text("  Containers:")
    for c in (tmpl.get("spec") or {}).get("containers") or []:
        out.text(f"   {c.get('name')}:")
        out.kv("Image", c.get("image", ""), 2)
        ports = c.get("ports") or []
        out.kv("Port", ", ".join(f"{p['containerPort']}/{p.get('protocol', 'TCP')}"
                                 for p in ports) or "<none>", 2)
        for label, key in (("Liveness", "livenessProbe"), ("Readiness", "readinessProbe")):
            if c.get(key):
                out.kv(label, _probe_text(label, c[key]), 2)


def _generic(o: Obj, out: _Out) -> None:
    import yaml
    for section in ("spec", "data", "subsets", "status"):
        if o.get(section):
            out.text(section.capitalize() + ":")
            text = yaml.safe_dump(o[section], sort_keys=False, default_flow_style=False)
            out.text("\n".join("  " + line for line in text.rstrip().splitlines()))


def describe(o: Obj, events: list[Obj], endpoints: Obj | None = None) -> str:
    out = _Out()
    _header(o, out)
    kind = o.get("kind")
    if kind == "Pod":
        _pod(o, out)
    elif kind == "Service":
        _service(o, out, endpoints)
    elif kind in ("Deployment", "ReplicaSet"):
        _workload(o, out)
    elif kind == "Secret":
        out.kv("Type", o.get("type", "Opaque"))
        out.text("Data")
        out.text("====")
        import base64
        for k, v in sorted((o.get("data") or {}).items()):
            out.text(f"{k}:  {len(base64.b64decode(v))} bytes")
    else:
        _generic(o, out)
    if not events:
        out.kv("Events", "<none>")
    else:
        out.text("Events:")
        rows = [["Type", "Reason", "Age", "From", "Message"],
                ["----", "------", "----", "----", "-------"]]
        for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
            seen = age(e.get("lastTimestamp") or e.get("eventTime"))
            if int(e.get("count") or 1) > 1:  # kubectl: "2m (x3 over 5m)"
                seen += f" (x{e['count']} over {age(e.get('firstTimestamp'))})"
            rows.append([e.get("type") or "", e.get("reason") or "", seen,
                         (e.get("source") or {}).get("component") or
                         e.get("reportingComponent") or "", e.get("message") or ""])
        out.text("\n".join("  " + line for line in format_rows(rows).splitlines()))
    return "\n".join(out.lines)
