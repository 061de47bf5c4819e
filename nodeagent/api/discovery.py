"""Discovery documents: /api, /apis, /api/v1, /apis/G/V, /version."""

from __future__ import annotations

import platform
import sys
from typing import Any

from nodeagent import __version__
from nodeagent.api.reviews import REVIEWS
from nodeagent.api.scale import SCALABLE
from nodeagent.objects.kinds import RESOURCES
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
_SUBRESOURCES: dict[str, tuple[tuple[str, str, list[str], str, str], ...]] = {
    "Pod": (("binding", "Binding", ["create"], "", ""),
            ("eviction", "Eviction", ["create"], "policy", "v1"),
            ("exec", "PodExecOptions", ["create", "get"], "", ""),
            ("log", "Pod", ["get"], "", "")),
    "ServiceAccount": (("token", "TokenRequest", ["create"], "authentication.k8s.io", "v1"),),
    "Namespace": (("finalize", "Namespace", ["update"], "", ""),),
}


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


def groups() -> list[str]:
    """Every API group served: the kinds' and the reviews' (create-only)."""
    return sorted(set(kind_groups()) | {r.group for r in REVIEWS})


def _group_doc(name: str) -> dict[str, Any]:
    version = next((r.version for r in RESOURCES if r.group == name), "v1")
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
    rows: list[dict[str, Any]] = []
    for r in RESOURCES:
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
