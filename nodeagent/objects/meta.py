"""The base model, ObjectMeta and the small types every kind shares.

Structure (field names, types, unknown fields) is checked by pydantic when a
manifest is decoded; meaning (names, ranges, cross-field rules) is checked
afterwards by each kind's ``validate`` into :class:`FieldError` lists.  This
is the split Kubernetes makes between strict decoding (400 BadRequest) and
validation (422 Invalid), and it keeps messages in Kubernetes' words.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from nodeagent.objects.quantity import QuantityError, parse_quantity
from nodeagent.objects.validation import (
    FieldError,
    Path,
    dns1123_subdomain_errors,
    validate_annotations,
    validate_labels,
)


@dataclass(frozen=True)
class PatchMerge:
    """A field's strategic-merge-patch strategy, as Kubernetes' Go struct tags give it
    (``patchStrategy:"merge" patchMergeKey:"name"``): a list merged element by element,
    keyed by ``key`` (None for a list of scalars, merged as a set).  ``retain_keys`` marks
    the elements (or, without ``merge``, the object) whose patches may carry
    ``$retainKeys``.  Read by the patcher (api/strategicpatch.py) and by OpenAPI."""

    key: str | None = None
    merge: bool = True
    retain_keys: bool = False


def merge_by(key: str | None = None, *, retain_keys: bool = False) -> PatchMerge:
    return PatchMerge(key, True, retain_keys)


RETAIN_KEYS = PatchMerge(None, merge=False, retain_keys=True)


def patch_merge_of(info: FieldInfo) -> PatchMerge | None:
    """A model field's PatchMerge, if it has one."""
    return next((m for m in info.metadata if isinstance(m, PatchMerge)), None)


class Model(BaseModel):
    """Strict camelCase model: unknown fields and wrong types are errors."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
        validate_default=False,
    )

    def dump(self) -> dict[str, Any]:
        out = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        for loc, value in _KEPT.get(id(self), ()):
            parent: Any = out
            for seg in loc[:-1]:
                parent = parent.setdefault(seg, {}) if isinstance(parent, dict) else parent[seg]
            parent[loc[-1]] = value
        return out


Kept = tuple[tuple[tuple[str | int, ...], Any], ...]
# Kubernetes' fields a root model was decoded without (codec.decode), kept as the client
# sent them, by the model's id while it lives: (path, value)s that dump() puts back.  Not
# a private attribute: pydantic would make one for every nested model (a pod decoded
# twice as slowly).
_KEPT: dict[int, Kept] = {}


def keep(model: Model, kept: Kept) -> None:
    """Have ``model.dump()`` carry ``kept``, for as long as the model lives."""
    if kept:
        _KEPT[id(model)] = kept
        weakref.finalize(model, _KEPT.pop, id(model), None)


def _canonical_quantity(v: Any) -> str:
    try:
        return parse_quantity(v).canonical()
    except QuantityError as exc:
        raise ValueError(str(exc)) from exc


# A quantity is accepted as text or number and stored in canonical text.
QuantityStr = Annotated[str, BeforeValidator(_canonical_quantity)]
IntOrString = int | str
ResourceList = dict[str, QuantityStr]


class OwnerReference(Model):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(Model):
    manager: str | None = None
    operation: str | None = None
    api_version: str | None = None
    time: str | None = None
    fields_type: str | None = None
    fields_v1: dict[str, Any] | None = None
    subresource: str | None = None


class ObjectMeta(Model):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: Annotated[list[OwnerReference] | None, merge_by("uid")] = None
    finalizers: Annotated[list[str] | None, merge_by()] = None
    managed_fields: list[ManagedFieldsEntry] | None = None
    self_link: str | None = None


class LabelSelectorRequirement(Model):
    key: str
    operator: str
    values: list[str] | None = None


class LabelSelector(Model):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class ObjectReference(Model):
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    api_version: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class LocalObjectReference(Model):
    name: str | None = None


def validate_meta(meta: ObjectMeta, namespaced: bool, name_check=dns1123_subdomain_errors,
                  path: Path | None = None) -> list[FieldError]:
    """ObjectMeta rules (apimachinery ValidateObjectMeta)."""
    p = path or Path("metadata")
    errs: list[FieldError] = []
    if not meta.name:
        if not meta.generate_name:
            errs.append(p.child("name").required("name or generateName is required"))
    else:
        errs.extend(p.child("name").invalid(meta.name, e) for e in name_check(meta.name))
    if meta.generate_name:
        # The generated suffix is 5 characters; the prefix must stay a valid name with it.
        probe = meta.generate_name + "abcde"
        errs.extend(p.child("generateName").invalid(meta.generate_name, e)
                    for e in name_check(probe))
    if namespaced and meta.namespace:
        from nodeagent.objects.validation import dns1123_label_errors
        errs.extend(p.child("namespace").invalid(meta.namespace, e)
                    for e in dns1123_label_errors(meta.namespace))
    if meta.generation is not None and meta.generation < 0:
        errs.append(p.child("generation").invalid(meta.generation,
                                                 "must be greater than or equal to 0"))
    errs.extend(validate_labels(meta.labels, p.child("labels")))
    errs.extend(validate_annotations(meta.annotations, p.child("annotations")))
    for i, ref in enumerate(meta.owner_references or []):
        rp = p.child("ownerReferences").index(i)
        if not ref.name:
            errs.append(rp.child("name").required())
        if not ref.uid:
            errs.append(rp.child("uid").required())
    if sum(1 for r in meta.owner_references or [] if r.controller) > 1:
        errs.append(p.child("ownerReferences").invalid(
            [r.name for r in meta.owner_references or [] if r.controller],
            "Only one reference can have Controller set to true"))
    return errs


def validate_selector(sel: LabelSelector | None, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    if sel is None:
        return errs
    errs.extend(validate_labels(sel.match_labels, path.child("matchLabels")))
    for i, e in enumerate(sel.match_expressions or []):
        ep = path.child("matchExpressions").index(i)
        from nodeagent.objects.validation import label_key_errors
        errs.extend(ep.child("key").invalid(e.key, m) for m in label_key_errors(e.key))
        if e.operator in ("In", "NotIn"):
            if not e.values:
                errs.append(ep.child("values").required(
                    "must be specified when `operator` is 'In' or 'NotIn'"))
        elif e.operator in ("Exists", "DoesNotExist"):
            if e.values:
                errs.append(ep.child("values").forbidden(
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(ep.child("operator").invalid(e.operator, "not a valid selector operator"))
    return errs


