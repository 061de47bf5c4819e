"""pods/portforward's session, as kubectl drives it: SPDY streams in WebSocket messages,
each pair forwarded to a real TCP listener on loopback (the pod's side; the lab e2e day
forwards into a real pod with real kubectl).  The WebSocket is the ASGI messages the
HTTP server would pass, so the session code is exercised whole."""

from __future__ import annotations

import errno
import functools
from collections.abc import MutableMapping
from typing import Any

import trio
from starlette.websockets import WebSocket

from nodeagent.api import spdy
from nodeagent.api.portforward import PROTOCOL, serve_portforward

POD = {"metadata": {"name": "web", "uid": "u1"}, "status": {"phase": "Running"}}


class Client:
    """The kubectl side: its own header context, a reader of what the server sends."""

    def __init__(self) -> None:
        self.to_server, self._inbox = trio.open_memory_channel[dict[str, Any]](100)
        self.from_server, self.outbox = trio.open_memory_channel[dict[str, Any]](100)
        self.headers = spdy.HeaderWriter()
        self.reader = spdy.FrameReader()
        self.frames: list[Any] = []

    async def receive(self) -> dict[str, Any]:  # the ASGI app's receive
        return await self._inbox.receive()

    async def send(self, message: MutableMapping[str, Any]) -> None:  # the ASGI app's send
        await self.from_server.send(dict(message))

    async def put(self, *frames: bytes) -> None:
        await self.to_server.send({"type": "websocket.receive", "bytes": b"".join(frames)})

    async def pair(self, rid: str, port: int, first: int) -> None:
        head = {"port": str(port), "requestID": rid}
        await self.put(spdy.syn_stream_frame(self.headers, first, {**head, "streamType": "error"}),
                       spdy.data_frame(first, b"", fin=True),
                       spdy.syn_stream_frame(self.headers, first + 2, {**head, "streamType": "data"}))

    async def until(self, done: Any) -> list[Any]:
        """Read the server's frames until ``done(frames)``."""
        with trio.fail_after(10):
            while not done(self.frames):
                message = await self.outbox.receive()
                if message.get("bytes"):
                    self.frames.extend(self.reader.feed(message["bytes"]))
        return self.frames


def data_of(frames: list[Any], stream: int) -> bytes:
    return b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame)
                    and f.stream_id == stream)


def finished(frames: list[Any], stream: int) -> bool:
    return any(isinstance(f, spdy.DataFrame) and f.stream_id == stream and f.fin
               for f in frames)


async def echo_upper(stream: trio.SocketStream) -> None:
    """The pod's server: answers what it read, upper-cased, once the client half-closed."""
    got = b""
    while data := await stream.receive_some(65536):
        got += data
    await stream.send_all(got.upper())
    await stream.aclose()


async def session(client: Client, dial: Any) -> None:
    scope = {"type": "websocket", "path": "/", "headers": [], "subprotocols": [PROTOCOL]}
    ws = WebSocket(scope, client.receive, client.send)
    await ws.accept(subprotocol=PROTOCOL)
    await serve_portforward(ws, POD, dial)


async def test_pairs_are_forwarded_with_half_closes_and_errors() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(
            trio.serve_tcp, echo_upper, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]

        async def dial(pod: dict[str, Any], want: int) -> trio.SocketStream:
            if want != 8080:
                raise OSError(errno.ECONNREFUSED, "Connection refused")
            return await trio.open_tcp_stream("127.0.0.1", port)

        client = Client()
        await client.to_server.send({"type": "websocket.connect"})
        nursery.start_soon(session, client, dial)
        # Two connections at once, each sending and half-closing; and one to a closed port.
        await client.pair("0", 8080, 1)
        await client.pair("1", 8080, 5)
        await client.pair("2", 9999, 9)
        await client.put(spdy.data_frame(3, b"hello "), spdy.data_frame(7, b"other"),
                         spdy.data_frame(3, b"pod", fin=True), spdy.data_frame(7, b"", fin=True),
                         spdy.ping_frame(7))
        frames = await client.until(lambda fs: all(finished(fs, s) for s in (1, 5, 9, 11)))
        assert data_of(frames, 3) == b"HELLO POD" and data_of(frames, 7) == b"OTHER"
        assert finished(frames, 3) and finished(frames, 7)
        assert data_of(frames, 1) == data_of(frames, 5) == b""  # no error
        assert data_of(frames, 9) == b"error forwarding port 9999 to pod web, uid u1: " \
                                     b"[Errno 111] Connection refused"
        assert spdy.Ping(7) in frames
        # Data after a FIN is dropped, not a crash of the session.
        await client.put(spdy.data_frame(3, b"late"))
        # A stream without a requestID: reset.
        await client.put(spdy.syn_stream_frame(client.headers, 13, {"streamType": "data",
                                                                    "port": "8080"}))
        await client.until(lambda fs: spdy.RstStream(13, spdy.PROTOCOL_ERROR) in fs)
        await client.to_server.send({"type": "websocket.disconnect", "code": 1000})
        nursery.cancel_scope.cancel()


async def test_a_broken_session_ends_with_goaway() -> None:
    async def dial(pod: dict[str, Any], want: int) -> trio.SocketStream:
        raise AssertionError("nothing is dialled")

    client = Client()
    await client.to_server.send({"type": "websocket.connect"})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session, client, dial)
        await client.put(b"\x80\x03\x00\x01\x00\x00\x00\x04garbage-not-zlib")
        frames = await client.until(lambda fs: any(isinstance(f, spdy.GoAway) for f in fs))
        assert any(isinstance(f, spdy.GoAway) for f in frames)
        with trio.fail_after(5):
            while (await client.outbox.receive())["type"] != "websocket.close":
                pass
