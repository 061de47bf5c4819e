"""A raw SPDY upgrade's bytes, fuzzed: whatever a client sends as its first head and
after the 101, the connection gives hypercorn bytes (or ends) and never raises past
what ends a session (a broken or closed stream)."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.api import spdy
from nodeagent.api.spdyupgrade import SpdyUpgrade

HEAD = (b"POST /api/v1/namespaces/d/pods/p/exec?command=sh HTTP/1.1\r\nHost: a\r\n"
        b"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
ACCEPT = (b"HTTP/1.1 101 \r\nupgrade: WebSocket\r\nconnection: Upgrade\r\n"
          b"sec-websocket-protocol: v5.channel.k8s.io\r\n\r\n")
SESSION = b"".join([
    spdy.syn_stream_frame(w := spdy.HeaderWriter(), 1, {"streamtype": "error"}),
    spdy.syn_stream_frame(w, 3, {"streamtype": "stdin"}),
    spdy.data_frame(3, b"ls\n", fin=True),
    spdy.ping_frame(1),
])


class _Socket:
    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 1)


def _run(head: bytes, after: bytes, chunk: int) -> None:
    async def main() -> None:
        client, server = trio.testing.memory_stream_pair()
        server.socket = _Socket()  # type: ignore[attr-defined]
        upgrade = SpdyUpgrade(server)
        await client.send_all(head)
        with trio.move_on_after(0.2):
            first = await upgrade.receive_some()
            assert first
            if b"upgrade: websocket" not in first:
                return  # passed on as it came
            await upgrade.send_all(ACCEPT)
            for i in range(0, len(after), chunk):
                await client.send_all(after[i:i + chunk])
            await client.send_eof()
            while await upgrade.receive_some():
                pass
    trio.run(main)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.binary(max_size=400), st.integers(1, 64))
def test_random_heads_and_bytes(head: bytes, after: bytes, chunk: int) -> None:
    _run(head + b"\r\n\r\n", after, chunk)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SESSION) - 1), st.integers(0, 255)), max_size=6),
       st.integers(1, 64))
def test_bit_flips_of_a_real_session(flips: list[tuple[int, int]], chunk: int) -> None:
    data = bytearray(SESSION)
    for at, value in flips:
        data[at] = value
    _run(HEAD, bytes(data), chunk)
