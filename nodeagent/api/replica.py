"""``/replica``: how agents that are not Raft servers keep a copy of the store and write.

    GET  /replica/stream?revision=R  the changes after revision R as a stream of msgpack
                                     messages (store/wire.py): the whole state first when
                                     R is 0 or older than this server's history, then
                                     every change as it is applied, a keep-alive between
    POST /replica/txn                one transaction (Txn.encode()) -> its result; a
                                     server hands it to the Raft leader.  Only what
                                     the API itself writes is taken (check_command)
    POST /replica/barrier            -> {"revision": N}: every write committed before the
                                     call is at or below N (ReadIndex on a Raft server)

A copy is what kubelet's informers are to the apiserver, with the store's own
revisions, so an agent serves reads and watches from its copy and
resourceVersions mean the same on every agent.  Not a Kubernetes API.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import trio
from starlette.responses import Response, StreamingResponse

from nodeagent.api.allocator import PREFIX as ALLOCATIONS
from nodeagent.api.objects import (
    HEAVY_BYTES,
    ObjectStore,
    decode_object,
    load_stored,
    off_loop,
    validate_new,
)
from nodeagent.api.status import ApiError
from nodeagent.objects.kinds import RESOURCES, Resource
from nodeagent.store.errors import StoreError, TxnTooLargeError
from nodeagent.store.mvcc import Event, OpKind, Txn, check_txn_size
from nodeagent.store.wire import KEEPALIVE_S, MEDIA_TYPE, encode_result, event_rows, pack

__all__ = ["MEDIA_TYPE", "SECRETS_PREFIX", "barrier", "check_command", "resource_of", "stream",
           "txn"]

SECRETS_PREFIX = "/registry/secrets/"


def stream(objects: ObjectStore, revision_param: str, *, secrets: bool = True) -> Response:
    """``secrets`` False (a copy for a node that is not a server): no Secret is sent, in
    the state or among the changes; a change left with nothing to send still moves the
    copy's revision on (a "rev" message), so its read barriers are not held up."""
    try:
        revision = int(revision_param or "0")
        if revision < 0:
            raise ValueError
    except ValueError as exc:
        raise ApiError.bad_request(f"revision: {revision_param!r} is not a revision") from exc
    store: Any = objects.store
    snapshot = b""
    exclude = () if secrets else (SECRETS_PREFIX,)
    if revision == 0 or revision < store.compact_revision:
        snapshot = store.mvcc.snapshot(exclude=exclude)
        revision = store.revision
    # No await between the snapshot and the watch: nothing applied in between is missed.
    watch, backlog = store.watch("", revision + 1)

    async def body() -> AsyncIterator[bytes]:
        try:
            if snapshot:
                yield pack({"t": "snap", "state": snapshot})
            if backlog:
                yield _changes(backlog, exclude)
            while True:
                batch: list[Event] | None = None
                with trio.move_on_after(KEEPALIVE_S):
                    try:
                        batch = await watch.receive()
                    except trio.EndOfChannel:
                        return  # too slow, or a snapshot jumped the state: the copy resumes
                if batch is None:
                    yield pack({"t": "rev", "r": store.revision})
                    continue
                while True:
                    try:
                        batch = batch + watch.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                yield _changes(batch, exclude)
        finally:
            watch.close()

    return StreamingResponse(body(), media_type=MEDIA_TYPE)


def _changes(events: list[Event], exclude: tuple[str, ...]) -> bytes:
    """An "ev" message of ``events`` but those under ``exclude``; with nothing left, a
    "rev" message with their last revision."""
    if exclude:
        kept = [e for e in events if not e.kv.key.startswith(exclude)]
        if len(kept) < len(events):
            last = max(e.kv.mod_revision for e in events)
            return (pack({"t": "ev", "e": event_rows(kept)}) if kept else b"") + \
                pack({"t": "rev", "r": last})
    return pack({"t": "ev", "e": event_rows(events)})


# Compares or ops in one transaction from another agent: the API writes a handful.
MAX_TXN_OPS = 1024


def _decode_checked(body: bytes) -> Txn:
    """The transaction in ``body`` if the API would have written it (check_command)."""
    try:
        check_txn_size(body)
        command = Txn.decode(body, max_ops=MAX_TXN_OPS)
    except TxnTooLargeError as exc:
        raise ApiError(413, "RequestEntityTooLarge", str(exc)) from exc
    except StoreError as exc:
        raise ApiError.bad_request(str(exc)) from exc
    check_command(command)
    return command


async def txn(objects: ObjectStore, body: bytes, node: str | None = None) -> Response:
    """``node``: a node that is not a server sent it, and may write only what
    nodeauth.check_txn lets a node write."""
    # A large one is decoded and checked off the loop, as large API bodies are: a 1 MB
    # array of a million empty arrays held the loop 150 ms.
    command = await off_loop(len(body) > HEAVY_BYTES, _decode_checked, body)
    if node is not None:
        from nodeagent.api.nodeauth import check_txn
        check_txn(objects, node, command)
    result = await objects.txn(command)  # 503 when no leader takes it
    return Response(encode_result(result), media_type=MEDIA_TYPE)


_BY_PLURAL = {r.plural: r for r in RESOURCES}
_ALLOCATION_KEY = re.compile(re.escape(ALLOCATIONS) + r"(clusterip/[0-9a-f.:]{1,45}"
                             r"|nodeport/(TCP|UDP|SCTP)/[0-9]{1,5})")


def resource_of(key: str) -> tuple[Resource | None, str | None, str]:
    """(resource, namespace, name) of an object's key; (None, None, "") for an allocation
    key; ApiError for any other key: the stream writes API objects, nothing else."""
    if _ALLOCATION_KEY.fullmatch(key):
        return None, None, ""
    parts = key.split("/")
    res = _BY_PLURAL.get(parts[2]) if len(parts) > 2 and parts[:2] == ["", "registry"] else None
    if res is not None and len(parts) == (5 if res.namespaced else 4) and all(parts[3:]):
        return res, parts[3] if res.namespaced else None, parts[-1]
    raise ApiError.bad_request(f"key {key!r} is not an object's or an allocation's key")


def check_command(command: Txn) -> None:
    """A transaction from another agent writes what the API would have written: known keys
    only, and every object put decodes and passes the same validation as a create, named
    and namespaced as its key says.  Raises ApiError 400/422 naming what is wrong."""
    for cmp in command.compares:
        resource_of(cmp.key)
    for op in command.success + command.failure:
        if op.kind is OpKind.DELETE_PREFIX:
            raise ApiError.bad_request("delete_prefix is not a write agents make")
        res, namespace, name = resource_of(op.key)
        if op.kind is not OpKind.PUT or res is None:
            continue
        obj = load_stored(op.value, op.key)
        if obj is None:
            raise ApiError.bad_request(f"{op.key}: the value is not a JSON object with metadata")
        meta = obj["metadata"]
        if meta.get("name") != name or (res.namespaced and meta.get("namespace") != namespace):
            raise ApiError.bad_request(f"{op.key}: metadata.name and namespace do not match "
                                       "the key")
        validate_new(res, decode_object(res, obj)[0])


async def barrier(objects: ObjectStore) -> Response:
    await objects.read_barrier()
    return Response(msgpack.packb({"revision": objects.store.revision}), media_type=MEDIA_TYPE)
