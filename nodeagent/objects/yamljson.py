"""Untrusted YAML and JSON documents as JSON values, within caps on depth and size.

YAML has types JSON lacks (timestamps, sets, binary, non-string keys) and allows
strings JSON cannot carry (lone surrogates).  Dates become RFC 3339 text and keys
become strings, as sigs.k8s.io/yaml does; anything else is a ValueError naming it.
The API (request bodies) and nodectl (manifests) share these readers.

Caps, because a few hundred bytes can otherwise cost seconds and gigabytes:

- **Aliases** are allowed (people use anchors in manifests) but the document's
  *expanded* size is computed from the parser's events before anything is built,
  and a document that would expand past ``max_expanded_bytes`` is refused: a
  "billion laughs" of 400 bytes stops after a few thousand events, not at 1.2 GB.
  go-yaml, under kubectl and the apiserver, refuses excessive aliasing the same way.
- **Nesting** deeper than MAX_DEPTH (400) is refused, for YAML from the events
  (PyYAML's composer recurses and would raise RecursionError) and for JSON by an
  iterative walk (orjson reads 1024 levels).
- **Width**: a large JSON document may hold at most MAX_VALUES arrays, objects and
  elements, counted before it is parsed (``count_values``).  Parsing runs in one C
  call that holds the GIL, so a worker thread is no shelter: a 3 MiB body of a million
  empty arrays held every thread, the event loop's too, for 150 ms.  The count itself
  moves in short steps, which let the loop run between them.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from typing import Any

import orjson
import yaml

__all__ = ["MAX_DEPTH", "MAX_VALUES", "DocumentError", "check_depth", "count_values", "load_json",
           "load_yaml", "yaml_to_json"]

MAX_DEPTH = 400
MAX_VALUES = 200_000
_STRUCTURE = re.compile(rb'["\[{,]')
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it


class DocumentError(ValueError):
    """A document that is not valid, or over a cap; the message says which."""


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
        raise DocumentError(f"error converting YAML to JSON: {exc}") from exc


def _check_events(text: str | bytes, max_expanded_bytes: int, max_depth: int) -> None:
    """Walk the parser's events (libyaml's parser does not recurse) and refuse a stream
    whose expanded size or depth is over the caps, before any node is built."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded bytes, depth)
    stack: list[list[Any]] = []  # open collections: [anchor, expanded bytes, depth below]
    total = 0

    def add(size: int, depth: int) -> None:
        nonlocal total
        if len(stack) + depth > max_depth:
            raise DocumentError(f"the document is nested deeper than {max_depth} levels")
        if stack:
            stack[-1][1] += size
            stack[-1][2] = max(stack[-1][2], depth)
        total += size
        if total > max_expanded_bytes:
            raise DocumentError(f"the document expands to more than {max_expanded_bytes} bytes "
                                "(through its aliases)")

    for ev in yaml.parse(text, Loader=_Loader):
        if isinstance(ev, yaml.ScalarEvent):
            size = len(ev.value) + 1
            if ev.anchor:
                anchors[ev.anchor] = (size, 0)
            add(size, 0)
        elif isinstance(ev, yaml.AliasEvent):
            if ev.anchor not in anchors:
                raise DocumentError(f"found undefined alias {ev.anchor!r}")
            size, depth = anchors[ev.anchor]
            # An alias repeats what its anchor holds: count it again, not the bytes that
            # were already counted inside.
            add(size, depth)
        elif isinstance(ev, yaml.CollectionStartEvent):
            if len(stack) >= max_depth:
                raise DocumentError(f"the document is nested deeper than {max_depth} levels")
            stack.append([ev.anchor, 1, 0])
        elif isinstance(ev, yaml.CollectionEndEvent):
            anchor, size, below = stack.pop()
            if anchor:
                anchors[anchor] = (size, below + 1)
            # The collection's contents were added to ``total`` as they came; only its own
            # node, and its size and depth into the parent's, remain.
            if stack:
                stack[-1][1] += size
                stack[-1][2] = max(stack[-1][2], below + 1)
            total += 1


def load_yaml(text: str | bytes, *, max_expanded_bytes: int,
              max_depth: int = MAX_DEPTH) -> list[Any]:
    """The non-empty documents of a YAML stream as JSON values.  Raises DocumentError for
    bad YAML, a stream over the caps, or values with no JSON form."""
    try:
        _check_events(text, max_expanded_bytes, max_depth)
        docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:  # kept as the cause: nodectl shows its line and column
        raise DocumentError(f"error converting YAML to JSON: {exc}") from exc
    return [yaml_to_json(d) for d in docs]


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raises DocumentError if ``value`` nests lists and objects deeper than ``max_depth``.
    Iterative: a deep value cannot exhaust the stack here."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise DocumentError(f"the document is nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))


def count_values(raw: bytes, limit: int) -> int:
    """How many arrays, objects and separated elements ``raw`` (JSON) holds, counting no
    further than just past ``limit``.  Strings are skipped whole (their brackets and
    commas are text); every step is short, so a thread running this lets the event loop
    have the GIL between steps."""
    i, count = 0, 0
    search, find = _STRUCTURE.search, raw.find
    while True:
        m = search(raw, i)
        if m is None:
            return count
        at = m.start()
        if raw[at] == 0x22:  # a string: to its closing quote (one not escaped)
            j = at + 1
            while True:
                j = find(b'"', j)
                if j < 0:
                    return count  # unterminated: the parser says so
                k = j - 1
                while raw[k] == 0x5C:
                    k -= 1
                if (j - 1 - k) % 2 == 0:
                    break
                j += 1
            i = j + 1
        else:
            count += 1
            if count > limit:
                return count
            i = at + 1


def load_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH,
              max_values: int | None = None) -> Any:
    """A JSON document, at most ``max_depth`` deep and, when ``max_values`` is given, with
    at most that many values (checked before parsing).  Raises DocumentError."""
    data = raw.encode() if isinstance(raw, str) else raw
    if max_values is not None and count_values(data, max_values) > max_values:
        raise DocumentError(f"the document holds more than {max_values} values")
    gc_was = gc.isenabled()
    gc.disable()  # the parse is one call; a collection inside it would lengthen it
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DocumentError(f"invalid JSON: {exc}") from exc
    finally:
        if gc_was:
            gc.enable()
    if data.count(b"[") + data.count(b"{") > max_depth:  # else it cannot be that deep
        check_depth(value, max_depth)
    return value
