"""Reading manifests for ``apply -f`` / ``create -f`` / ``delete -f``, and apply's 3-way patch.

A manifest source is a file, a directory (its .yaml/.yml/.json files, sorted,
not recursive, as kubectl without ``-R``) or ``-`` for stdin.  Documents are
YAML (which includes JSON); ``kind: List`` expands to its items.  Problems are
reported as :class:`ManifestError` with the file name, the way kubectl
reports them, never as a traceback.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from nodeagent.objects.kinds import Resource, by_kind, by_plural
from nodeagent.objects.yamljson import DocumentError, load_yaml

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A manifest cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Manifest:
    source: str
    obj: dict[str, Any]
    res: Resource


def read_sources(paths: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, text) for every file named by ``-f``; directories expand to their manifests."""
    out: list[tuple[str, str]] = []
    for path in paths:
        if path == "-":
            out.append(("STDIN", sys.stdin.read()))
        elif os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.endswith(MANIFEST_SUFFIXES))
            if not names:
                raise ManifestError(f'error: no objects passed to apply from directory "{path}"')
            out.extend(read_sources(tuple(os.path.join(path, n) for n in names)))
        else:
            try:
                with open(path, encoding="utf-8") as f:
                    out.append((path, f.read()))
            except FileNotFoundError:
                raise ManifestError(f'error: the path "{path}" does not exist') from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ManifestError(f'error: cannot read "{path}": {exc}') from None
    return out


# A manifest is the user's own file, so its cap is generous; it still stops an aliasing
# bomb from eating the machine.
MAX_MANIFEST_EXPANDED_BYTES = 64 * 1024 * 1024


def parse_documents(name: str, text: str) -> list[dict[str, Any]]:
    try:  # YAML's extra types (dates, int keys) as JSON, as kubectl converts them
        docs = load_yaml(text, max_expanded_bytes=MAX_MANIFEST_EXPANDED_BYTES)
    except DocumentError as exc:
        cause = exc.__cause__
        if not isinstance(cause, yaml.YAMLError):
            raise ManifestError(f"error: error parsing {name}: {exc}") from None
        mark = getattr(cause, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(cause, "problem", None) or str(cause)
        raise ManifestError(f'error: error parsing {name}: error converting YAML to JSON: '
                            f'yaml:{where}: {problem}') from None
    out: list[dict[str, Any]] = []
    for d in docs:
        if not isinstance(d, dict):
            raise ManifestError(f'error: error validating "{name}": error validating data: '
                                f"expected an object, got {type(d).__name__}")
        if d.get("kind") == "List" and isinstance(d.get("items"), list):
            out.extend(i for i in d["items"] if isinstance(i, dict))
        else:
            out.append(d)
    return out


def resolve(name: str, obj: dict[str, Any]) -> Resource:
    """Which resource a document is, with kubectl's wording when it is none."""
    missing = [f"{f} not set" for f in ("apiVersion", "kind") if not obj.get(f)]
    if missing:
        # kubectl's client-side check also names the unknown top-level fields (typos).
        known = {"apiVersion", "kind", "metadata", "spec", "status", "data", "stringData",
                 "binaryData", "type", "subsets", "immutable", "items", "involvedObject",
                 "reason", "message", "source", "count", "firstTimestamp", "lastTimestamp",
                 "eventTime", "action", "reportingComponent", "reportingInstance", "related",
                 "series"}
        extra = [f'unknown field "{k}"' for k in obj if k not in known]
        raise ManifestError(f'error: error validating "{name}": error validating data: '
                            f"[{', '.join(missing + extra)}]")
    kind, api_version = str(obj["kind"]), str(obj["apiVersion"])
    res = by_kind(kind)
    view = by_plural(*api_version.rpartition("/")[::2], res.plural) if res else None
    if view is not None and view.kind == kind:  # events.k8s.io/v1 Event: served over core's
        res = view
    if res is None or (api_version != res.api_version and api_version not in res.other_versions):
        obj_name = (obj.get("metadata") or {}).get("name", "")
        ns = (obj.get("metadata") or {}).get("namespace", "")
        raise ManifestError(f'error: resource mapping not found for name: "{obj_name}" '
                            f'namespace: "{ns}" from "{name}": no matches for kind "{kind}" '
                            f'in version "{api_version}"')
    return res


def load(paths: tuple[str, ...]) -> tuple[list[Manifest], list[str]]:
    """Every manifest named by ``-f``, and the errors of the ones that cannot be used."""
    manifests: list[Manifest] = []
    errors: list[str] = []
    try:
        sources = read_sources(paths)
    except ManifestError as exc:
        return [], [str(exc)]
    for name, text in sources:
        try:
            docs = parse_documents(name, text)
        except ManifestError as exc:
            errors.append(str(exc))
            continue
        for d in docs:
            try:
                manifests.append(Manifest(name, d, resolve(name, d)))
            except ManifestError as exc:
                errors.append(str(exc))
    if not manifests and not errors:
        errors.append("error: no objects passed to apply")
    return manifests, errors


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with apply's annotation recording it (without the annotation itself)."""
    clean = strip_last_applied(obj)
    meta = dict(clean.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations[LAST_APPLIED] = orjson.dumps(clean, option=orjson.OPT_SORT_KEYS).decode()
    meta["annotations"] = annotations
    return {**clean, "metadata": meta}


def strip_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {**obj, "metadata": meta}


def last_applied(live: dict[str, Any]) -> dict[str, Any]:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def apply_patch(previous: dict[str, Any], desired: dict[str, Any],
                live: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON merge patch taking the live object to ``desired``.

    Three-way as kubectl apply: fields the user set before (``previous``, from
    the annotation) and has now removed are deleted (null); fields set by
    others (status, defaults, controllers, admission) are left alone; a field of
    ``desired`` is sent when it changed since ``previous`` or the live object no
    longer has it.  Lists are replaced whole when sent, which is merge-patch
    semantics (kubectl's strategic merge would merge some lists by key): a list
    the user did not change and the live object still holds (with what admission
    added, such as a pod's token volume) is not sent.
    """
    live = live if isinstance(live, dict) else {}
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        old, now = previous.get(key), live.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            inner = apply_patch(old, value, now if isinstance(now, dict) else None)
            if inner or not isinstance(now, dict):
                patch[key] = inner
        elif value != old or not covered(value, now):
            patch[key] = value
    for key in previous:
        if key not in desired:
            patch[key] = None
    return patch


def covered(desired: Any, live: Any) -> bool:
    """Does ``live`` hold everything ``desired`` says?  Objects: each field covered; lists
    of objects: each item covered by one of live's (admission and defaults add fields and
    items); anything else: equal."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(covered(v, live.get(k))
                                              for k, v in desired.items())
    if isinstance(desired, list) and desired and all(isinstance(x, dict) for x in desired):
        return isinstance(live, list) and all(any(covered(x, y) for y in live) for x in desired)
    return bool(desired == live)
