"""YAML documents as JSON values, the way Kubernetes' YAML reader converts them.

YAML has types JSON lacks (timestamps, sets, binary, non-string keys) and allows
strings JSON cannot carry (lone surrogates).  Dates become RFC 3339 text and keys
become strings, as sigs.k8s.io/yaml does; anything else is a ValueError naming it.
The API (YAML request bodies) and nodectl (manifests) share this one conversion.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

__all__ = ["yaml_to_json"]


def _scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"YAML value of type {type(value).__name__} has no JSON form")


def yaml_to_json(doc: Any) -> Any:
    try:
        return orjson.loads(orjson.dumps(doc, default=_scalar, option=orjson.OPT_NON_STR_KEYS))
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise ValueError(f"error converting YAML to JSON: {exc}") from None
