"""OpenAPI v2 (``/openapi/v2``) and v3 (``/openapi/v3``, one document per group-version),
made from the models that decode the objects, so that what the documents say and what
the server accepts cannot drift apart.

kubectl reads them for four things: whether a kind's PATCH takes ``fieldValidation``
(then ``apply``, ``create -f`` and ``replace`` validate on the server), the patch
strategy of each field (``x-kubernetes-patch-strategy`` and ``-merge-key``, for
``apply``'s three-way patch), ``x-kubernetes-group-version-kind`` (to find a kind's
schema) and ``explain``'s descriptions.  Schema names are Kubernetes' own
(``io.k8s.api.core.v1.PodSpec``).

Documents are built once per process and served with an ETag and, for clients that
take it, gzip; v3 group-version documents are addressed by their hash, as Kubernetes
does, and such a URL is cached as immutable.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from nodeagent.api import openapiproto
from nodeagent.api.accept import media_ranges
from nodeagent.api.status import ApiError
from nodeagent.objects.descriptions import TYPES, describe
from nodeagent.objects.kinds import SERVED, Resource
from nodeagent.objects.meta import QuantityStr, patch_merge_of
from nodeagent.objects.protoschema import MESSAGES, members

__all__ = ["Document", "serve_openapi", "v2", "v3_document", "v3_root"]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
CORE = "io.k8s.api.core.v1"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# Where each models module's types live in Kubernetes' tree.
_PACKAGES = {
    "pod": CORE, "cluster": CORE, "service": CORE, "storage": CORE,
    "apps": "io.k8s.api.apps.v1", "networking": "io.k8s.api.networking.v1",
    "rbac": "io.k8s.api.rbac.v1", "meta": META, "replication": CORE,
    "discovery": "io.k8s.api.discovery.v1", "eventsv1": "io.k8s.api.events.v1",
}
# meta.py holds a few core/v1 types that every kind shares.
_CORE_IN_META = {"ObjectReference", "LocalObjectReference"}

# Types the models do not define: the list envelope, Status and the patch and delete
# bodies, in Kubernetes' shape.
_FIXED: dict[str, dict[str, Any]] = {
    f"{META}.ListMeta": {
        "description": "ListMeta describes metadata that synthetic resources must have, "
                       "including lists and various status objects.",
        "type": "object",
        "properties": {"continue": {"type": "string"}, "remainingItemCount":
                       {"type": "integer", "format": "int64"},
                       "resourceVersion": {"type": "string"}, "selfLink": {"type": "string"}}},
    f"{META}.Status": {
        "description": "Status is a return value for calls that don't return other objects.",
        "type": "object",
        "properties": {"apiVersion": {"type": "string"}, "code": {"type": "integer"},
                       "details": {"type": "object"}, "kind": {"type": "string"},
                       "message": {"type": "string"}, "metadata": {"type": "object"},
                       "reason": {"type": "string"}, "status": {"type": "string"}}},
    f"{META}.Patch": {
        "description": "Patch is provided to give a concrete name and type to the "
                       "Kubernetes PATCH request body.", "type": "object"},
    f"{META}.DeleteOptions": {
        "description": "DeleteOptions may be provided when deleting an API object.",
        "type": "object",
        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                       "dryRun": {"type": "array", "items": {"type": "string"}},
                       "gracePeriodSeconds": {"type": "integer", "format": "int64"},
                       "propagationPolicy": {"type": "string"},
                       "preconditions": {"type": "object", "properties": {
                           "resourceVersion": {"type": "string"},
                           "uid": {"type": "string"}}}}},
    f"{META}.WatchEvent": {
        "description": "Event represents a single event to a watched resource.",
        "type": "object", "required": ["type", "object"],
        "properties": {"object": {"type": "object"}, "type": {"type": "string"}}},
    INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string.",
        "type": "string", "format": "int-or-string"},
    QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number, such as "
                       "'100m' or '1Gi'.", "type": "string"},
}


def _describe_fixed() -> None:
    """The fixed schemas' fields are described as the models' are."""
    for name, schema in _FIXED.items():
        for prop, field in (schema.get("properties") or {}).items():
            desc = describe(name.rsplit(".", 1)[1], prop)
            if desc:
                field.setdefault("description", desc)


_describe_fixed()


def schema_name(model: type[BaseModel]) -> str:
    module = model.__module__.rsplit(".", 1)[-1]
    package = CORE if model.__name__ in _CORE_IN_META else _PACKAGES.get(
        module, f"io.nodeagent.{module}")
    return f"{package}.{model.__name__}"


_PROTO_TYPES = {"s": "string", "i": "integer", "b": "boolean", "y": "string",
                "Time": "string", "MicroTime": "string", "Quantity": "string"}


def _kept_fields(message: str, modelled: dict[str, Any]) -> dict[str, Any]:
    """Kubernetes' fields of the message of the same name that the model lacks: the
    server keeps them as sent (codec.decode), so the documents name them too, typed as
    far as the protobuf tables tell, their insides open."""
    if message not in MESSAGES:
        return {}
    fields = members(message)
    if not set(modelled) <= {*fields, "apiVersion", "kind"}:
        return {}  # a message of that name, but not this type (events.k8s.io's Event)
    out: dict[str, Any] = {}
    for name, f in fields.items():
        if name in modelled:
            continue
        scalar = _PROTO_TYPES.get(f.kind)
        item: dict[str, Any] = {"type": scalar} if scalar else {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        prop = {"type": "array", "items": item} if f.repeated else item
        out[name] = {**prop, "description": "Kept as sent: this server does not act on "
                                            "this field of Kubernetes'."}
    return out


def _description(model: type[BaseModel]) -> str:
    """The type's own description, else its docstring's first paragraph."""
    if model.__name__ in TYPES:
        return TYPES[model.__name__]
    doc = inspect.getdoc(model) or ""
    if not doc or doc == inspect.getdoc(BaseModel) or model.__doc__ is None:
        return ""
    return " ".join(doc.split("\n\n", 1)[0].split())


# The validator that makes a string a Quantity (objects/meta.py's QuantityStr).
_QUANTITY_CHECK = typing.get_args(QuantityStr)[1]


def _is_quantity(metadata: list[Any]) -> bool:
    return any(m is _QUANTITY_CHECK for m in metadata)


class _Builder:
    """Schemas for one document: ``v3`` picks the reference style (``allOf`` wrappers
    under ``#/components/schemas`` in v3, bare ``$ref`` under ``#/definitions`` in v2)."""

    def __init__(self, v3: bool) -> None:
        self.v3 = v3
        self.schemas: dict[str, dict[str, Any]] = {}

    def ref(self, name: str) -> dict[str, Any]:
        if name in _FIXED:
            self.schemas.setdefault(name, _FIXED[name])
        path = "#/components/schemas/" if self.v3 else "#/definitions/"
        return {"$ref": path + name}

    def field(self, ref: dict[str, Any]) -> dict[str, Any]:
        """A reference as a property: v3 wraps it so that it may carry siblings."""
        return {"allOf": [ref], "default": {}} if self.v3 else ref

    def model(self, model: type[BaseModel]) -> dict[str, Any]:
        name = schema_name(model)
        if name not in self.schemas:
            self.schemas[name] = {}  # reserved first: the models nest (JSONSchemaProps-like)
            self.schemas[name] = self._object(model)
        return self.ref(name)

    def _object(self, model: type[BaseModel]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for pyname, info in model.model_fields.items():
            name = info.alias or pyname
            prop = self.annotation(info.annotation, info.metadata)
            strategy = patch_merge_of(info)
            if "$ref" in prop and strategy is not None and self.v3:
                prop = {"allOf": [prop]}  # v2 keeps siblings of $ref, as Kubernetes' does
            if strategy is not None:
                parts = (["merge"] if strategy.merge else []) + \
                    (["retainKeys"] if strategy.retain_keys else [])
                prop["x-kubernetes-patch-strategy"] = ",".join(parts)
                if strategy.key:
                    prop["x-kubernetes-patch-merge-key"] = strategy.key
                    prop["x-kubernetes-list-type"] = "map"
                    prop["x-kubernetes-list-map-keys"] = [strategy.key]
                elif strategy.merge:
                    prop["x-kubernetes-list-type"] = "set"
            elif prop.get("type") == "array":
                prop["x-kubernetes-list-type"] = "atomic"
            desc = info.description or describe(model.__name__, name)
            if desc:
                prop = {**prop, "description": desc}
            props[name] = prop
            if info.is_required():
                required.append(name)
        props.update(_kept_fields(model.__name__, props))
        out: dict[str, Any] = {"type": "object", "properties": props}
        desc = _description(model)
        if desc:
            out["description"] = desc
        if required:
            out["required"] = required
        return out

    def annotation(self, ann: Any, metadata: list[Any] | None = None) -> dict[str, Any]:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            inner, *extra = typing.get_args(ann)
            return self.annotation(inner, list(extra))
        if origin is typing.Literal:
            values = typing.get_args(ann)
            return {"type": "string"} if all(isinstance(v, str) for v in values) \
                else {"type": "integer"}
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if set(args) == {int, str}:
                return self.field(self.ref(INT_OR_STRING))
            if len(args) == 1:
                return self.annotation(args[0], metadata)
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if models:
                return self.field(self.model(models[0]))
            return {}
        if origin is list:
            (item,) = typing.get_args(ann)
            return {"type": "array", "items": self.annotation(item)}
        if origin is dict:
            _, value = typing.get_args(ann)
            if value is Any:
                return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            return {"type": "object", "additionalProperties": self.annotation(value)}
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            return self.field(self.model(ann))
        if ann is str:
            return self.field(self.ref(QUANTITY)) if _is_quantity(metadata or []) \
                else {"type": "string"}
        if ann is bool:
            return {"type": "boolean"}
        if ann is int:
            return {"type": "integer", "format": "int64"}
        if ann is float:
            return {"type": "number", "format": "double"}
        return {"x-kubernetes-preserve-unknown-fields": True}

    def kind(self, res: Resource) -> str:
        self.model(res.model)
        name = schema_name(res.model)
        self.schemas[name]["x-kubernetes-group-version-kind"] = [
            {"group": res.group, "kind": res.kind, "version": res.version}]
        list_name = f"{name}List"
        self.schemas[list_name] = {
            "description": f"{res.kind}List is a list of {res.kind} objects.",
            "type": "object", "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "items": {"type": "array", "items": self.field(self.ref(name))},
                "metadata": self.field(self.ref(f"{META}.ListMeta"))},
            "x-kubernetes-group-version-kind": [
                {"group": res.group, "kind": res.list_kind, "version": res.version}]}
        return name


# --- operations -----------------------------------------------------------------------------


def _op_group(res: Resource) -> str:
    if not res.group:
        return "Core"
    return "".join(p.capitalize() for p in res.group.removesuffix(".k8s.io").split("."))


def _tag(res: Resource) -> str:
    group = res.group.removesuffix(".k8s.io").replace(".", "_") if res.group else "core"
    return f"{group}_{res.version}"


_QUERY = {
    "dryRun": "When present, indicates that modifications should not be persisted.",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is "
                    "making these changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in "
                       "the request containing unknown or duplicate fields: Ignore, Warn "
                       "or Strict.",
    "force": "Force is going to \"force\" Apply requests.",
    "pretty": "If 'true', then the output is pretty printed.",
    "labelSelector": "A selector to restrict the list of returned objects by their labels.",
    "fieldSelector": "A selector to restrict the list of returned objects by their fields.",
    "limit": "limit is a maximum number of responses to return for a list call.",
    "continue": "The continue option should be set when retrieving more results from the "
                "server.",
    "resourceVersion": "resourceVersion sets a constraint on what resource versions a "
                       "request may be served from.",
    "watch": "Watch for changes to the described resources.",
    "timeoutSeconds": "Timeout for the list/watch call.",
    "allowWatchBookmarks": "allowWatchBookmarks requests watch events with type "
                           "\"BOOKMARK\".",
    "sendInitialEvents": "`sendInitialEvents=true` may be set together with `watch=true`.",
    "gracePeriodSeconds": "The duration in seconds before the object should be deleted.",
    "propagationPolicy": "Whether and how garbage collection will be performed.",
}
_INTEGER_PARAMS = {"limit", "timeoutSeconds", "gracePeriodSeconds"}
_BOOL_PARAMS = {"watch", "allowWatchBookmarks", "sendInitialEvents", "force"}
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")


@dataclass
class _Ops:
    b: _Builder
    res: Resource
    kind_ref: dict[str, Any]
    list_ref: dict[str, Any]

    def param(self, name: str, where: str = "query") -> dict[str, Any]:
        kind = "integer" if name in _INTEGER_PARAMS else \
            "boolean" if name in _BOOL_PARAMS else "string"
        p: dict[str, Any] = {"name": name, "in": where, "uniqueItems": True}
        if where == "path":
            p["required"] = True
            p["description"] = f"{name} of the {self.res.kind}" if name == "name" else \
                "object name and auth scope, such as for teams and projects"
        else:
            p["description"] = _QUERY[name]
        if self.b.v3:
            p["schema"] = {"type": kind}
        else:
            p["type"] = kind
        return p

    def body(self, ref: dict[str, Any], types_: tuple[str, ...] = ("application/json",)
             ) -> dict[str, Any]:
        if self.b.v3:
            return {"requestBody": {"required": True, "content": {
                t: {"schema": ref} for t in types_}}}
        return {"consumes": list(types_), "parameters": [
            {"name": "body", "in": "body", "required": True, "schema": ref}]}

    def op(self, verb: str, action: str, what: str, ref: dict[str, Any],
           query: tuple[str, ...], body: dict[str, Any] | None = None,
           codes: tuple[str, ...] = ("200",), all_namespaces: bool = False) -> dict[str, Any]:
        res = self.res
        scope = "Namespaced" if res.namespaced and not all_namespaces else ""
        suffix = "ForAllNamespaces" if all_namespaces else ""
        op_id = f"{verb}{_op_group(res)}{res.version.capitalize()}{scope}{what}{suffix}"
        out: dict[str, Any] = {
            "tags": [_tag(res)], "operationId": op_id,
            "description": f"{action} {res.kind}",
            "parameters": [self.param(q) for q in query],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": res.group, "kind": res.kind,
                                                "version": res.version}}
        produces = ["application/json", "application/yaml"]
        if self.b.v3:
            out["responses"] = {c: {"description": "OK" if c == "200" else "Created",
                                    "content": {t: {"schema": ref} for t in produces}}
                                for c in codes}
        else:
            out["produces"] = produces
            out["schemes"] = ["https"]
            out["responses"] = {c: {"description": "OK" if c == "200" else "Created",
                                    "schema": ref} for c in codes}
        if body is not None:
            params = body.pop("parameters", [])
            out["parameters"] = params + out["parameters"]
            out.update(body)
        return out

    def paths(self) -> dict[str, dict[str, Any]]:
        res, b = self.res, self.b
        base = f"{res.group_path}/"
        coll = f"{base}namespaces/{{namespace}}/{res.plural}" if res.namespaced \
            else f"{base}{res.plural}"
        scope = [self.param("namespace", "path")] if res.namespaced else []
        status = b.ref(f"{META}.Status")
        list_q = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector",
                  "limit", "resourceVersion", "sendInitialEvents", "timeoutSeconds", "watch")
        write_q = ("dryRun", "fieldManager", "fieldValidation")
        patch_body = self.body(b.ref(f"{META}.Patch"), PATCH_TYPES)
        item_ops = {
            "get": self.op("read", "get", res.kind, self.kind_ref, ()),
            "put": self.op("replace", "put", res.kind, self.kind_ref, write_q,
                           self.body(self.kind_ref), ("200", "201")),
            "patch": self.op("patch", "patch", res.kind, self.kind_ref,
                             (*write_q, "force"), patch_body, ("200", "201")),
            "delete": self.op("delete", "delete", res.kind, status,
                              ("dryRun", "gracePeriodSeconds", "propagationPolicy"),
                              self.body(b.ref(f"{META}.DeleteOptions"))),
            "parameters": [self.param("name", "path"), *scope, self.param("pretty")],
        }
        out = {
            coll: {
                "get": self.op("list", "list", res.kind, self.list_ref, list_q),
                "post": self.op("create", "post", res.kind, self.kind_ref, write_q,
                                self.body(self.kind_ref), ("200", "201")),
                "delete": self.op("deletecollection", "deletecollection", f"Collection"
                                  f"{res.kind}", status, ("labelSelector", "fieldSelector")),
                "parameters": [*scope, self.param("pretty")]},
            f"{coll}/{{name}}": item_ops,
        }
        if res.has_status:
            out[f"{coll}/{{name}}/status"] = {
                "get": self.op("read", "get", f"{res.kind}Status", self.kind_ref, ()),
                "put": self.op("replace", "put", f"{res.kind}Status", self.kind_ref, write_q,
                               self.body(self.kind_ref), ("200", "201")),
                "patch": self.op("patch", "patch", f"{res.kind}Status", self.kind_ref,
                                 (*write_q, "force"),
                                 self.body(b.ref(f"{META}.Patch"), PATCH_TYPES)),
                "parameters": item_ops["parameters"]}
        if res.namespaced:
            out[f"{base}{res.plural}"] = {
                "get": self.op("list", "list", res.kind, self.list_ref, list_q,
                               all_namespaces=True),
                "parameters": [self.param("pretty")]}
        return out


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _build(v3: bool, group_versions: set[tuple[str, str]] | None) -> dict[str, Any]:
    b = _Builder(v3)
    paths: dict[str, Any] = {}
    for res in SERVED:
        if group_versions is not None and (res.group, res.version) not in group_versions:
            continue
        name = b.kind(res)
        ops = _Ops(b, res, b.ref(name), b.ref(f"{name}List"))
        paths.update(ops.paths())
    info = {"title": "Kubernetes", "version": "v1.37.0"}
    if v3:
        return {"openapi": "3.0.0", "info": info, "paths": dict(sorted(paths.items())),
                "components": {"schemas": dict(sorted(b.schemas.items())),
                               "securitySchemes": {"BearerToken": {
                                   "type": "apiKey", "in": "header",
                                   "name": "authorization"}}},
                "security": [{"BearerToken": []}]}
    return {"swagger": "2.0", "info": info, "paths": dict(sorted(paths.items())),
            "definitions": dict(sorted(b.schemas.items())),
            "securityDefinitions": {"BearerToken": {
                "type": "apiKey", "in": "header", "name": "authorization"}},
            "security": [{"BearerToken": []}]}


# --- documents as served --------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    body: bytes
    gzipped: bytes
    hash: str  # uppercase hex SHA-512, Kubernetes' ETag and v3 URL hash

    @property
    def etag(self) -> str:
        return f'"{self.hash}"'

    @classmethod
    def of(cls, obj: Any) -> Document:
        body = orjson.dumps(obj)
        return cls(body, gzip.compress(body, 6, mtime=0),
                   hashlib.sha512(body).hexdigest().upper())


@functools.cache
def v2() -> Document:
    return Document.of(_build(False, None))


def _group_versions() -> dict[str, tuple[str, str]]:
    return {_gv_path(r.group, r.version): (r.group, r.version) for r in SERVED}


@functools.cache
def v3_document(gv_path: str) -> Document | None:
    gv = _group_versions().get(gv_path)
    return Document.of(_build(True, {gv})) if gv is not None else None


@functools.cache
def v3_root() -> Document:
    paths = {}
    for path in sorted(_group_versions()):
        doc = v3_document(path)
        assert doc is not None
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={doc.hash}"}
    return Document.of({"paths": paths})



# client-go's OpenAPISchema() asks for the first; kube-openapi also serves the second.
V2_PROTOBUF = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
               openapiproto.MEDIA_TYPE)


@functools.cache
def v2_protobuf() -> Document:
    """The v2 document as gnostic's protobuf, under the JSON form's ETag (as kube-openapi
    tags every form of it)."""
    body = openapiproto.encode_document(_build(False, None))
    return Document(body, gzip.compress(body, 6, mtime=0), v2().hash)


def _v2_media(accept: str) -> str:
    """The first form asked that is served: JSON or protobuf."""
    if not accept.strip():
        return "application/json"
    for media, _ in media_ranges(accept):
        if media in ("*/*", "application/*", "application/json"):
            return "application/json"
        if media in V2_PROTOBUF:  # answered under the name Go's mime parser takes
            return openapiproto.MEDIA_TYPE
    raise ApiError(406, "NotAcceptable", "only application/json and "
                   f"{V2_PROTOBUF[0]} are served here; asked for {accept}")


def serve_openapi(request: Request, path: str) -> Response:
    """GET /openapi/v2, /openapi/v3 and /openapi/v3/<group-version>."""
    rest = path[len("/openapi/"):]
    media = "application/json"
    if rest == "v2":
        media = _v2_media(request.headers.get("accept", ""))
        doc = v2() if media == "application/json" else v2_protobuf()
    elif rest == "v3":
        doc = v3_root()
    elif rest.startswith("v3/"):
        found = v3_document(rest[3:])
        if found is None:
            raise ApiError(404, "NotFound", f"no OpenAPI v3 document for {rest[3:]}")
        doc = found
        asked = request.query_params.get("hash")
        if asked is not None and asked != doc.hash:
            return RedirectResponse(f"/openapi/v3/{rest[3:]}?hash={doc.hash}", 301)
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    immutable = rest.startswith("v3/") and request.query_params.get("hash") == doc.hash
    headers = {"ETag": doc.etag, "Vary": "Accept, Accept-Encoding",
               "Cache-Control": "public, immutable" if immutable
               else "no-cache, private"}
    if immutable:
        headers["Expires"] = "Thu, 31 Dec 2099 00:00:00 GMT"
    if doc.etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
        return Response(doc.gzipped, media_type=media, headers=headers)
    return Response(doc.body, media_type=media, headers=headers)
