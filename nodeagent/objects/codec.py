"""Manifest dict -> validated, defaulted object dict, or errors with field paths.

Two kinds of failure, as in the Kubernetes apiserver:

- :class:`DecodeError` (HTTP 400 BadRequest): the bytes are not an object of
  this kind at all: an unknown field (strict field validation), a string where
  an integer belongs, the wrong apiVersion/kind.
- :class:`InvalidError` (HTTP 422 Invalid): it decodes, but breaks a rule
  (a port out of range, a selector that does not match the template's labels).
"""

from __future__ import annotations

import copy
from contextvars import ContextVar
from typing import Any

from pydantic import ValidationError

from nodeagent.objects.kinds import Resource
from nodeagent.objects.meta import Model, keep, validate_meta
from nodeagent.objects.networking import convert_v1beta1
from nodeagent.objects.protoschema import KINDS, MESSAGES, ProtoField, members
from nodeagent.objects.validation import FieldError, Path

__all__ = ["FIELD_VALIDATION", "DecodeError", "InvalidError", "decode", "normalize",
           "validate_create", "validate_update"]

# The request's fieldValidation (Strict, Warn or Ignore) and, for Warn, the warnings it
# gathers: set by the API server around a write, read where bodies are decoded (threads
# included: Trio runs them in a copy of the caller's context).
_NO_WARNINGS: list[str] = []  # outside a request: nothing gathers them (never appended)
FIELD_VALIDATION: ContextVar[tuple[str, list[str]]] = ContextVar(
    "field_validation", default=("Strict", _NO_WARNINGS))


class DecodeError(ValueError):
    """The body is not a decodable object of the kind; ``message`` reads like the apiserver's."""

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class InvalidError(ValueError):
    """The object decodes but is invalid; ``errors`` carry field paths."""

    def __init__(self, kind: str, name: str, errors: list[FieldError]) -> None:
        self.kind = kind
        self.name = name
        self.errors = errors
        joined = ", ".join(str(e) for e in errors)
        if len(errors) > 1:
            joined = "[" + joined + "]"
        super().__init__(f'{kind} "{name}" is invalid: {joined}')
        self.message = str(self)


_TYPE_WORDS = {
    "int_type": "integer", "int_from_float": "integer", "string_type": "string",
    "bool_type": "boolean", "dict_type": "object", "list_type": "array",
    "model_type": "object", "model_attributes_type": "object", "float_type": "number",
    "int_parsing": "integer",
}


def _is_branch_tag(seg: Any) -> bool:
    """pydantic names union branches in ``loc`` (``int``, ``str``, ``function-after[...]``)."""
    return isinstance(seg, str) and (seg in ("int", "str", "bool", "float", "none")
                                     or "[" in seg or "-" in seg)


def _format_loc(loc: tuple[Any, ...], tags: bool = True) -> str:
    """``loc`` as a field path; ``tags``: it may hold pydantic's union tags (left out)."""
    p = Path()
    for seg in loc:
        if tags and _is_branch_tag(seg):
            continue
        p = p.index(seg) if isinstance(seg, int) else p.child(str(seg))
    return str(p)


def _translate(kind: str, api_version: str, exc: ValidationError,
               res: Resource | None = None, data: Any = None) -> Exception:
    unknown: list[str] = []
    type_errs: dict[str, FieldError] = {}
    invalid: dict[str, FieldError] = {}
    for err in exc.errors(include_url=False):
        path = _format_loc(err["loc"])
        t = err["type"]
        value = err.get("input")
        if t == "extra_forbidden":
            loc = _data_loc(data, err["loc"]) if data is not None else \
                tuple(seg for seg in err["loc"] if not _is_branch_tag(seg))
            path = _format_loc(loc, tags=data is None)
            if res is None or not kubernetes_field(res, loc):
                unknown.append(path)  # Kubernetes' own would have been kept
        elif t == "missing":
            invalid.setdefault(path, FieldError(path, "FieldValueRequired", "", None, False))
        elif t in _TYPE_WORDS or t.endswith("_type"):
            prev = type_errs.get(path)
            want = _TYPE_WORDS.get(t, t.removesuffix("_type"))
            if prev is not None and want not in prev.detail:  # union: "integer or string"
                want = prev.detail.removeprefix("expected ") + " or " + want
            shown = value if isinstance(value, (str, int, float, bool)) or value is None \
                else type(value).__name__
            type_errs[path] = FieldError(path, "FieldValueTypeInvalid", f"expected {want}", shown)
        elif t == "literal_error":
            invalid[path] = FieldError(path, "FieldValueNotSupported",
                                       err["msg"].replace("Input should be", "supported values:"),
                                       value)
        else:
            msg = err["msg"].removeprefix("Value error, ")
            shown = value if isinstance(value, (str, int, float, bool)) else str(value)
            invalid[path] = FieldError(path, "FieldValueInvalid", msg, shown)
    if unknown or type_errs:
        parts = [f'unknown field "{u}"' for u in unknown]
        parts += [str(e) for e in type_errs.values()]
        return DecodeError(f'{kind} in version "{api_version}" cannot be handled as a {kind}: '
                           f"strict decoding error: {', '.join(parts)}",
                           list(type_errs.values()))
    return InvalidError(kind, "", list(invalid.values()))


def decode(res: Resource, data: Any) -> Model:
    """Decode a manifest dict into the kind's model, strictly (no defaults yet).

    Raises DecodeError or InvalidError.
    """
    if not isinstance(data, dict):
        raise DecodeError(f"the object provided is not a {res.kind}: expected a JSON object")
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if kind is not None and kind != res.kind:
        raise DecodeError(f'the kind "{kind}" in the body does not match "{res.kind}" '
                          "of the URL")
    if api_version is not None and api_version != res.api_version:
        if api_version in res.other_versions and res.kind == "Ingress":
            data = convert_v1beta1(data)
        else:
            raise DecodeError(f'the API version in the data ({api_version}) does not match the '
                              f"expected API version ({res.api_version})")
    data = {**data, "apiVersion": res.api_version, "kind": res.kind}
    if "metadata" not in data:
        data["metadata"] = {}
    try:
        return res.model.model_validate(data)
    except ValidationError as exc:
        extras = _extras(res, data, exc)
        directive, warnings = FIELD_VALIDATION.get()
        if extras is None or (extras[1] and directive == "Strict"):
            error = _translate(res.kind, res.version, exc, res, data)
            meta = data["metadata"]
            if isinstance(error, InvalidError) and isinstance(meta, dict):  # name the object
                error = InvalidError(error.kind, str(meta.get("name") or
                                                     meta.get("generateName") or ""), error.errors)
            raise error from exc
    # A field of Kubernetes' that the models lack is kept as sent, and said so (it is
    # stored and served, but nothing here acts on it).  Warn and Ignore drop the fields
    # that are not Kubernetes' (and say so, for Warn), as the apiserver does.
    kept, dropped = extras
    wrong = [e for loc in kept if (e := _kept_type_error(res, loc, _get(data, loc)))]
    if wrong:
        raise DecodeError(f'{res.kind} in version "{res.version}" cannot be handled as a '
                          f"{res.kind}: strict decoding error: "
                          f"{', '.join(str(e) for e in wrong)}", wrong)
    data = copy.deepcopy(data)
    found: list[tuple[tuple[str | int, ...], Any]] = []
    for loc in kept:
        found.append((loc, _remove(data, loc)))
        if warnings is not _NO_WARNINGS:
            warnings.append(f"{_format_loc(loc, False)}: kept, but this server does not act "
                            "on it")
    for loc in dropped:
        _remove(data, loc)
        if directive == "Warn":
            warnings.append(f'unknown field "{_format_loc(loc, False)}"')
    try:
        model = res.model.model_validate(data)
    except ValidationError as exc:
        raise _translate(res.kind, res.version, exc, res, data) from exc
    keep(model, tuple(found))
    return model


def _extras(res: Resource, data: dict[str, Any], exc: ValidationError
            ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
    """When every error is a field the models do not know: those that are Kubernetes'
    (kept) and those that are not (unknown); None if any error is of another type."""
    errors = exc.errors(include_url=False)
    if any(e["type"] != "extra_forbidden" for e in errors):
        return None
    locs = [_data_loc(data, e["loc"]) for e in errors]
    if not all(locs):
        return None
    kept = [loc for loc in locs if kubernetes_field(res, loc)]
    return kept, [loc for loc in locs if not kubernetes_field(res, loc)]


def kubernetes_field(res: Resource, loc: tuple[Any, ...]) -> bool:
    """Whether a field path is one of Kubernetes' own for the kind, by its protobuf
    messages; True also where they cannot tell (a field is dropped only when surely not
    Kubernetes')."""
    return _member(res, loc) is not False


def _member(res: Resource, loc: tuple[Any, ...]) -> ProtoField | bool:
    """The protobuf field a path names; False if surely none, True if the tables cannot
    tell (a message they do not describe)."""
    message = KINDS.get((res.api_version, res.kind))
    names = [seg for seg in loc if isinstance(seg, str)]
    for i, name in enumerate(names):
        if message is None or message not in MESSAGES:
            return True
        fields = members(message)
        if name not in fields:
            return False
        if i == len(names) - 1:
            return fields[name]
        message = fields[name].kind
    return True


# What JSON a kept field's protobuf type allows (bool is no integer here).
_KEPT_TYPES: dict[str, tuple[type, ...]] = {
    "s": (str,), "y": (str,), "Time": (str,), "MicroTime": (str,), "i": (int,),
    "b": (bool,), "Quantity": (str, int, float), "IntOrString": (str, int),
}


def _kept_type_error(res: Resource, loc: tuple[Any, ...], value: Any) -> FieldError | None:
    """A kept field is held to the JSON type Kubernetes gives it (a string, a number, a
    list, an object), so that no client reading it back meets a shape it cannot decode."""
    field = _member(res, loc)
    if value is None or not isinstance(field, ProtoField):
        return None
    items = value if field.repeated and isinstance(value, list) else [value]
    if field.repeated and not isinstance(value, list):
        want = "array"
    else:
        allowed = _KEPT_TYPES.get(field.kind, (dict,))
        want = "" if all(isinstance(v, allowed) and not (isinstance(v, bool) and bool not in
                                                        allowed) for v in items) else \
            {str: "string", int: "integer", bool: "boolean", dict: "object"}[allowed[0]]
    if not want:
        return None
    shown = value if isinstance(value, (str, int, float, bool)) else type(value).__name__
    return FieldError(_format_loc(loc, False), "FieldValueTypeInvalid", f"expected {want}",
                      shown)


def _data_loc(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """An error's path in the document: pydantic's ``loc`` without the names it gives
    union branches (told apart by what the document holds, not by their spelling)."""
    out: list[str | int] = []
    for seg in loc:
        if isinstance(data, dict) and isinstance(seg, str) and seg in data:
            data = data[seg]
        elif isinstance(data, list) and isinstance(seg, int) and 0 <= seg < len(data):
            data = data[seg]
        else:
            continue
        out.append(seg)
    return tuple(out)


def _get(data: Any, loc: tuple[Any, ...]) -> Any:
    for seg in loc:
        data = data[seg]
    return data


def _remove(data: Any, loc: tuple[Any, ...]) -> Any:
    for seg in loc[:-1]:
        data = data[seg]
    return data.pop(loc[-1])


def normalize(res: Resource, data: Any) -> tuple[Model, dict[str, Any]]:
    """Decode, default, and return the model and its canonical dict.  Does not validate."""
    obj = decode(res, data)
    defaults = getattr(obj, "apply_defaults", None)
    if defaults is not None:
        defaults()
    return obj, obj.dump()


def _name(obj: Model) -> str:
    meta = obj.metadata  # type: ignore[attr-defined]
    return meta.name or meta.generate_name or ""


def validate_create(res: Resource, obj: Model) -> None:
    """Raise InvalidError with every problem of a new object."""
    errs = validate_meta(obj.metadata, res.namespaced, res.name_check)  # type: ignore[attr-defined]
    for name in ("check", "check_create"):  # check_create: rules only a new object keeps
        check = getattr(obj, name, None)
        if check is not None:
            errs.extend(check())
    if errs:
        raise InvalidError(res.kind, _name(obj), _dedupe(errs))


def validate_update(res: Resource, obj: Model, old: Model, subresource: str | None = None
                    ) -> None:
    """Raise InvalidError for a bad update: the create rules plus immutable fields (a
    subresource that may change what the object's own update may not has its own rules)."""
    errs = validate_meta(obj.metadata, res.namespaced, res.name_check)  # type: ignore[attr-defined]
    check = getattr(obj, "check", None)
    if check is not None:
        errs.extend(check())
    upd = getattr(obj, "check_ephemeral_update" if subresource == "ephemeralcontainers"
                  else "check_update", None)
    if upd is not None:
        errs.extend(upd(old))
    if errs:
        raise InvalidError(res.kind, _name(obj), _dedupe(errs))


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    seen: set[str] = set()
    out = []
    for e in errs:
        s = str(e)
        if s not in seen:
            seen.add(s)
            out.append(e)
    return out
