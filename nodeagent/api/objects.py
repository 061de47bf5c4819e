"""Objects over the key-value store: the apiserver's generic registry.

Each object is stored as JSON under ``/registry/<plural>/[<namespace>/]<name>``
without its resourceVersion; the resourceVersion a client sees is the key's
mod revision, filled in on the way out (as the apiserver does over etcd).
Writes are compare-and-swap transactions on that revision, so two clients
updating the same object cannot both win: the loser gets 409 Conflict.  The
transactions are the same whether the store is one agent's or replicated by Raft.
"""

from __future__ import annotations

import base64
import builtins
import copy
import datetime as dt
import gc
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jsonpatch
import orjson
import trio

from nodeagent.api import encryption, podsecurity, serviceaccounts
from nodeagent.api.allocator import SERVICE_CIDR, Allocations, ServiceAllocator
from nodeagent.api.managedfields import (
    Conflict,
    FieldsError,
    Manager,
    apply_config,
    track_update,
)
from nodeagent.api.status import ApiError
from nodeagent.api.strategicpatch import PatchError, strategic_merge_patch
from nodeagent.logs import ThrottledLog
from nodeagent.objects import eventsv1
from nodeagent.objects.codec import (
    DecodeError,
    InvalidError,
    normalize,
    validate_create,
    validate_update,
)
from nodeagent.objects.kinds import NAMESPACES, PODS, Resource
from nodeagent.objects.selectors import Selector, SelectorError, parse_selector
from nodeagent.store import (
    CompactedError,
    Compare,
    Event,
    FutureRevisionError,
    KeyValue,
    KeyValueStore,
    Op,
    OpKind,
    StoreClosedError,
    StoreUnavailableError,
    Txn,
    TxnForbiddenError,
    TxnRejectedError,
    TxnResult,
    TxnTooLargeError,
    Watch,
)

__all__ = ["FieldSelector", "ObjectStore"]


_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: no accidental words
MAX_CAS_RETRIES = 16
INTERNAL = Manager("nodeagent")  # the agents' own controllers, writing in-process
# Subresources written by PUT and PATCH, and the part of the object each may change (the
# status; a pod's ephemeral containers, whose own rules say how: check_ephemeral_update).
WRITABLE_PARTS: dict[str, tuple[str, ...]] = {
    "status": ("status",), "ephemeralcontainers": ("spec", "ephemeralContainers")}


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_bad_objects = ThrottledLog(logging.getLogger("nodeagent.api"), interval_s=60.0)


def load_stored(value: bytes, key: str) -> dict[str, Any] | None:
    """Stored bytes -> object dict, or None (logged once a minute per key) for bytes that
    are not an object: the store refuses such writes (store.base.check_values), but a
    store written by an older version may hold one, and one bad object must not stop
    every list, watch and controller."""
    opened = encryption.unseal(key, value)
    if opened is None:
        _bad_objects.log(key, "skipping %s: it is sealed and no key of the encryption "
                         "configuration opens it", key)
        return None
    try:
        obj = orjson.loads(opened)
        if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            return obj
        reason = "not an object with metadata"
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
    _bad_objects.log(key, "skipping %s: the stored object does not decode (%s)", key, reason)
    return None


def decode_kv(kv: KeyValue) -> dict[str, Any]:
    """Stored bytes -> object dict with its resourceVersion; an ApiError naming the key
    for bytes that do not decode (see load_stored)."""
    obj = load_stored(kv.value, kv.key)
    if obj is None:
        raise ApiError(500, "InternalError", f"the object stored at {kv.key} does not decode; "
                       "lists and watches skip it")
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return obj


# Objects are stored without their resourceVersion (it is the key's mod revision, known only
# once written) and with metadata first, so serving one is a splice of bytes, not a decode
# and re-encode: a 10,000-pod list or a watch event to 100 watchers stays cheap.
_META_OPEN = b'{"metadata":{'


# The largest object stored, encoded: etcd's default --max-request-bytes, which is what
# bounds a Kubernetes object.  A client gets 413 before anything is proposed.
MAX_OBJECT_BYTES = 1536 * 1024


def encode_obj(obj: dict[str, Any], key: str) -> bytes:
    """The stored form of ``obj`` at ``key`` (sealed if it is a Secret and keys are set:
    api/encryption.py); ApiError 413 if it is over MAX_OBJECT_BYTES."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    data = orjson.dumps({"metadata": meta, **{k: v for k, v in obj.items() if k != "metadata"}})
    if len(data) > MAX_OBJECT_BYTES:
        raise ApiError(413, "RequestEntityTooLarge",
                       f"Request entity too large: the object is {len(data)} bytes, the limit "
                       f"is {MAX_OBJECT_BYTES}")
    return encryption.seal(key, data)


def raw_json(value: bytes, revision: int, key: str) -> bytes | None:
    """Stored bytes -> the object's JSON with ``metadata.resourceVersion`` = ``revision``;
    None for bytes that do not decode (see load_stored)."""
    if value.startswith(_META_OPEN):
        rv = b'"resourceVersion":"%d"' % revision
        rest = value[len(_META_OPEN):]
        return _META_OPEN + rv + (rest if rest.startswith(b"}") else b"," + rest)
    obj = load_stored(value, key)
    if obj is None:
        return None
    obj["metadata"]["resourceVersion"] = str(revision)
    return orjson.dumps(obj)


# --- field selectors -----------------------------------------------------------------------

FIELD_SELECTORS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "spec.nodeName": ("spec", "nodeName"),
    "status.phase": ("status", "phase"),
    "spec.restartPolicy": ("spec", "restartPolicy"),
    "spec.schedulerName": ("spec", "schedulerName"),
    "status.podIP": ("status", "podIP"),
    "spec.unschedulable": ("spec", "unschedulable"),
    "involvedObject.name": ("involvedObject", "name"),
    "involvedObject.kind": ("involvedObject", "kind"),
    "involvedObject.uid": ("involvedObject", "uid"),
    "involvedObject.namespace": ("involvedObject", "namespace"),
    "involvedObject.apiVersion": ("involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": ("involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": ("involvedObject", "fieldPath"),
    "reason": ("reason",),
    "reportingComponent": ("reportingComponent",),
    "source": ("source", "component"),
    "type": ("type",),
}
# events.k8s.io's names for the same fields (its Events are stored as core ones).
FIELD_SELECTORS.update({name: FIELD_SELECTORS[core] for name, core in
                        eventsv1.FIELD_SELECTOR_NAMES.items()})


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[tuple[str, ...], bool, str], ...]  # (path, equal?, value)

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        terms = []
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            op = next((o for o in ("!=", "==", "=") if o in part), None)
            if op is None:
                raise ApiError.bad_request(f'invalid field selector: "{part}": '
                                           "expected field=value or field!=value")
            field, value = part.split(op, 1)
            eq = op != "!="
            field = field.strip()
            if field not in FIELD_SELECTORS:
                raise ApiError.bad_request(
                    f'"{field}" is not a known field selector: only '
                    + ", ".join(f'"{f}"' for f in FIELD_SELECTORS))
            terms.append((FIELD_SELECTORS[field], eq, value.strip()))
        return cls(tuple(terms))

    def matches(self, obj: dict[str, Any]) -> bool:
        for path, eq, value in self.terms:
            cur: Any = obj
            for p in path:
                cur = cur.get(p) if isinstance(cur, dict) else None
            actual = "" if cur is None else (str(cur).lower() if isinstance(cur, bool) else str(cur))
            if (actual == value) != eq:
                return False
        return True


def parse_label_selector(text: str | None) -> Selector:
    try:
        return parse_selector(text or "")
    except SelectorError as exc:
        raise ApiError.bad_request(f"unable to parse requirement: {exc}") from None


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


# --- continue tokens -----------------------------------------------------------------------


def encode_continue(revision: int, last_key: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        d = orjson.loads(raw)
        return int(d["rv"]), str(d["start"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise ApiError.bad_request("continue key is not valid: could not decode") from None


class ObjectStore:
    """Create, read, update, patch, delete, list and watch API objects."""

    def __init__(self, store: KeyValueStore, *, service_cidr: str = SERVICE_CIDR) -> None:
        self.store = store
        self.allocator = ServiceAllocator(store, service_cidr)
        # Pods get their ServiceAccount's token mounted (serviceaccounts.py): on once the
        # cluster signs tokens, off with --insecure-http.
        self.service_account_tokens = False
        # DefaultTolerationSeconds: how long a pod stays on a node that went not-ready or
        # unreachable, given every pod that says nothing (the agent's
        # unreachable_toleration_s; Kubernetes' 300 s flag).
        self.default_toleration_s = 30

    def find(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when there is none."""
        kv = self.store.get(res.key(namespace, name))
        return _shown(res, decode_kv(kv)) if kv is not None else None

    # --- reads ----------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        kv = self.store.get(res.key(namespace, name))
        if kv is None:
            raise ApiError.not_found(res, name)
        return _shown(res, decode_kv(kv))

    def list(self, res: Resource, namespace: str | None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int = 0,
             continue_token: str | None = None, resource_version: str | None = None,
             raw: bool = False) -> dict[str, Any]:
        """A list response.  With ``raw`` the items are ``orjson.Fragment`` s (for serving)."""
        raw = raw and res.from_stored is None  # a view's items are converted, one by one
        sel = parse_label_selector(label_selector)
        fsel = FieldSelector.parse(field_selector)
        prefix = res.prefix(namespace)
        revision = 0
        start_after: str | None = None
        if continue_token:
            revision, start_after = decode_continue(continue_token)
            if not start_after.startswith(prefix):
                raise ApiError.bad_request("continue key is not valid: does not match the list")
        elif resource_version not in (None, "", "0"):
            revision = _parse_rv(resource_version)
        items: list[Any] = []
        filtered = not sel.empty() or bool(fsel.terms)
        more = False
        last_key = None
        try:
            while True:
                want = (limit - len(items)) if limit else 0
                chunk, chunk_more, revision = self.store.range(
                    prefix, start_after=start_after, limit=max(want, 64) if limit else 0,
                    revision=revision)
                for kv in chunk:
                    start_after = kv.key
                    obj: dict[str, Any] | None = None
                    if filtered or not raw:
                        obj = load_stored(kv.value, kv.key)
                        if obj is None:
                            continue
                        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
                    if obj is None or (sel.matches(_labels(obj)) and fsel.matches(obj)):
                        item: Any = _shown(res, obj) if obj is not None else None
                        if raw:
                            data = raw_json(kv.value, kv.mod_revision, kv.key)
                            if data is None:
                                continue
                            item = orjson.Fragment(data)
                        if limit and len(items) == limit:
                            more = True
                            break
                        items.append(item)
                        last_key = kv.key
                if more or not chunk_more:
                    if not more and chunk_more:
                        more = True
                    break
                if limit and len(items) >= limit:
                    more = True
                    break
        except CompactedError:
            if continue_token:
                raise ApiError.gone(
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue token in this response to retrieve the remainder of the "
                    "results. Continuing with the provided token results in an inconsistent "
                    "list - objects that were created, modified, or deleted between the time "
                    "the first chunk was returned and now may show up in the list.") from None
            raise ApiError.gone(f"too old resource version: {resource_version} "
                                f"({self.store.compact_revision + 1})") from None
        except FutureRevisionError as exc:
            raise ApiError(504, "Timeout", f"Too large resource version: {exc.revision}, "
                           f"current resource version: {exc.current}") from exc
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if more and last_key is not None:
            meta["continue"] = encode_continue(revision, last_key)
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta,
                "items": items}

    # --- create ---------------------------------------------------------------------------

    async def create(self, res: Resource, namespace: str | None, body: Any,
                     *, dry_run: bool = False, heavy: bool = False,
                     managed: builtins.list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """``heavy``: a large body (over HEAVY_BYTES), decoded and validated in a thread (a
        Pod of 3,000 containers held the event loop for 150 ms).  ``managed``: the managed
        fields of an apply that creates the object (a plain create records none)."""
        if res.stored_as is not None:
            stored = await off_loop(heavy, stored_form, res, body, namespace, None)
            return _shown(res, await self.create(res.stored_as, namespace, stored,
                                                 dry_run=dry_run, heavy=heavy, managed=managed))
        if res.has_status and res.kind != "Node" and isinstance(body, dict) and "status" in body:
            # Status is the system's to write, not the creator's (except a node reporting
            # itself): drop it before decoding so the defaults give the initial status.
            body = {k: v for k, v in body.items() if k != "status"}
        if res is PODS and self.service_account_tokens and isinstance(body, dict):
            meta = body.get("metadata")
            ns = meta.get("namespace") if isinstance(meta, dict) else None
            body = serviceaccounts.admit_pod(body, str(ns or namespace or "default"), self.find)
        if res is PODS and isinstance(body, dict):
            body = with_default_tolerations(body, self.default_toleration_s)
        model, obj = await off_loop(heavy, decode_object, res, body)
        meta = obj["metadata"]
        if res.namespaced:
            ns = meta.get("namespace") or namespace
            if namespace and meta.get("namespace") and meta["namespace"] != namespace:
                raise ApiError.bad_request("the namespace of the provided object does not match "
                                           "the namespace sent on the request")
            meta["namespace"] = model.metadata.namespace = ns
            self._check_namespace_open(str(ns))
        else:
            meta.pop("namespace", None)
            model.metadata.namespace = None
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
            model.metadata.name = meta["name"]
        await off_loop(heavy, validate_new, res, model)
        if res is PODS:
            self._admit_pod_security(obj)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("resourceVersion", None)
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        meta.pop("selfLink", None)
        meta.pop("managedFields", None)
        if managed:  # created by an apply (a plain create tracks nothing: managedfields.py)
            meta["managedFields"] = managed
        if res.has_status:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        key = res.key(meta.get("namespace"), meta["name"])
        requested_spec = copy.deepcopy(obj.get("spec"))
        for _ in range(MAX_CAS_RETRIES):
            if self.store.get(key) is not None:
                raise ApiError.already_exists(res, meta["name"])
            alloc = Allocations()
            if res.kind == "Service":  # each attempt claims from what was asked for
                obj["spec"] = copy.deepcopy(requested_spec)
                alloc = self.allocator.claim(obj)
            if dry_run:
                return obj
            result = await self.txn(Txn(
                (Compare(key, "create", "=", 0), *alloc.compares),
                (Op(OpKind.PUT, key, encode_obj(obj, key)), *alloc.ops),
            ))
            if result.succeeded:
                meta["resourceVersion"] = str(result.revision)
                return obj
            # Created meanwhile, or an address was claimed meanwhile: look again.
        raise ApiError.conflict(res, meta["name"])

    def _admit_pod_security(self, pod: dict[str, Any]) -> None:
        """Pod Security admission (podsecurity.py): 403 naming every violation of the
        level the pod's namespace enforces."""
        ns = pod["metadata"].get("namespace") or "default"
        kv = self.store.get(NAMESPACES.key(None, ns))
        level = podsecurity.level_of(decode_kv(kv) if kv is not None else None, ns)
        found = podsecurity.violations(pod, level)
        if found:
            name = pod["metadata"].get("name", "")
            raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: violates PodSecurity '
                           f'"{level}:latest": {", ".join(found)}',
                           details={"name": name, "kind": "pods"})

    def _check_namespace_open(self, ns: str) -> None:
        kv = self.store.get(NAMESPACES.key(None, ns))
        if kv is None:
            raise ApiError.not_found(NAMESPACES, ns)
        nso = decode_kv(kv)
        if (nso.get("status") or {}).get("phase") == "Terminating":
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace {ns} "
                           "because it is being terminated",
                           details={"name": ns, "kind": "namespaces"})

    # --- update ---------------------------------------------------------------------------

    async def update(self, res: Resource, namespace: str | None, name: str, body: Any,
                     *, subresource: str | None = None, dry_run: bool = False,
                     heavy: bool = False, manager: Manager = INTERNAL) -> dict[str, Any]:
        """PUT: replace the object (or its status), optimistic on resourceVersion if given."""
        if not isinstance(body, dict):
            raise ApiError.bad_request(f"the object provided is not a {res.kind}")
        meta = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
        if meta.get("name") not in (None, name):
            raise ApiError.bad_request(f'the name of the object ({meta.get("name")}) does not '
                                       f"match the name on the URL ({name})")
        if res.namespaced and meta.get("namespace") not in (None, namespace):
            raise ApiError.bad_request("the namespace of the provided object does not match "
                                       "the namespace sent on the request")
        rv = meta.get("resourceVersion")
        expected = _parse_rv(rv) if rv not in (None, "") else None
        return await self._update(res, namespace, name, lambda _cur: body, expected,
                                  subresource=subresource, dry_run=dry_run, heavy=heavy,
                                  manager=manager)

    async def patch(self, res: Resource, namespace: str | None, name: str, patch: Any,
                    content_type: str, *, subresource: str | None = None,
                    dry_run: bool = False, heavy: bool = False,
                    manager: Manager = INTERNAL) -> dict[str, Any]:
        if content_type == "application/json-patch+json":
            mutate = json_patch(patch)
            heavy = True  # its copies grow the object while it applies: in a thread
        elif content_type == "application/strategic-merge-patch+json":
            if not isinstance(patch, dict):
                raise ApiError.bad_request("strategic merge patch must be a JSON object")

            def mutate(cur: dict[str, Any]) -> Any:
                try:
                    return strategic_merge_patch(cur, patch, res.model)
                except PatchError as exc:
                    raise ApiError(exc.status, "BadRequest" if exc.status == 400
                                   else "Invalid", str(exc)) from None
        else:  # merge-patch (RFC 7386)
            if not isinstance(patch, dict):
                raise ApiError.bad_request("merge patch must be a JSON object")

            def mutate(cur: dict[str, Any]) -> Any:
                return merge_patch(cur, patch)
        meta = patch.get("metadata") if isinstance(patch, dict) else None
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        expected = _parse_rv(rv) if rv not in (None, "") else None
        return await self._update(res, namespace, name, mutate, expected,
                                  subresource=subresource, dry_run=dry_run, heavy=heavy,
                                  manager=manager)

    async def apply(self, res: Resource, namespace: str | None, name: str, config: Any, *,
                    manager: Manager, force: bool, dry_run: bool = False,
                    heavy: bool = False) -> tuple[dict[str, Any], bool]:
        """Server-side apply (managedfields.py): (the object, whether it was created)."""
        _check_apply_config(res, name, config)

        def merge(cur: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
            try:
                return strategic_merge_patch(cur, cfg, res.model)
            except PatchError as exc:
                raise ApiError(exc.status, "BadRequest" if exc.status == 400 else "Invalid",
                               str(exc)) from None

        def mutate(cur: dict[str, Any] | None) -> dict[str, Any]:
            try:
                return apply_config(cur, config, res.model, manager, res.api_version,
                                    now_rfc3339(), force, merge)
            except Conflict as exc:
                raise _conflict_error(res, name, exc) from None
            except FieldsError as exc:
                raise ApiError(422, "Invalid", f'{res.kind} "{name}" is invalid: '
                               f"metadata.managedFields: Invalid value: {exc}") from None

        for _ in range(MAX_CAS_RETRIES):
            if self.store.get(res.key(namespace, name)) is None:
                obj = mutate(None)
                managed = obj["metadata"].pop("managedFields")
                obj["metadata"]["name"] = name
                try:
                    return await self.create(res, namespace, obj, dry_run=dry_run, heavy=heavy,
                                             managed=managed), True
                except ApiError as exc:
                    if exc.reason != "AlreadyExists":
                        raise
                    continue  # created meanwhile: applied to it instead
            try:
                return await self._update(res, namespace, name, mutate, None,
                                          subresource=manager.subresource, dry_run=dry_run,
                                          heavy=heavy, manager=manager), False
            except ApiError as exc:
                if exc.code != 404:
                    raise  # deleted meanwhile: created instead
        raise ApiError.conflict(res, name)

    async def _update(self, res: Resource, namespace: str | None, name: str, mutate,
                      expected_rv: int | None, *, subresource: str | None,
                      dry_run: bool, heavy: bool = False,
                      manager: Manager = INTERNAL) -> dict[str, Any]:
        if res.stored_as is not None:
            view, change = res, mutate

            def mutate(cur: dict[str, Any]) -> dict[str, Any]:
                old = _shown(view, cur)
                return stored_form(view, change(old), namespace, old)
            return _shown(view, await self._update(
                res.stored_as, namespace, name, mutate, expected_rv, subresource=subresource,
                dry_run=dry_run, heavy=heavy, manager=manager))
        key = res.key(namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = self.store.get(key)
            if kv is None:
                raise ApiError.not_found(res, name)
            if expected_rv is not None and kv.mod_revision != expected_rv:
                raise ApiError.conflict(res, name)
            def prepare(kv: KeyValue = kv) -> tuple[dict[str, Any], dict[str, Any] | None]:
                current = decode_kv(kv)
                return current, self._prepare_update(res, current, mutate(current), subresource,
                                                     manager)
            # A large object or patch is worked on in a thread (compare-and-swap below makes
            # a change meanwhile a retry, as ever).
            current, obj = await off_loop(heavy or len(kv.value) > HEAVY_BYTES, prepare)
            if obj is None:  # nothing changed: no write, same resourceVersion
                return current
            if subresource == "ephemeralcontainers":
                self._admit_pod_security(obj)  # a debugger is held to the namespace's level
            if dry_run:
                return obj
            if _finalized(obj):
                result = await self.txn(Txn(
                    (Compare(key, "mod", "=", kv.mod_revision),),
                    (Op(OpKind.DELETE, key), *self._release(res, current))))
            else:
                alloc = (self.allocator.claim(obj, current)
                         if res.kind == "Service" and subresource is None else Allocations())
                result = await self.txn(Txn(
                    (Compare(key, "mod", "=", kv.mod_revision), *alloc.compares),
                    (Op(OpKind.PUT, key, encode_obj(obj, key)), *alloc.ops)))
            if result.succeeded:
                obj["metadata"]["resourceVersion"] = str(result.revision)
                return obj
            if expected_rv is not None:
                raise ApiError.conflict(res, name)
        raise ApiError.conflict(res, name)

    def _prepare_update(self, res: Resource, current: dict[str, Any], desired: Any,
                        subresource: str | None, manager: Manager = INTERNAL
                        ) -> dict[str, Any] | None:
        if not isinstance(desired, dict):
            raise ApiError.bad_request(f"the object provided is not a {res.kind}")
        old_model, old = normalize(res, current)
        if subresource in WRITABLE_PARTS:
            # Only the subresource's part changes; the rest is kept from the stored object.
            desired = _with_part(current, desired, WRITABLE_PARTS[subresource])
        model, obj = decode_object(res, desired)
        meta, old_meta = obj["metadata"], old["metadata"]
        for fixed in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation"):
            if fixed in old_meta:
                meta[fixed] = old_meta[fixed]
            else:
                meta.pop(fixed, None)
        if old_meta.get("deletionTimestamp") and subresource is None:
            # Finalizers may only be removed once deletion started.
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise ApiError(422, "Invalid", f'{res.kind} "{meta["name"]}" is invalid: '
                               "metadata.finalizers: Forbidden: no new finalizers can be added "
                               "if the object is being deleted")
        model.metadata = type(model.metadata).model_validate(meta)
        if res.has_status and subresource is None and "status" in old:
            obj["status"] = old["status"]
        elif res.has_status and subresource is None:
            obj.pop("status", None)
        try:
            validate_update(res, model, old_model, subresource)
        except InvalidError as exc:
            raise ApiError.from_invalid(res, exc) from None
        # validate_update may normalise fields (a Service keeps its clusterIP).
        obj = {**model.dump(), "metadata": meta, **({"status": obj["status"]}
                                                     if "status" in obj else {})}
        if res.has_status and obj.get("spec") != old.get("spec"):
            meta["generation"] = int(old_meta.get("generation") or 1) + 1
        if not res.has_status:
            obj.pop("status", None)
        sent = desired.get("metadata") if isinstance(desired.get("metadata"), dict) else {}
        if "managedFields" not in sent:
            meta["managedFields"] = old_meta.get("managedFields")
        if manager.operation != "Apply" and meta.get("managedFields"):
            # An applied object: the fields this update changed are its manager's (managed
            # fields the writer sent replace the old ones first; [] clears them).
            try:
                meta["managedFields"] = track_update(
                    old, obj, res.model, Manager(manager.name, subresource=subresource),
                    res.api_version, now_rfc3339())
            except FieldsError as exc:
                raise ApiError(422, "Invalid", f'{res.kind} "{meta["name"]}" is invalid: '
                               f"metadata.managedFields: Invalid value: {exc}") from None
        if not meta.get("managedFields"):
            meta.pop("managedFields", None)
        meta.pop("resourceVersion", None)
        old_cmp = {**old, "metadata": {k: v for k, v in old_meta.items() if k != "resourceVersion"}}
        if obj == old_cmp:
            return None
        return obj

    # --- binding --------------------------------------------------------------------------

    async def bind(self, namespace: str, name: str, binding: Any) -> dict[str, Any]:
        """pods/binding: the scheduler's one way to set a pod's node (spec is otherwise
        immutable), once, with the PodScheduled condition."""
        target = binding.get("target") if isinstance(binding, dict) else None
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise ApiError(422, "Invalid", 'Binding "' + name + '" is invalid: target.name: '
                           "Required value")
        key = PODS.key(namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = self.store.get(key)
            if kv is None:
                raise ApiError.not_found(PODS, name)
            pod = decode_kv(kv)
            spec = pod.setdefault("spec", {})
            if pod["metadata"].get("deletionTimestamp"):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on pods/binding '
                               f'"{name}": pod {name} is being deleted, cannot be assigned to a host')
            if spec.get("nodeName"):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on pods/binding '
                               f'"{name}": pod {name} is already assigned to node '
                               f'"{spec["nodeName"]}"')
            spec["nodeName"] = node
            status = pod.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            status["conditions"] = [{"type": "PodScheduled", "status": "True",
                                     "lastTransitionTime": now_rfc3339()}, *conditions]
            pod["metadata"].pop("resourceVersion", None)
            result = await self.txn(Txn((Compare(key, "mod", "=", kv.mod_revision),),
                                              (Op(OpKind.PUT, key, encode_obj(pod, key)),)))
            if result.succeeded:
                pod["metadata"]["resourceVersion"] = str(result.revision)
                return pod
        raise ApiError.conflict(PODS, name)

    # --- delete ---------------------------------------------------------------------------

    async def delete(self, res: Resource, namespace: str | None, name: str, *,
                     grace_period_s: int | None = None, preconditions_uid: str | None = None,
                     preconditions_rv: str | None = None, dry_run: bool = False,
                     propagation: str | None = None) -> tuple[dict[str, Any], bool]:
        """Delete or start deleting.  Returns (object, gone now?).

        Objects with finalizers, and pods bound to a node with a grace period, get a
        deletionTimestamp and stay until their finalizers are removed (or the node's
        pod manager confirms the pod stopped).  A namespace turns Terminating and is
        emptied by the namespace controller.
        """
        if res.stored_as is not None:
            obj, gone = await self.delete(
                res.stored_as, namespace, name, grace_period_s=grace_period_s,
                preconditions_uid=preconditions_uid, preconditions_rv=preconditions_rv,
                dry_run=dry_run, propagation=propagation)
            return _shown(res, obj), gone
        key = res.key(namespace, name)
        for _ in range(MAX_CAS_RETRIES):
            kv = self.store.get(key)
            if kv is None:
                raise ApiError.not_found(res, name)
            obj = decode_kv(kv)
            meta = obj["metadata"]
            if preconditions_uid and meta.get("uid") != preconditions_uid:
                raise ApiError(409, "Conflict", f"Precondition failed: UID in precondition: "
                               f"{preconditions_uid}, UID in object meta: {meta.get('uid')}")
            if preconditions_rv and preconditions_rv != meta.get("resourceVersion"):
                raise ApiError.conflict(res, name)
            if res.kind == "Namespace":
                if name in ("default", "kube-system"):
                    raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this '
                                   "namespace may not be deleted")
                if meta.get("deletionTimestamp"):
                    return obj, False
                # Terminating now; the namespace controller empties it, then removes it.
                obj.setdefault("status", {})["phase"] = "Terminating"
                meta["deletionTimestamp"] = now_rfc3339()
                if dry_run:
                    return obj, False
                result = await self.txn(Txn((Compare(key, "mod", "=", kv.mod_revision),),
                                                  (Op(OpKind.PUT, key, encode_obj(obj, key)),)))
                if result.succeeded:
                    meta["resourceVersion"] = str(result.revision)
                    return obj, False
                continue
            if propagation not in (None, "Background", "Orphan", "Foreground"):
                raise ApiError.bad_request(f'propagationPolicy: Unsupported value: "{propagation}": '
                                           'supported values: "Foreground", "Background", "Orphan"')
            if propagation in ("Orphan", "Foreground"):
                # The garbage collector removes the finalizer once the dependents are
                # orphaned (Orphan) or gone (Foreground); then the object goes.
                finalizer = "orphan" if propagation == "Orphan" else "foregroundDeletion"
                if finalizer not in (meta.get("finalizers") or []):
                    meta["finalizers"] = [*(meta.get("finalizers") or []), finalizer]
            graceful = self._grace_for(res, obj, grace_period_s)
            if dry_run:
                return obj, graceful is None
            if graceful is None:
                result = await self.txn(Txn((Compare(key, "mod", "=", kv.mod_revision),),
                                                  (Op(OpKind.DELETE, key), *self._release(res, obj))))
                if result.succeeded:
                    meta["resourceVersion"] = str(result.revision)
                    return obj, True
                continue
            if meta.get("deletionTimestamp"):
                # Already being deleted: only a shorter grace period changes anything.
                old_grace = meta.get("deletionGracePeriodSeconds")
                if old_grace is None or graceful >= old_grace:
                    return obj, False
            meta["deletionTimestamp"] = (dt.datetime.now(dt.UTC) + dt.timedelta(
                seconds=graceful)).strftime("%Y-%m-%dT%H:%M:%SZ")
            meta["deletionGracePeriodSeconds"] = graceful
            result = await self.txn(Txn((Compare(key, "mod", "=", kv.mod_revision),),
                                              (Op(OpKind.PUT, key, encode_obj(obj, key)),)))
            if result.succeeded:
                meta["resourceVersion"] = str(result.revision)
                return obj, False
        raise ApiError.conflict(res, name)

    def _release(self, res: Resource, obj: dict[str, Any]) -> builtins.list[Op]:
        """Store writes that free what the object held (a Service's addresses)."""
        return self.allocator.release(obj) if res.kind == "Service" else []

    @staticmethod
    def _grace_for(res: Resource, obj: dict[str, Any], requested: int | None) -> int | None:
        """Seconds of grace, or None to delete at once."""
        finalizers = obj["metadata"].get("finalizers")
        if res.kind == "Pod":
            spec = obj.get("spec") or {}
            grace = requested if requested is not None else spec.get(
                "terminationGracePeriodSeconds", 30)
            grace = max(grace, 0)
            # A pod no node runs, or asked with grace 0 and no finalizers, goes at once.
            if (not spec.get("nodeName") or grace == 0) and not finalizers:
                return None
            return grace
        if finalizers:
            return 0
        return None

    # --- watch ----------------------------------------------------------------------------

    def watch(self, res: Resource, namespace: str | None,
              start_revision: int) -> tuple[Watch, builtins.list[Event]]:
        try:
            return self.store.watch(res.prefix(namespace), start_revision)
        except CompactedError:
            raise ApiError.gone(f"too old resource version: {start_revision - 1} "
                                f"({self.store.compact_revision + 1})") from None

    # --- helpers --------------------------------------------------------------------------

    async def txn(self, txn: Txn) -> TxnResult:
        """The store's transaction; a store that cannot take it (no Raft leader, or
        stopping) answers 503, which every caller already treats as a write to retry; one
        over the store's size cap 413."""
        try:
            return await self.store.txn(txn)
        except (StoreUnavailableError, StoreClosedError) as exc:
            raise ApiError(503, "ServiceUnavailable", str(exc)) from exc
        except TxnTooLargeError as exc:
            raise ApiError(413, "RequestEntityTooLarge", str(exc)) from None
        except TxnRejectedError as exc:
            raise ApiError.bad_request(str(exc)) from None
        except TxnForbiddenError as exc:
            raise ApiError(403, "Forbidden", f"this agent is not a server, and {exc}") from None

    async def read_barrier(self) -> None:
        """With a replicated store, wait until reads here see every write committed before
        the call (linearizable, as Kubernetes' reads through etcd); 503 when no leader
        answers.  A store of one agent has nothing to wait for."""
        barrier = getattr(self.store, "read_barrier", None)
        if barrier is None:
            return
        try:
            await barrier()
        except StoreUnavailableError as exc:
            raise ApiError(503, "ServiceUnavailable", str(exc)) from exc



def decode_object(res: Resource, body: Any) -> tuple[Any, dict[str, Any]]:
    """normalize() with its errors as the API answers them (400, 422)."""
    try:
        return normalize(res, body)
    except DecodeError as exc:
        raise ApiError.from_decode(exc) from None
    except InvalidError as exc:
        raise ApiError.from_invalid(res, exc) from None


def with_default_tolerations(pod: dict[str, Any], seconds: int) -> dict[str, Any]:
    """Kubernetes' DefaultTolerationSeconds admission: a NoExecute toleration of the
    not-ready and unreachable taints for ``seconds``, unless the pod tolerates them."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return pod
    have = spec.get("tolerations")
    if have is not None and not isinstance(have, list):
        return pod  # decoding will say what is wrong with it
    added = []
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(isinstance(t, dict) and t.get("effect") in (None, "", "NoExecute") and
                   (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
                   for t in have or []):
            added.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": seconds})
    if not added:
        return pod
    return {**pod, "spec": {**spec, "tolerations": [*(have or []), *added]}}


def stored_form(view: Resource, body: Any, namespace: str | None,
                old: dict[str, Any] | None) -> dict[str, Any]:
    """A view kind's object (an events.k8s.io Event), held to its own version's rules
    (a create's, or an update's of ``old``), in the form it is stored as."""
    assert view.to_stored is not None
    model, obj = decode_object(view, body)
    if view.namespaced and namespace and not model.metadata.namespace:
        model.metadata.namespace = namespace
    try:
        if old is None:
            validate_create(view, model)
        else:
            validate_update(view, model, decode_object(view, old)[0])
    except InvalidError as exc:
        raise ApiError.from_invalid(view, exc) from None
    return view.to_stored(obj)


def _shown(res: Resource, stored: dict[str, Any]) -> dict[str, Any]:
    """A stored object as ``res`` shows it (a view's conversion)."""
    return res.from_stored(stored) if res.from_stored is not None else stored


def validate_new(res: Resource, model: Any) -> None:
    """validate_create() with its errors as the API answers them (422)."""
    try:
        validate_create(res, model)
    except InvalidError as exc:
        raise ApiError.from_invalid(res, exc) from None

# Kubernetes' own cap on a JSON patch's operations (apiserver: maxJSONPatchOperations).
MAX_JSON_PATCH_OPS = 10_000
# What a patch may add while it applies, in bytes of JSON: a "copy" of a copy doubles the
# document each time, so 30 operations of a 900-byte patch would otherwise exhaust memory.
MAX_PATCH_GROWTH_BYTES = 2 * MAX_OBJECT_BYTES


def json_patch(patch: Any) -> Any:
    """RFC 6902: a function that applies ``patch`` to a current object, within the caps
    on operations and growth; ApiError 400 for a malformed patch, 422 for one that does
    not apply or grows past the cap."""
    if not isinstance(patch, list):
        raise ApiError.bad_request("json patch must be a JSON array of operations")
    if len(patch) > MAX_JSON_PATCH_OPS:
        raise ApiError(422, "Invalid", f"the json patch has {len(patch)} operations, more "
                       f"than the {MAX_JSON_PATCH_OPS} allowed")
    built: list[jsonpatch.JsonPatch] = []

    def operations() -> list[jsonpatch.JsonPatch]:
        """The parsed operations, made on first use (in the caller's worker thread: 10,000
        of them take longer than the event loop may be held)."""
        if not built:
            try:
                built.extend(jsonpatch.JsonPatch([op]) for op in patch)
            except (jsonpatch.InvalidJsonPatch, jsonpatch.JsonPointerException, TypeError,
                    AttributeError) as exc:
                raise ApiError.bad_request(f"invalid json patch: {exc}") from None
        return built

    def too_large() -> ApiError:
        return ApiError(422, "Invalid", "the json patch makes the object grow by more than "
                        f"{MAX_PATCH_GROWTH_BYTES} bytes")

    def mutate(cur: dict[str, Any]) -> Any:
        ops = operations()
        doc: Any = orjson.loads(orjson.dumps(cur))  # a copy: ``cur`` stays as stored
        grown = 0
        try:
            for raw, op in zip(patch, ops, strict=True):
                kind = raw.get("op")
                if kind == "copy":
                    grown += len(orjson.dumps(jsonpatch.JsonPointer(raw["from"]).resolve(doc)))
                elif kind in ("add", "replace"):
                    grown += len(orjson.dumps(raw.get("value")))
                if grown > MAX_PATCH_GROWTH_BYTES:
                    raise too_large()
                doc = op.apply(doc, in_place=True)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException,
                orjson.JSONEncodeError, TypeError, ValueError, KeyError, IndexError) as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an "
                           f"error in our request: {exc}") from None
        return doc
    return mutate


# Objects and bodies above this are decoded, patched and validated in a thread, so that no
# request holds the event loop for long (DESIGN: 50 ms).
HEAVY_BYTES = 64 * 1024


# One request's heavy work at a time: threads share the GIL with the event loop, and four
# large bodies parsed at once left the loop a fifth of it (a heartbeat took 370 ms).
_HEAVY_WORK = trio.CapacityLimiter(1)


async def off_loop(heavy: bool, fn: Any, *args: Any) -> Any:
    """``fn(*args)``: in the one worker thread for heavy work when ``heavy`` (parsing,
    decoding, validating, patching, freeing large bodies), else here."""
    if heavy:
        return await trio.to_thread.run_sync(_without_collections, fn, *args,
                                             limiter=_HEAVY_WORK)
    return fn(*args)


def _without_collections(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` with the cyclic collector held off.  A body of a million small lists
    made a million tracked objects in the worker thread, and a full collection over them
    ran there holding the GIL: the event loop, waiting for it, was held 50-75 ms (found by
    the fuzz tier).  The work here makes garbage with no cycles; the collector runs again
    after."""
    was = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if was:
            gc.enable()


def _finalized(obj: dict[str, Any]) -> bool:
    """Being deleted, and the last finalizer just went: the object goes now."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace":
        return False  # the namespace controller removes it once empty
    if obj.get("kind") == "Pod" and (obj.get("spec") or {}).get("nodeName") and \
            meta.get("deletionGracePeriodSeconds", 0) > 0:
        return False  # waits for its node to stop it
    return True


def _parse_rv(rv: Any) -> int:
    try:
        value = int(rv)
        if value < 0:
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise ApiError.bad_request(f'invalid resource version "{rv}"') from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _with_part(current: dict[str, Any], desired: dict[str, Any], path: tuple[str, ...]
               ) -> dict[str, Any]:
    """``current`` with the value at ``path`` taken from ``desired`` (absent there: absent)."""
    merged = copy.deepcopy(current)
    src: Any = desired
    dst = merged
    for key in path[:-1]:
        src = src.get(key) if isinstance(src, dict) else None
        dst = dst.setdefault(key, {})
    value = src.get(path[-1]) if isinstance(src, dict) else None
    dst.pop(path[-1], None)
    if value is not None:
        dst[path[-1]] = value
    return merged


def _check_apply_config(res: Resource, name: str, config: Any) -> None:
    """An apply configuration names its kind and object, and nothing of the server's."""
    if not isinstance(config, dict):
        raise ApiError.bad_request("an apply configuration is a YAML or JSON object")
    for field, want in (("apiVersion", res.api_version), ("kind", res.kind)):
        if not config.get(field):
            raise ApiError.bad_request(f"{field} must be set in an apply configuration")
        if config[field] != want:
            raise ApiError.bad_request(f"{field} {config[field]!r} does not match the "
                                       f"request's {want!r}")
    meta = config.get("metadata")
    if not isinstance(meta, dict) or meta.get("name") not in (None, name):
        raise ApiError.bad_request(f"metadata.name must be {name!r}, as on the URL")
    if meta.get("managedFields") is not None:
        raise ApiError.bad_request("metadata.managedFields must be nil in an apply "
                                   "configuration")
    stack = [config]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(key, str) and key.startswith("$"):
                raise ApiError.bad_request(f"{key!r}: patch directives have no place in an "
                                           "apply configuration")
            stack.append(value)


def _conflict_error(res: Resource, name: str, exc: Conflict) -> ApiError:
    """409 naming each field and its manager, as the apiserver words it."""
    owners = sorted({(m, v) for _, m, v in exc.fields})
    n = len(exc.fields)
    if n == 1:
        path, m, v = exc.fields[0]
        text = f'conflict with "{m}" using {v}: {path}'
    else:
        text = "conflicts with " + "; ".join(
            f'"{m}" using {v}:\n' + "\n".join(f"- {p}" for p, mm, vv in exc.fields
                                               if (mm, vv) == (m, v)) for m, v in owners)
    return ApiError(409, "Conflict", f"Apply failed with {n} conflict{'s' if n > 1 else ''}: "
                    f"{text}", details={
                        "name": name, "group": res.group, "kind": res.plural,
                        "causes": [{"reason": "FieldManagerConflict",
                                    "message": f'conflict with "{m}" using {v}',
                                    "field": p} for p, m, v in exc.fields]})
