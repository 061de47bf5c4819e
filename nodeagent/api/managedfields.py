"""Field ownership (``metadata.managedFields``) and server-side apply, as the apiserver's
structured-merge-diff does them, on the models' merge keys.

Once an object is applied, every write records which fields its manager set: an update
(PUT, PATCH) takes the fields it changed from whoever held them; an apply owns exactly
the fields of its configuration.  Objects never applied carry no managed fields (the
apiserver tracks every create too, which doubled the bytes of a stored pod and halved
how fast 2,000 are listed); the first apply finds their fields owned by
"before-first-apply", the apiserver's own name for fields of unknown ownership.

An apply that would change a field another manager owns is a conflict
(409, naming each field and its owner) unless forced, which takes the field; a field an
applier set before and leaves out now is removed, unless someone else still owns it.

A field path is a tuple of FieldsV1 keys: ``f:name`` a struct field or map key,
``k:{"name":"web"}`` a list element by its merge key, ``v:"x"`` an element of a set.
Which is which comes from the models (api/strategicpatch.field_meta): a list with a
merge key is associative, one merged as a set is a set, any other list is atomic (one
field).  A map and a list element also own themselves (FieldsV1's ``.``), so that an
emptied map or a removed element has an owner to be removed by.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from nodeagent.api.strategicpatch import FieldMeta, Schema, field_meta

__all__ = ["Conflict", "FieldsError", "Manager", "apply_config", "entries_of",
           "manager_name", "track_update"]

Path = tuple[str, ...]
MAX_MANAGER_CHARS = 128
MAX_ENTRIES = 64  # managers recorded on one object
MAX_UPDATERS = 10  # Update entries kept apart; older ones merge into "ancient-changes"
ANCIENT = "ancient-changes"  # the apiserver's name for them
BEFORE_FIRST_APPLY = "before-first-apply"
# Fields tracked one by one in an object; a larger one is tracked by its top-level fields
# (spec, metadata, data ...), so tracking stays a few milliseconds per write.
MAX_PATHS = 5_000
MAX_DEPTH = 64
# Fields no manager owns: the object's identity and what the server keeps.
_UNOWNED_META = ("name", "namespace", "uid", "resourceVersion", "generation",
                 "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "managedFields", "selfLink")


class FieldsError(ValueError):
    """Managed fields a client sent that are not FieldsV1 (a 422 naming the field)."""


@dataclass(frozen=True)
class Manager:
    """Who writes, and how: ``Update`` (PUT, PATCH, create) or ``Apply``."""

    name: str
    operation: str = "Update"
    subresource: str | None = None


@dataclass
class Conflict(Exception):
    """Fields an apply would change that other managers own: (path text, manager, apiVersion)."""

    fields: list[tuple[str, str, str]]


def manager_name(query_value: str | None, user_agent: str) -> str:
    """The request's manager: ``fieldManager``, else the User-Agent up to its first '/'
    (kubectl/v1.37.1 ... -> kubectl), as the apiserver names it."""
    if query_value:
        return query_value
    return (user_agent.split("/", 1)[0] or "unknown")[:MAX_MANAGER_CHARS]


# --- field sets ----------------------------------------------------------------------------


def _owned_part(obj: dict[str, Any], subresource: str | None) -> dict[str, Any]:
    """What of the object managers own: status alone through the status subresource,
    everything else but status (and the server's metadata) through the object."""
    if subresource == "status":
        return {"status": obj["status"]} if isinstance(obj.get("status"), dict) else {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    meta = out.pop("metadata", None)
    if isinstance(meta, dict):
        owned = {k: v for k, v in meta.items() if k not in _UNOWNED_META}
        if owned:
            out["metadata"] = owned
    return out


def _key(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


_MISSING = object()
_NODE = object()  # a map's or element's own entry (FieldsV1's "."): present, no value


class _TooMany(Exception):
    pass


def field_values(obj: dict[str, Any], schema: Schema) -> dict[Path, Any]:
    """Every field path of the object, with its value (_NODE for a map or an element
    itself): one walk, so that comparing two objects' fields is linear in their size.
    Over MAX_PATHS, the top-level fields alone."""
    out: dict[Path, Any] = {}
    try:
        _walk_map(obj, schema, (), out)
    except _TooMany:
        return {(f"f:{k}",): v for k, v in obj.items()}
    return out


def _walk_map(d: dict[str, Any], schema: Schema, at: Path, out: dict[Path, Any]) -> None:
    for key, value in d.items():
        if len(out) > MAX_PATHS:
            raise _TooMany
        _walk(value, field_meta(schema, key), (*at, f"f:{key}"), out)


def _walk(value: Any, meta: FieldMeta, at: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and meta.schema is not None:  # a struct: its fields
        if not value:
            out[at] = _NODE  # an empty one is owned, as a map is: merged, never in conflict
        _walk_map(value, meta.schema, at, out)
    elif isinstance(value, dict):  # a map: itself and each key
        if len(out) + len(value) > MAX_PATHS:
            raise _TooMany
        out[at] = _NODE
        for k, v in value.items():
            out[(*at, f"f:{k}")] = v
    elif isinstance(value, list) and meta.strategy is not None and meta.strategy.merge:
        key = meta.strategy.key
        if key is not None and not all(isinstance(i, dict) and key in i for i in value):
            out[at] = value  # an element without its key: the list is one field
            return
        if len(out) + len(value) > MAX_PATHS:
            raise _TooMany
        for item in value:
            if key is None:
                out[(*at, f"v:{_key(item)}")] = item
            else:
                element = (*at, f"k:{_key({key: item[key]})}")
                out[element] = _NODE
                _walk_map(item, meta.schema, element, out)
    else:
        out[at] = value


def _get(obj: Any, path: Path) -> tuple[bool, Any]:
    cur = obj
    for step in path:
        kind, _, arg = step.partition(":")
        if kind == "f" and isinstance(cur, dict) and arg in cur:
            cur = cur[arg]
        elif kind == "k" and isinstance(cur, list):
            want = json.loads(arg)
            found = [i for i in cur if isinstance(i, dict)
                     and all(i.get(k) == v for k, v in want.items())]
            if not found:
                return False, None
            cur = found[0]
        elif kind == "v" and isinstance(cur, list) and (value := json.loads(arg)) in cur:
            cur = value
        else:
            return False, None
    return True, cur


def _remove_all(obj: dict[str, Any], paths: list[Path]) -> None:
    """Remove the fields, each parent looked up once (a long list loses many elements in
    one pass, not one scan per element); an element goes before its own fields."""
    by_parent: dict[Path, list[str]] = {}
    for p in paths:
        by_parent.setdefault(p[:-1], []).append(p[-1])
    for parent_path in sorted(by_parent, key=len):
        found, parent = _get(obj, parent_path)
        if not found:
            continue  # removed with an element or map above it
        steps = by_parent[parent_path]
        if isinstance(parent, dict):
            for step in steps:
                if step.startswith("f:"):
                    parent.pop(step[2:], None)
        elif isinstance(parent, list):
            keys = [json.loads(s[2:]) for s in steps if s.startswith("k:")]
            values = {_key(json.loads(s[2:])) for s in steps if s.startswith("v:")}
            parent[:] = [i for i in parent
                         if _key(i) not in values and not any(
                             isinstance(i, dict) and all(i.get(k) == v for k, v in want.items())
                             for want in keys)]


# --- FieldsV1 ------------------------------------------------------------------------------


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for step in path:
            node = node.setdefault(step, {})
    for path in paths:
        node = root
        for step in path:
            node = node[step]
        if node and "." not in node:
            node["."] = {}
    return root


def from_fields_v1(fields: Any) -> set[Path]:
    out: set[Path] = set()

    def walk(node: Any, at: Path) -> None:
        if not isinstance(node, dict):
            raise FieldsError("fieldsV1 is a tree of objects")
        if len(at) > MAX_DEPTH:
            raise FieldsError(f"fieldsV1 deeper than {MAX_DEPTH}")
        if not node and at:
            out.add(at)
        for key, child in node.items():
            if key == ".":
                out.add(at)
                continue
            if not isinstance(key, str) or key[:2] not in ("f:", "k:", "v:", "i:"):
                raise FieldsError(f"fieldsV1 key {str(key)[:40]!r} is not f:, k:, v: or i:")
            if key[:2] in ("k:", "v:"):
                try:
                    json.loads(key[2:])
                except ValueError:
                    raise FieldsError(f"fieldsV1 key {key[:40]!r}: not JSON") from None
            walk(child, (*at, key))
            if len(out) > MAX_PATHS:
                raise FieldsError(f"fieldsV1 of more than {MAX_PATHS} fields")

    walk(fields, ())
    return out


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[Path]
    subresource: str | None = None

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                               "apiVersion": self.api_version, "time": self.time,
                               "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(self.paths)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def entries_of(meta: dict[str, Any]) -> list[Entry]:
    """The object's managed fields, read (FieldsError if a client sent malformed ones)."""
    raw = meta.get("managedFields") or []
    if not isinstance(raw, list) or len(raw) > MAX_ENTRIES:
        raise FieldsError(f"managedFields is a list of at most {MAX_ENTRIES} entries")
    out = []
    for e in raw:
        if not isinstance(e, dict) or not isinstance(e.get("manager"), str) or \
                e.get("operation") not in ("Apply", "Update"):
            raise FieldsError("each managedFields entry names its manager and an operation "
                              "of Apply or Update")
        if e.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise FieldsError(f"fieldsType {e.get('fieldsType')!r}: only FieldsV1")
        out.append(Entry(e["manager"], e["operation"], str(e.get("apiVersion") or ""),
                         str(e.get("time") or ""), from_fields_v1(e.get("fieldsV1") or {}),
                         e.get("subresource") or None))
    return out


def _path_text(path: Path) -> str:
    """A path as the apiserver prints a conflict: .spec.containers[name="web"].image"""
    out = ""
    for step in path:
        kind, _, arg = step.partition(":")
        if kind == "f":
            out += f".{arg}"
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(arg).items()) + "]"
        else:
            out += f"[={arg}]"
    return out


def _mine(entries: list[Entry], who: Manager) -> Entry | None:
    return next((e for e in entries if e.manager == who.name and e.operation == who.operation
                 and e.subresource == who.subresource), None)


def _record(entries: list[Entry], who: Manager, paths: set[Path], api_version: str,
            now: str) -> list[Entry]:
    mine = _mine(entries, who)
    if mine is None:
        mine = Entry(who.name, who.operation, api_version, now, set(), who.subresource)
        entries = [*entries, mine]
    mine.paths, mine.api_version, mine.time = paths, api_version, now
    entries = [e for e in entries if e.paths]
    updaters = sorted((e for e in entries if e.operation == "Update" and e is not mine),
                      key=lambda e: e.time)
    if len(updaters) >= MAX_UPDATERS:  # the oldest merged, as the apiserver keeps them
        old = updaters[:len(updaters) - MAX_UPDATERS + 2]
        ancient = Entry(ANCIENT, "Update", api_version, old[-1].time,
                        set().union(*(e.paths for e in old)))
        entries = [e for e in entries if all(e is not o for o in old)] + [ancient]
    if len(entries) > MAX_ENTRIES:
        raise FieldsError(f"more than {MAX_ENTRIES} field managers on one object")
    return entries


# --- writes --------------------------------------------------------------------------------


def track_update(old: dict[str, Any] | None, new: dict[str, Any], schema: type[BaseModel],
                 who: Manager, api_version: str, now: str) -> list[dict[str, Any]]:
    """The managed fields after an update (or create: ``old`` None): the fields it changed
    or added are the updater's, taken from anyone who held them; removed fields are no
    one's.  ``new``'s metadata holds the entries to start from."""
    entries = entries_of(new.get("metadata") or {})
    before = field_values(_owned_part(old or {}, who.subresource), schema)
    after = field_values(_owned_part(new, who.subresource), schema)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    gone = before.keys() - after.keys()
    for e in entries:
        e.paths -= changed | gone
    if not changed:  # nothing of the updater's: no entry, no new time
        return [e.dump() for e in entries if e.paths]
    mine = _mine(entries, who)
    paths = (mine.paths if mine is not None else set()) | changed
    return [e.dump() for e in _record(entries, who, paths, api_version, now)]


def apply_config(live: dict[str, Any] | None, config: dict[str, Any], schema: type[BaseModel],
                 who: Manager, api_version: str, now: str, force: bool,
                 merge: Any) -> dict[str, Any]:
    """The object after applying ``config`` (``merge(live, config)`` merges the way a
    strategic patch does); raises Conflict.  Its metadata carries the new managed fields."""
    entries = entries_of((live or {}).get("metadata") or {})
    wanted = field_values(_owned_part(config, who.subresource), schema)
    new_set = set(wanted)
    current = field_values(_owned_part(live or {}, who.subresource), schema)
    if live is not None and not entries and current:
        entries = [Entry(BEFORE_FIRST_APPLY, "Update", api_version, now, set(current))]
    mine = _mine(entries, who)
    conflicts: list[tuple[str, str, str]] = []
    taken: dict[int, set[Path]] = {}
    for i, e in enumerate(entries):
        if e is mine:
            continue
        for p in sorted(e.paths & new_set):
            if wanted[p] is _NODE:
                continue  # a map or an element: shared, its fields decide
            if current.get(p, _MISSING) != wanted[p]:
                conflicts.append((_path_text(p), e.manager, e.api_version))
                taken.setdefault(i, set()).add(p)
    if conflicts and not force:
        raise Conflict(conflicts)
    for i, paths in taken.items():
        entries[i].paths -= paths
    result = merge(live, config) if live is not None else copy.deepcopy(config)
    others = set().union(*(e.paths for e in entries if e is not mine))
    held = {o[:n] for o in others for n in range(1, len(o) + 1)}  # and their ancestors
    _remove_all(result, [p for p in (mine.paths if mine else set()) - new_set
                         if p not in held])
    meta = result.setdefault("metadata", {})
    meta["managedFields"] = [e.dump() for e in _record(entries, who, new_set, api_version, now)]
    return result
