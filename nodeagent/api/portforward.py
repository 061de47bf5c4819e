"""``pods/{name}/portforward``: kubectl port-forward, SPDY/3.1 tunnelled in a WebSocket.

kubectl (1.31+) opens a WebSocket with subprotocol ``SPDY/3.1+portforward.k8s.io`` and
runs a SPDY session inside it.  For each local connection it opens two streams with
the same ``requestID`` header: ``streamType: error`` (which it half-closes at once and
reads to its end: any text there is an error it prints) and ``streamType: data``.  Each
pair is served as kubelet serves it: a TCP connection to 127.0.0.1:``port`` inside the
pod's network namespace, bytes copied both ways.  Half-closes pass through (the
client's FIN ends the pod's input; the pod's end of output ends the data stream), and
then the error stream is closed, which is how kubectl learns the pair is done.

kubectl's fallback (and older clients), a raw ``Upgrade: SPDY/3.1`` HTTP connection,
reaches this session as the same WebSocket: spdyupgrade.py translates it on the
connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from starlette.websockets import WebSocket, WebSocketDisconnect

from nodeagent.api import spdy
from nodeagent.api.status import ApiError

__all__ = ["PROTOCOL", "Dial", "serve_portforward"]

log = logging.getLogger("nodeagent.api")

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
MAX_PAIRS = 128  # connections forwarded at once in one session
CHUNK = 32 * 1024
PAIR_TIMEOUT_S = 30.0  # a stream whose partner never comes is dropped (kubelet's)

# (pod, port) -> a connected stream to the port in the pod's network namespace
Dial = Callable[[dict[str, Any], int], Awaitable[trio.SocketStream]]


@dataclass
class _Pair:
    port: int
    error_id: int = 0
    data_id: int = 0
    inbound: tuple[trio.MemorySendChannel[bytes], trio.MemoryReceiveChannel[bytes]] = \
        field(default_factory=lambda: trio.open_memory_channel[bytes](16))
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)


class _Session:
    def __init__(self, ws: WebSocket, pod: dict[str, Any], dial: Dial) -> None:
        self.ws, self.pod, self.dial = ws, pod, dial
        self.reader = spdy.FrameReader()
        self.headers = spdy.HeaderWriter()
        self.send_lock = trio.Lock()
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, str] = {}

    async def send(self, frame: bytes) -> None:
        async with self.send_lock:
            await self.ws.send_bytes(frame)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            try:
                while True:
                    message = await self.ws.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    data = message.get("bytes")
                    if data is None:
                        raise spdy.ProtocolError("a text message in a SPDY tunnel")
                    for frame in self.reader.feed(data):
                        if await self.handle(frame, nursery) is False:
                            return
            except spdy.ProtocolError as exc:
                log.info("port-forward to pod %s ended: %s", self.pod["metadata"]["name"], exc)
                await self.send(spdy.goaway_frame(0, 1))
            finally:
                nursery.cancel_scope.cancel()

    async def handle(self, frame: Any, nursery: trio.Nursery) -> bool:
        if isinstance(frame, spdy.SynStream):
            await self.open_stream(frame, nursery)
        elif isinstance(frame, spdy.DataFrame):
            rid = self.by_stream.get(frame.stream_id)
            pair = self.pairs.get(rid or "")
            if pair is not None and frame.stream_id == pair.data_id:
                try:
                    if frame.data:
                        await pair.inbound[0].send(frame.data)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    pass  # data after its stream's FIN, or for a connection that ended
                if frame.fin:
                    pair.inbound[0].close()
        elif isinstance(frame, spdy.RstStream):
            rid = self.by_stream.get(frame.stream_id)
            if rid in self.pairs:
                self.pairs[rid].cancel.cancel()
        elif isinstance(frame, spdy.Ping):
            await self.send(spdy.ping_frame(frame.id))
        elif isinstance(frame, spdy.GoAway):
            return False
        return True

    async def open_stream(self, syn: spdy.SynStream, nursery: trio.Nursery) -> None:
        kind, rid = syn.headers.get("streamtype"), syn.headers.get("requestid", "")
        try:
            port = int(syn.headers.get("port", ""))
        except ValueError:
            port = 0
        if kind not in ("error", "data") or not 0 < port < 65536 or not rid or \
                syn.stream_id in self.by_stream:
            await self.send(spdy.rst_frame(syn.stream_id, spdy.PROTOCOL_ERROR))
            return
        pair = self.pairs.get(rid)
        if pair is None:
            if len(self.pairs) >= MAX_PAIRS:
                await self.send(spdy.rst_frame(syn.stream_id, spdy.REFUSED_STREAM))
                return
            pair = self.pairs[rid] = _Pair(port)
            nursery.start_soon(self.expire, rid, pair)
        if getattr(pair, f"{kind}_id") or pair.port != port:
            await self.send(spdy.rst_frame(syn.stream_id, spdy.PROTOCOL_ERROR))
            return
        setattr(pair, f"{kind}_id", syn.stream_id)
        self.by_stream[syn.stream_id] = rid
        await self.send(spdy.syn_reply_frame(self.headers, syn.stream_id, {}))
        if pair.error_id and pair.data_id:
            nursery.start_soon(self.forward, rid, pair)

    async def expire(self, rid: str, pair: _Pair) -> None:
        await trio.sleep(PAIR_TIMEOUT_S)
        if not (pair.error_id and pair.data_id) and self.pairs.get(rid) is pair:
            self.forget(rid, pair)
            for sid in (pair.error_id, pair.data_id):
                if sid:
                    await self.send(spdy.rst_frame(sid, spdy.CANCEL))

    def forget(self, rid: str, pair: _Pair) -> None:
        self.pairs.pop(rid, None)
        self.by_stream.pop(pair.error_id, None)
        self.by_stream.pop(pair.data_id, None)

    async def forward(self, rid: str, pair: _Pair) -> None:
        """One forwarded connection, as kubelet's portForward: the error stream says what
        went wrong, if anything, and is closed last."""
        name = self.pod["metadata"]["name"]
        message = b""
        with pair.cancel:
            try:
                conn = await self.dial(self.pod, pair.port)
            except OSError as exc:
                message = (f"error forwarding port {pair.port} to pod {name}, uid "
                           f"{self.pod['metadata'].get('uid', '')}: {exc}").encode()
            else:
                async with conn:
                    await self.copy(conn, pair)
        self.forget(rid, pair)
        try:
            if message:
                await self.send(spdy.data_frame(pair.error_id, message))
            await self.send(spdy.data_frame(pair.data_id, b"", fin=True))
            await self.send(spdy.data_frame(pair.error_id, b"", fin=True))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the session is gone

    async def copy(self, conn: trio.SocketStream, pair: _Pair) -> None:
        async def to_pod() -> None:
            async for chunk in pair.inbound[1]:
                try:
                    await conn.send_all(chunk)
                except trio.BrokenResourceError:
                    return
            try:
                await conn.send_eof()  # the client's half-close, passed on
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(to_pod)
            try:
                while data := await conn.receive_some(CHUNK):
                    await self.send(spdy.data_frame(pair.data_id, data))
            except trio.BrokenResourceError:
                pass  # reset by the pod: the end of its output
            nursery.cancel_scope.cancel()


async def serve_portforward(ws: WebSocket, pod: dict[str, Any], dial: Dial) -> None:
    """Serve an accepted port-forward session until the client or the pod ends it."""
    try:
        await _Session(ws, pod, dial).run()
    except (WebSocketDisconnect, RuntimeError):
        return
    try:
        await ws.close()
    except RuntimeError:
        pass  # closed already


def check_target(pod: dict[str, Any]) -> None:
    """kubelet refuses a pod that is not running (kubectl checks it first, too)."""
    if (pod.get("status") or {}).get("phase") != "Running":
        raise ApiError.bad_request(f'pod {pod["metadata"]["name"]} is not running: '
                                   "it cannot be forwarded to")
