"""``/replica``: how agents that are not Raft servers keep a copy of the store and write.

    GET  /replica/stream?revision=R  the changes after revision R as a stream of msgpack
                                     messages (store/wire.py): the whole state first when
                                     R is 0 or older than this server's history, then
                                     every change as it is applied, a keep-alive between
    POST /replica/txn                one transaction (Txn.encode()) -> its result; a
                                     server hands it to the Raft leader
    POST /replica/barrier            -> {"revision": N}: every write committed before the
                                     call is at or below N (ReadIndex on a Raft server)

A copy is what kubelet's informers are to the apiserver, with the store's own
revisions, so an agent serves reads and watches from its copy and
resourceVersions mean the same on every agent.  Not a Kubernetes API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgpack
import trio
from starlette.responses import Response, StreamingResponse

from nodeagent.api.objects import ObjectStore
from nodeagent.api.status import ApiError
from nodeagent.store.errors import StoreError
from nodeagent.store.mvcc import Event, Txn
from nodeagent.store.wire import KEEPALIVE_S, MEDIA_TYPE, encode_result, event_rows, pack

__all__ = ["barrier", "stream", "txn"]


def stream(objects: ObjectStore, revision_param: str) -> Response:
    try:
        revision = int(revision_param or "0")
        if revision < 0:
            raise ValueError
    except ValueError:
        raise ApiError.bad_request(f"revision: {revision_param!r} is not a revision") from None
    store: Any = objects.store
    snapshot = b""
    if revision == 0 or revision < store.compact_revision:
        snapshot = store.mvcc.snapshot()
        revision = store.revision
    # No await between the snapshot and the watch: nothing applied in between is missed.
    watch, backlog = store.watch("", revision + 1)

    async def body() -> AsyncIterator[bytes]:
        try:
            if snapshot:
                yield pack({"t": "snap", "state": snapshot})
            if backlog:
                yield pack({"t": "ev", "e": event_rows(backlog)})
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
                yield pack({"t": "ev", "e": event_rows(batch)})
        finally:
            watch.close()

    return StreamingResponse(body(), media_type=MEDIA_TYPE)


async def txn(objects: ObjectStore, body: bytes) -> Response:
    try:
        command = Txn.decode(body)
    except StoreError as exc:
        raise ApiError.bad_request(str(exc)) from None
    result = await objects.txn(command)  # 503 when no leader takes it
    return Response(encode_result(result), media_type=MEDIA_TYPE)


async def barrier(objects: ObjectStore) -> Response:
    await objects.read_barrier()
    return Response(msgpack.packb({"revision": objects.store.revision}), media_type=MEDIA_TYPE)
