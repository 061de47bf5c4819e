"""Discovery documents: /api, /apis, /api/v1, /apis/G/V, /version."""

from __future__ import annotations

import functools
import platform
import sys
from typing import Any

import orjson

from nodeagent import __version__
from nodeagent.api.accept import media_ranges
from nodeagent.api.reviews import REVIEWS
from nodeagent.api.scale import SCALABLE
from nodeagent.objects.kinds import SERVED
from nodeagent.objects.kinds import groups as kind_groups

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# The Kubernetes API level our objects and paths follow, and the release we report:
# kubectl warns when the server is more than one minor release from it, so we name the
# release whose kubectl the project pins and tests with (1.37).
KUBE_MAJOR, KUBE_MINOR = "1", "37"
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
# When this build of the API was made; /version's buildDate.
_BUILD_DATE = "2026-12-06T00:00:00Z"


def version_info() -> dict[str, Any]:
    """/version with every field of Kubernetes' version.Info."""
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": str(int(KUBE_MINOR) - 1),
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0+nodeagent.{__version__}",
        "gitCommit": f"nodeagent-{__version__}",
        "gitTreeState": "clean",
        "buildDate": _BUILD_DATE,
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{_GOARCH.get(platform.machine(), platform.machine())}",
        "nodeagentVersion": __version__,
    }


# Subresources other than status and scale: (name, kind, verbs, group, version), the
# group and version named only where they are not the parent's.
_PROXY_VERBS = ["create", "delete", "get", "patch", "update"]
_SUBRESOURCES: dict[str, tuple[tuple[str, str, list[str], str, str], ...]] = {
    "Pod": (("attach", "PodAttachOptions", ["create", "get"], "", ""),
            ("binding", "Binding", ["create"], "", ""),
            ("ephemeralcontainers", "Pod", ["get", "patch", "update"], "", ""),
            ("eviction", "Eviction", ["create"], "policy", "v1"),
            ("exec", "PodExecOptions", ["create", "get"], "", ""),
            ("log", "Pod", ["get"], "", ""),
            ("portforward", "PodPortForwardOptions", ["create", "get"], "", ""),
            ("proxy", "PodProxyOptions", _PROXY_VERBS, "", "")),
    "Service": (("proxy", "ServiceProxyOptions", _PROXY_VERBS, "", ""),),
    "Node": (("proxy", "NodeProxyOptions", _PROXY_VERBS, "", ""),),
    "ServiceAccount": (("token", "TokenRequest", ["create"], "authentication.k8s.io", "v1"),),
    "Namespace": (("finalize", "Namespace", ["update"], "", ""),),
}


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"
# metrics.k8s.io, as metrics-server serves it: read-only, from the agents' cgroup stats.
_METRICS_ROWS = [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics",
     "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics",
     "verbs": ["get", "list"]},
]


def groups() -> list[str]:
    """Every API group served: the kinds', the reviews' (create-only), metrics."""
    return sorted(set(kind_groups()) | {r.group for r in REVIEWS} | {METRICS_GROUP})


def _group_doc(name: str) -> dict[str, Any]:
    version = METRICS_VERSION if name == METRICS_GROUP else \
        next((r.version for r in SERVED if r.group == name), "v1")
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_doc(g) for g in groups()]}


def api_group(name: str) -> dict[str, Any] | None:
    if name not in groups():
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name)}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    if (group, version) == (METRICS_GROUP, METRICS_VERSION):
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}", "resources": _METRICS_ROWS}
    rows: list[dict[str, Any]] = []
    for r in SERVED:
        if r.group != group or r.version != version:
            continue
        row: dict[str, Any] = {"name": r.plural, "singularName": r.singular,
                               "namespaced": r.namespaced, "kind": r.kind, "verbs": VERBS}
        if r.short_names:
            row["shortNames"] = list(r.short_names)
        if r.categories:
            row["categories"] = list(r.categories)
        rows.append(row)
        rows.extend({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                     "kind": kind, "verbs": verbs, **({"group": g, "version": v} if g else {})}
                    for sub, kind, verbs, g, v in _SUBRESOURCES.get(r.kind, ()))
        if r.kind in SCALABLE:
            rows.append({"name": f"{r.plural}/scale", "singularName": "",
                         "namespaced": r.namespaced, "group": "autoscaling", "version": "v1",
                         "kind": "Scale", "verbs": ["get", "patch", "update"]})
        if r.has_status:
            rows.append({"name": f"{r.plural}/status", "singularName": "",
                         "namespaced": r.namespaced, "kind": r.kind,
                         "verbs": ["get", "patch", "update"]})
    if version == "v1":
        rows.extend({"name": r.plural, "singularName": r.kind.lower(),
                     "namespaced": r.namespaced, "kind": r.kind, "verbs": ["create"]}
                    for r in REVIEWS if r.group == group)
    if not rows:
        return None
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": rows}


# --- aggregated discovery (apidiscovery.k8s.io/v2) --------------------------------------------

_AGGREGATED = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"


def aggregated_version(accept: str) -> str | None:
    """The apidiscovery version an Accept header asks for first (kubectl's default:
    v2, then v2beta1), or None for the plain documents."""
    for _media, params in media_ranges(accept):
        if params.get("g") == "apidiscovery.k8s.io" and \
                params.get("as") == "APIGroupDiscoveryList" and params.get("v") in ("v2",
                                                                                 "v2beta1"):
            return params["v"]
    return None


def aggregated_media_type(version: str) -> str:
    return _AGGREGATED.format(v=version)


def _resource_doc(group: str, version: str, rows: list[dict[str, Any]]) -> list[Any]:
    """One version's resources as APIResourceDiscovery, subresources under their parent."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row["name"]
        kind = {"group": row.get("group", group), "version": row.get("version", version),
                "kind": row["kind"]}
        if "/" not in name:
            doc: dict[str, Any] = {
                "resource": name, "responseKind": kind,
                "scope": "Namespaced" if row["namespaced"] else "Cluster",
                "singularResource": row.get("singularName", ""), "verbs": row["verbs"]}
            for key in ("shortNames", "categories"):
                if row.get(key):
                    doc[key] = row[key]
            out[name] = doc
        else:
            parent, sub = name.split("/", 1)
            out.setdefault(parent, {"resource": parent, "verbs": []}).setdefault(
                "subresources", []).append({"subresource": sub, "responseKind": kind,
                                            "verbs": row["verbs"]})
    return list(out.values())


@functools.cache
def aggregated_bytes(core: bool, version: str) -> bytes:
    """The document below, encoded once: the kinds are fixed for the process, and kubectl
    asks at the start of nearly every command."""
    return orjson.dumps(aggregated(core, version))


def aggregated(core: bool, version: str) -> dict[str, Any]:
    """/api (core) or /apis as one APIGroupDiscoveryList: every group, version and
    resource in one answer, as kubectl asks first (one request instead of one a group)."""
    items = []
    for group in ([""] if core else groups()):
        if group:
            doc = api_group(group)
            versions = [v["version"] for v in (doc or {}).get("versions", [])]
        else:
            versions = ["v1"]
        vdocs = []
        for v in versions:
            rl = resource_list(group, v)
            vdocs.append({"version": v, "resources": _resource_doc(
                group, v, rl["resources"] if rl else []), "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None},
                      "versions": vdocs})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}
