"""A raw SPDY upgrade as the WebSocket session it is served by: the head rewritten, the
101 answered as SPDY's, streams mapped to channels both ways.  The connection here is a
pair of in-memory streams, the bytes on it real (the real client, kubectl forced to
SPDY, runs in tests/e2e/test_kubectl_day.py)."""

from __future__ import annotations

import trio
import trio.testing
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side

from nodeagent.api import spdy
from nodeagent.api.spdyupgrade import SpdyUpgrade

EXEC_HEAD = (b"POST /api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true&stdout=true"
             b" HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer t0k3n\r\n"
             b"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
             b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
             b"X-Stream-Protocol-Version: v3.channel.k8s.io\r\nContent-Length: 0\r\n\r\n")
WS_101 = (b"HTTP/1.1 101 \r\nupgrade: WebSocket\r\nconnection: Upgrade\r\n"
          b"sec-websocket-accept: x\r\nsec-websocket-protocol: v5.channel.k8s.io\r\n\r\n")


class FakeSocket:
    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 1)


def connection() -> tuple[SpdyUpgrade, trio.abc.Stream]:
    """(what hypercorn gets, the client's end)."""
    client, server = trio.testing.memory_stream_pair()
    server.socket = FakeSocket()  # type: ignore[attr-defined]
    return SpdyUpgrade(server), client


async def read_until(stream: trio.abc.ReceiveStream, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        data += await stream.receive_some()
    return data


async def test_a_plain_request_passes_through_untouched() -> None:
    upgrade, client = connection()
    head = b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n"
    await client.send_all(head)
    assert await upgrade.receive_some() == head
    await upgrade.send_all(b"HTTP/1.1 200 OK\r\n\r\n")
    assert await client.receive_some() == b"HTTP/1.1 200 OK\r\n\r\n"


async def test_exec_streams_become_channels_and_back() -> None:
    upgrade, client = connection()
    await client.send_all(EXEC_HEAD)
    head = await upgrade.receive_some()
    assert head.startswith(b"GET /api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true")
    lowered = head.lower()
    assert b"authorization: bearer t0k3n" in lowered and b"upgrade: websocket" in lowered
    assert b"sec-websocket-protocol: v5.channel.k8s.io" in lowered
    assert b"spdy" not in lowered and b"content-length" not in lowered
    # The server accepts, and writes stdout before the client has opened that stream.
    server_ws = Protocol(Side.SERVER)
    server_ws.send_binary(b"\x01hello ")
    await upgrade.send_all(WS_101 + b"".join(server_ws.data_to_send()))
    answer = await read_until(client, b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Upgrade: SPDY/3.1" in answer and b"X-Stream-Protocol-Version: v4.channel.k8s.io" \
        in answer
    # The client opens its streams as kubectl does: error, stdin, stdout.
    writer, reader = spdy.HeaderWriter(), spdy.FrameReader()
    for sid, kind in ((1, "error"), (3, "stdin"), (5, "stdout")):
        await client.send_all(spdy.syn_stream_frame(writer, sid, {"streamtype": kind}))
    await client.send_all(spdy.data_frame(3, b"ls\n", fin=True))
    received_frames: list[Frame] = []
    while len(received_frames) < 2:
        server_ws.receive_data(bytes(await upgrade.receive_some()))
        received_frames += [f for f in server_ws.events_received() if isinstance(f, Frame)]
    assert [bytes(f.data) for f in received_frames] == [b"\x00ls\n", b"\xff\x00"]
    # Held output comes once stdout is open; then the session's end closes every stream.
    server_ws.send_binary(b"\x03" + b'{"status":"Success"}')
    server_ws.send_close(1000)
    await upgrade.send_all(b"".join(server_ws.data_to_send()))
    frames: list[object] = []
    while not any(isinstance(f, spdy.DataFrame) and f.fin and f.stream_id == 5 for f in frames):
        frames += reader.feed(bytes(await client.receive_some()))
    data = [(f.stream_id, f.data) for f in frames if isinstance(f, spdy.DataFrame) and f.data]
    assert data == [(5, b"hello "), (1, b'{"status":"Success"}')]


async def test_a_refused_upgrade_reaches_the_client_as_it_is() -> None:
    upgrade, client = connection()
    await client.send_all(EXEC_HEAD)
    await upgrade.receive_some()
    refusal = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 9\r\n\r\nforbidden"
    await upgrade.send_all(refusal)
    assert await read_until(client, b"forbidden") == refusal


async def test_port_forward_bytes_pass_inside_websocket_messages() -> None:
    upgrade, client = connection()
    await client.send_all(EXEC_HEAD.replace(b"/exec?command=sh&stdin=true&stdout=true",
                                            b"/portforward").replace(
        b"v4.channel.k8s.io", b"portforward.k8s.io"))
    head = await upgrade.receive_some()
    assert b"sec-websocket-protocol: SPDY/3.1+portforward.k8s.io" in head
    await upgrade.send_all(WS_101.replace(b"v5.channel.k8s.io",
                                          b"SPDY/3.1+portforward.k8s.io"))
    assert b"X-Stream-Protocol-Version: portforward.k8s.io" in await read_until(
        client, b"\r\n\r\n")
    await client.send_all(b"raw spdy bytes")
    server_ws = Protocol(Side.SERVER)
    server_ws.receive_data(bytes(await upgrade.receive_some()))
    [message] = server_ws.events_received()
    assert isinstance(message, Frame)
    assert message.opcode is Opcode.BINARY and bytes(message.data) == b"raw spdy bytes"
    server_ws.send_binary(b"back")
    await upgrade.send_all(b"".join(server_ws.data_to_send()))
    assert await client.receive_some() == b"back"


async def test_output_before_its_stream_opens_is_held_up_to_a_cap() -> None:
    """A container's output that comes before the client opens stdout is held, however
    it is cut (here 20,000 one-byte messages, as a container writing a byte at a time),
    and at most MAX_HELD_BYTES of it: a client that never opens the stream costs no
    more."""
    from nodeagent.api.spdyupgrade import MAX_HELD_BYTES
    upgrade, client = connection()
    await client.send_all(EXEC_HEAD)
    await upgrade.receive_some()
    server_ws = Protocol(Side.SERVER)
    for _ in range(20_000):
        server_ws.send_binary(b"\x01x")
    await upgrade.send_all(WS_101 + b"".join(server_ws.data_to_send()))
    chunk = b"\x02" + b"e" * 65536
    for _ in range(MAX_HELD_BYTES // 65536 + 4):  # stderr: more than the cap
        server_ws.send_binary(chunk)
    await upgrade.send_all(b"".join(server_ws.data_to_send()))
    await read_until(client, b"\r\n\r\n")
    writer, reader = spdy.HeaderWriter(), spdy.FrameReader()
    await client.send_all(spdy.syn_stream_frame(writer, 1, {"streamtype": "stdout"}) +
                          spdy.syn_stream_frame(writer, 3, {"streamtype": "stderr"}))
    got: dict[int, int] = {1: 0, 3: 0}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(upgrade.receive_some)  # hypercorn's read: it reads the frames
        with trio.move_on_after(10):
            while got[1] < 20_000 or got[3] < MAX_HELD_BYTES:
                for f in reader.feed(bytes(await client.receive_some())):
                    if isinstance(f, spdy.DataFrame):
                        got[f.stream_id] += len(f.data)
        nursery.cancel_scope.cancel()
    assert got == {1: 20_000, 3: MAX_HELD_BYTES}
