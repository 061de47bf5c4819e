"""Watch streams: store events -> newline-delimited Kubernetes watch events.

``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": {...}}``
one per line, in revision order, none skipped.  With a selector, an object
that starts matching arrives as ADDED and one that stops matching as DELETED,
as the apiserver's watch cache does.  The stream ends after ``timeoutSeconds``
or when the client is too slow (its buffer overflowed); the client resumes
from the last resourceVersion it saw.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Any

import orjson
import trio

from nodeagent.api import protobuf as pb
from nodeagent.api.objects import FieldSelector, load_stored, raw_json
from nodeagent.api.tables import to_table
from nodeagent.logs import ThrottledLog
from nodeagent.objects.kinds import Resource
from nodeagent.objects.selectors import Selector
from nodeagent.store.local import Watch
from nodeagent.store.mvcc import Event, EventType, KeyValue

_unencodable = ThrottledLog(logging.getLogger("nodeagent.api"), interval_s=60.0)
Converter = Callable[[dict[str, Any]], dict[str, Any]]
BOOKMARK_INTERVAL_S = 60.0
# Kubernetes picks a watch timeout in [minRequestTimeout, 2*minRequestTimeout) (30-60 min).
DEFAULT_TIMEOUT_S = 1800.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class WatchEvent(StrEnum):
    """The type of a watch event, as Kubernetes' watch.EventType."""
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    ERROR = "ERROR"


class EventEncoder:
    """Encodes each (key, revision, type) once, however many watchers send it.  One
    encoder serves one shape: a view kind's watchers (``shown``: its conversion of the
    stored object, kinds.Resource.from_stored) have their own."""

    def __init__(self, size: int = 8192, shown: Converter | None = None) -> None:
        self._cache: OrderedDict[tuple[str, int, WatchEvent], bytes] = OrderedDict()
        self._size = size
        self.shown = shown

    def object_dict(self, kv: KeyValue, revision: int) -> dict[str, Any] | None:
        """The object as this encoder's watchers see it, at ``revision``."""
        obj = load_stored(kv.value, kv.key)
        if obj is None:
            return None
        obj["metadata"]["resourceVersion"] = str(revision)
        return self.shown(obj) if self.shown is not None else obj

    def object_json(self, kv: KeyValue, revision: int) -> bytes | None:
        if self.shown is None:
            return raw_json(kv.value, revision, kv.key)  # the stored bytes, not re-encoded
        obj = self.object_dict(kv, revision)
        return orjson.dumps(obj) if obj is not None else None

    def line(self, etype: WatchEvent, kv: KeyValue, revision: int) -> bytes:
        """One event line; empty for an object that does not decode (skipped, logged)."""
        key = (kv.key, revision, etype)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        data = self.encode(etype, kv, revision)
        self._cache[key] = data
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return data

    def encode(self, etype: WatchEvent, kv: KeyValue, revision: int) -> bytes:
        obj = self.object_json(kv, revision)
        return self.event(etype, obj) if obj is not None else b""

    def event(self, etype: WatchEvent, obj: bytes) -> bytes:
        return b'{"type":"%s","object":%s}\n' % (etype.encode(), obj)

    def bookmark(self, res: Resource, revision: int, initial_end: bool = False) -> bytes:
        return self.event(WatchEvent.BOOKMARK,
                          orjson.dumps(bookmark_object(res, revision, initial_end)))


def bookmark_object(res: Resource, revision: int, initial_end: bool = False) -> dict[str, Any]:
    """A BOOKMARK's object; ``initial_end``: the one that closes a WatchList's initial
    events (only that one carries the annotation, as kube-apiserver sends it)."""
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}


class ProtobufEncoder(EventEncoder):
    """Events as client-go's typed clients ask for them first (``application/
    vnd.kubernetes.protobuf;stream=watch``): length-prefixed WatchEvent messages, made
    from the decoded object (no JSON in between).  Served only for kinds that have a
    message; an object that protobuf cannot carry whole is skipped and reported, as an
    object that does not decode is."""

    def encode(self, etype: WatchEvent, kv: KeyValue, revision: int) -> bytes:
        obj = self.object_dict(kv, revision)
        return self.frame(etype, obj) if obj is not None else b""

    def bookmark(self, res: Resource, revision: int, initial_end: bool = False) -> bytes:
        return self.frame(WatchEvent.BOOKMARK, bookmark_object(res, revision, initial_end))

    def frame(self, etype: WatchEvent, obj: dict[str, Any]) -> bytes:
        try:
            return pb.encode_watch_event(etype, obj)
        except pb.EncodeError as exc:
            meta = obj.get("metadata") or {}
            what = f'{obj.get("kind")} {meta.get("namespace", "")}/{meta.get("name")}'
            _unencodable.log(what, "protobuf watch: skipping %s: %s", what, exc)
            return b""


class TableEncoder(EventEncoder):
    """One watch's events as Tables of one row (``kubectl get -w``): the columns come
    with the first event only, as the apiserver sends them."""

    def __init__(self, kind: str, version: str, include: str,
                 shown: Converter | None = None) -> None:
        super().__init__(size=64, shown=shown)
        self.kind, self.version, self.include = kind, version, include
        self.headers = True

    def line(self, etype: WatchEvent, kv: KeyValue, revision: int) -> bytes:
        obj = self.object_dict(kv, revision)
        if obj is None:
            return b""
        table = to_table(self.kind, [obj], {"resourceVersion": str(revision)},
                         version=self.version, include=self.include, headers=self.headers)
        self.headers = False
        return b'{"type":"%s","object":%s}\n' % (etype.encode(), orjson.dumps(table))


def _matches(kv: KeyValue | None, sel: Selector, fsel: FieldSelector) -> bool:
    if kv is None or not kv.value:
        return False
    if sel.empty() and not fsel.terms:
        return True
    obj = load_stored(kv.value, kv.key)
    if obj is None:
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return sel.matches(labels) and fsel.matches(obj)


def event_lines(events: list[Event], sel: Selector, fsel: FieldSelector,
                enc: EventEncoder) -> list[bytes]:
    out: list[bytes] = []
    for ev in events:
        rev = ev.revision
        if ev.type == EventType.DELETE:
            if ev.prev_kv is not None and _matches(ev.prev_kv, sel, fsel):
                out.append(enc.line(WatchEvent.DELETED, ev.prev_kv, rev))
            continue
        now = _matches(ev.kv, sel, fsel)
        before = _matches(ev.prev_kv, sel, fsel) if ev.prev_kv is not None else False
        if now and before:
            out.append(enc.line(WatchEvent.MODIFIED, ev.kv, rev))
        elif now:
            out.append(enc.line(WatchEvent.ADDED, ev.kv, rev))
        elif before and ev.prev_kv is not None:
            out.append(enc.line(WatchEvent.DELETED, ev.prev_kv, rev))
    return out


async def stream(res: Resource, watch: Watch, initial: list[bytes], backlog: list[Event],
                 sel: Selector, fsel: FieldSelector, enc: EventEncoder, *,
                 timeout_s: float | None, bookmarks: bool, current_revision,
                 initial_end: int | None = None) -> AsyncIterator[bytes]:
    """The body of a watch response.  ``current_revision()`` gives the store's revision;
    ``initial_end``: a WatchList (sendInitialEvents) whose initial events are the state at
    that revision, closed by the bookmark that says so -- at once, not on the timer."""
    if timeout_s is None:
        timeout_s = DEFAULT_TIMEOUT_S * (1 + random.random())
    try:
        with trio.move_on_after(timeout_s):
            if initial or initial_end is not None:
                end = [enc.bookmark(res, initial_end, True)] if initial_end is not None else []
                yield b"".join([*initial, *end])
            lines = event_lines(backlog, sel, fsel, enc)
            if lines:
                yield b"".join(lines)
            last_bookmark = trio.current_time()
            while True:
                batch: list[Event] | None = None
                with trio.move_on_after(BOOKMARK_INTERVAL_S if bookmarks else 3600):
                    try:
                        batch = await watch.receive()
                    except trio.EndOfChannel:
                        return  # overflowed or store stopped: client resumes
                if batch is not None:
                    # Take whatever else is queued so one write to the socket carries it all.
                    batches = [batch]
                    while True:
                        try:
                            batches.append(watch.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    lines = []
                    for b in batches:
                        lines.extend(event_lines(b, sel, fsel, enc))
                    if lines:
                        yield b"".join(lines)
                if bookmarks and trio.current_time() - last_bookmark >= BOOKMARK_INTERVAL_S:
                    last_bookmark = trio.current_time()
                    yield enc.bookmark(res, current_revision())
    finally:
        watch.close()


def initial_lines(items: list[KeyValue], sel: Selector, fsel: FieldSelector,
                  enc: EventEncoder) -> list[bytes]:
    return [enc.line(WatchEvent.ADDED, kv, kv.mod_revision) for kv in items if _matches(kv, sel, fsel)]


