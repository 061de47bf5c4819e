"""Raw ``Upgrade: SPDY/3.1`` connections (exec, attach, port-forward), served by turning
them into the WebSocket sessions this API already serves.

kubectl before 1.29 (exec) and 1.31 (port-forward), its fallback since, and the many
tools built on client-go's SPDY executor (k9s, Lens, operators) ask for a raw SPDY
connection: an HTTP request with ``Upgrade: SPDY/3.1``, a 101, then SPDY frames on the
bare connection.  hypercorn hands an application WebSocket upgrades only, so such a
request is translated on the connection itself, before hypercorn reads it:

- its head becomes a WebSocket upgrade (same path, query and credentials, so
  authentication, authorization, admission and the relay to the pod's node are the
  WebSocket route's, unchanged), offering ``v5.channel.k8s.io`` for exec and attach and
  ``SPDY/3.1+portforward.k8s.io`` for port-forward;
- the server's 101 goes back as SPDY's (``X-Stream-Protocol-Version``); any other answer
  (401, 403, 404 ...) goes back as it is;
- then, for port-forward, the SPDY bytes pass through inside WebSocket messages (the
  WebSocket session speaks SPDY already); for exec and attach, each SPDY stream the
  client opens (``streamType`` error, stdin, stdout, stderr, resize) is mapped to its
  channel, both ways, and a stdin stream's FIN to v5's close message.

Every other connection is passed on untouched after its first request head is read.
The head is capped (16 KiB), SPDY frames are capped by spdy.FrameReader, and the
WebSocket side is this server's own.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import trio
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side

from nodeagent.api import spdy

__all__ = ["SpdyUpgrade", "is_spdy_upgrade"]

MAX_HEAD_BYTES = 16 * 1024
MAX_HELD_BYTES = 1 << 20
STREAM_CHANNELS = {"stdin": 0, "stdout": 1, "stderr": 2, "error": 3, "resize": 4}
EXEC_VERSIONS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                 "channel.k8s.io")
PORT_FORWARD_VERSION = "portforward.k8s.io"
CLOSE_CHANNEL = 255
_DROPPED = {b"upgrade", b"connection", b"x-stream-protocol-version", b"content-length",
            b"transfer-encoding", b"sec-websocket-key", b"sec-websocket-version",
            b"sec-websocket-protocol", b"sec-websocket-extensions"}


def _headers(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(request or status line, [(lower-cased name, value)]) of a message head."""
    first, *lines = head.split(b"\r\n")
    pairs = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if sep:
            pairs.append((name.strip().lower(), value.strip()))
    return first, pairs


def is_spdy_upgrade(head: bytes) -> bool:
    _, pairs = _headers(head)
    values = dict(pairs)
    return values.get(b"upgrade", b"").lower() == b"spdy/3.1" and \
        b"upgrade" in values.get(b"connection", b"").lower()


class SpdyUpgrade(trio.abc.Stream):
    """The connection hypercorn reads and writes (``inner`` the client's), translating a
    raw SPDY upgrade as the module says; otherwise the first head is handed on as read
    and the rest passes straight through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # hypercorn finds the socket here (``transport_stream`` over TLS, ``socket`` not),
        # and tells TLS by whether do_handshake exists.
        if hasattr(inner, "transport_stream"):
            self.transport_stream = inner.transport_stream
        else:
            self.socket = inner.socket
        self._mode = "head"  # head -> plain | upgrading -> spdy
        self._pending = b""  # bytes for hypercorn to read
        self._response = b""  # the server's answer head, until whole
        self._client_bytes = b""  # client bytes read with its head, to translate later
        self._version = ""
        self._port_forward = False
        # Made only for an upgrade: every connection has this wrapper, and a SPDY header
        # compressor alone holds some 256 KiB.
        self._ws: Protocol
        self._reader: spdy.FrameReader
        self._writer: spdy.HeaderWriter
        self._streams: dict[int, int] = {}  # channel -> the client's stream id
        self._held: dict[int, list[bytes]] = {}  # output for a stream not yet opened
        self._held_bytes: dict[int, int] = {}  # their size, counted as they come
        self._channel = 1  # the channel of the server's message being read
        self._write = trio.Lock()

    # --- what hypercorn calls -----------------------------------------------------------

    async def do_handshake(self) -> None:
        await self.inner.do_handshake()  # AttributeError without TLS, as hypercorn expects

    def selected_alpn_protocol(self) -> str | None:
        return self.inner.selected_alpn_protocol()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        while True:
            if self._pending:
                data, self._pending = self._pending, b""
                return data
            if self._mode == "head":
                return await self._first_head()
            if self._mode == "plain":
                return await self.inner.receive_some(max_bytes)
            data = await self.inner.receive_some(max_bytes)
            if not data:
                return b""
            if self._mode == "upgrading":  # before our 101: translated once it is sent
                self._client_bytes += data
                if len(self._client_bytes) > MAX_HEAD_BYTES:
                    return b""  # a client that does not wait for the answer
                continue
            if self._mode == "spdy":
                self._pending += await self._from_client(bytes(data))
            else:  # refused while this read waited: the bytes are the client's own
                self._pending += data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._mode == "upgrading":
            self._response += bytes(data)
            end = self._response.find(b"\r\n\r\n")
            if end < 0:
                return
            head, rest = self._response[:end], self._response[end + 4:]
            self._response = b""
            if not head.startswith(b"HTTP/1.1 101"):
                self._mode = "plain"  # refused: the client reads the answer as it is
                await self._to_client(head + b"\r\n\r\n" + rest)
                return
            self._mode = "spdy"
            await self._to_client(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                  b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: "
                                  + self._version.encode() + b"\r\n\r\n")
            if self._client_bytes:
                self._pending += await self._from_client(self._client_bytes)
                self._client_bytes = b""
            data = rest
        if self._mode == "spdy":
            await self._from_server(bytes(data))
            return
        await self._to_client(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    # --- the first head -----------------------------------------------------------------

    async def _first_head(self) -> bytes:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < MAX_HEAD_BYTES:
            data = await self.inner.receive_some()
            if not data:
                break
            head += data
            if not (head.startswith((b"GET ", b"POST "))
                    or b"GET ".startswith(head) or b"POST ".startswith(head)):
                break  # not a request that could upgrade: hypercorn answers it
        end = head.find(b"\r\n\r\n")
        if end < 0 or not is_spdy_upgrade(head[:end]):
            self._mode = "plain"  # from now on straight through, no frame of ours per call
            self.receive_some = self.inner.receive_some  # type: ignore[method-assign]
            self.send_all = self.inner.send_all  # type: ignore[method-assign]
            return head
        self._client_bytes = head[end + 4:]
        return self._websocket_head(head[:end])

    def _websocket_head(self, head: bytes) -> bytes:
        """The SPDY upgrade request as the WebSocket upgrade the routes serve."""
        first, pairs = _headers(head)
        offered = [v.strip().decode("latin1") for n, v in pairs
                   if n == b"x-stream-protocol-version" for v in v.split(b",")]
        target = [*first.split(b" "), b""][1]
        if PORT_FORWARD_VERSION in offered:
            self._port_forward, self._version = True, PORT_FORWARD_VERSION
            protocol = "SPDY/3.1+portforward.k8s.io"
        else:
            self._version = next((v for v in EXEC_VERSIONS if v in offered), "")
            protocol = "v5.channel.k8s.io" if self._version == EXEC_VERSIONS[0] else \
                "unsupported.channel.k8s.io"  # the route refuses it, naming what it takes
        self._mode = "upgrading"
        self._ws = Protocol(Side.CLIENT, max_size=None)
        self._reader, self._writer = spdy.FrameReader(), spdy.HeaderWriter()
        key = base64.b64encode(os.urandom(16))
        lines = [b"GET " + target + b" HTTP/1.1"]
        lines += [n + b": " + v for n, v in pairs if n not in _DROPPED]
        lines += [b"upgrade: websocket", b"connection: Upgrade", b"sec-websocket-key: " + key,
                  b"sec-websocket-version: 13", b"sec-websocket-protocol: " + protocol.encode()]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    # --- after the upgrade --------------------------------------------------------------

    def _hold(self, channel: int, data: bytes) -> None:
        """Output for a stream the client has not opened yet (it opens them just after
        the 101; a client that never opens one gets none of it past MAX_HELD_BYTES).
        Counted, not summed: a container writing a byte at a time would make a sum per
        message quadratic."""
        size = self._held_bytes.get(channel, 0) + len(data)
        if size <= MAX_HELD_BYTES:
            self._held.setdefault(channel, []).append(data)
            self._held_bytes[channel] = size

    async def _to_client(self, data: bytes | bytearray | memoryview) -> None:
        async with self._write:
            await self.inner.send_all(data)

    async def _from_client(self, data: bytes) -> bytes:
        """SPDY from the client -> the WebSocket frames hypercorn reads."""
        if self._port_forward:
            self._ws.send_binary(data)
            return b"".join(self._ws.data_to_send())
        try:
            frames = self._reader.feed(data)
        except spdy.ProtocolError:
            self._ws.send_close(1002, "SPDY protocol error")
            return b"".join(self._ws.data_to_send())
        for frame in frames:
            if isinstance(frame, spdy.SynStream):
                channel = STREAM_CHANNELS.get(frame.headers.get("streamtype", "").lower())
                if channel is None:
                    await self._to_client(spdy.rst_frame(frame.stream_id, spdy.REFUSED_STREAM))
                    continue
                self._streams[channel] = frame.stream_id
                await self._to_client(spdy.syn_reply_frame(self._writer, frame.stream_id, {}))
                self._held_bytes.pop(channel, None)
                for held in self._held.pop(channel, []):
                    await self._to_client(spdy.data_frame(frame.stream_id, held))
                if frame.fin and channel == 0:
                    self._ws.send_binary(bytes([CLOSE_CHANNEL, 0]))
            elif isinstance(frame, spdy.DataFrame):
                channel = next((c for c, s in self._streams.items() if s == frame.stream_id),
                               None)
                if channel in (0, 4) and frame.data:
                    self._ws.send_binary(bytes([channel]) + frame.data)
                if channel == 0 and frame.fin:
                    self._ws.send_binary(bytes([CLOSE_CHANNEL, 0]))
            elif isinstance(frame, spdy.Ping):
                await self._to_client(spdy.ping_frame(frame.id))
            elif isinstance(frame, spdy.GoAway):
                self._ws.send_close(1000)
        return b"".join(self._ws.data_to_send())

    async def _from_server(self, data: bytes) -> None:
        """The WebSocket session's frames -> SPDY to the client."""
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if not isinstance(event, Frame):
                continue
            if event.opcode is Opcode.CLOSE:
                for stream_id in sorted(self._streams.values()):
                    await self._to_client(spdy.data_frame(stream_id, b"", fin=True))
                self._streams.clear()
                if self._port_forward:  # the session is over: so is the connection
                    await self.inner.send_eof()
            elif event.opcode in (Opcode.BINARY, Opcode.TEXT, Opcode.CONT):
                payload = bytes(event.data)
                if self._port_forward:
                    await self._to_client(payload)
                    continue
                if event.opcode is not Opcode.CONT:  # a message's first frame names it
                    if not payload:
                        continue
                    self._channel, payload = payload[0], payload[1:]
                stream = self._streams.get(self._channel)
                if stream is None:
                    self._hold(self._channel, payload)
                elif payload:
                    await self._to_client(spdy.data_frame(stream, payload))
        replies = b"".join(self._ws.data_to_send())  # a pong, or the close's answer
        if replies:
            self._pending += replies
