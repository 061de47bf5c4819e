"""The SPDY bytes a port-forward client sends, fuzzed: whatever arrives, the reader
gives frames or a ProtocolError (which ends the session), never another exception and
never more than its caps hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.api import spdy

VALID = b"".join([
    spdy.syn_stream_frame(w := spdy.HeaderWriter(), 1,
                          {"streamType": "error", "port": "8080", "requestID": "0"}),
    spdy.syn_stream_frame(w, 3, {"streamType": "data", "port": "8080", "requestID": "0"}),
    spdy.data_frame(3, b"GET / HTTP/1.1\r\n\r\n", fin=True),
    spdy.ping_frame(1),
])


def _read(data: bytes, chunk: int) -> None:
    reader = spdy.FrameReader()
    try:
        for i in range(0, len(data), chunk):
            for frame in reader.feed(data[i:i + chunk]):
                if isinstance(frame, spdy.SynStream):
                    assert len(frame.headers) <= spdy.MAX_HEADER_PAIRS
    except spdy.ProtocolError:
        pass
    assert len(reader._buffer) <= spdy.MAX_FRAME_BYTES + 8


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 64))
def test_random_bytes(data: bytes, chunk: int) -> None:
    _read(data, chunk)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
       st.integers(1, 64))
def test_bit_flips_of_a_real_session(flips: list[tuple[int, int]], chunk: int) -> None:
    data = bytearray(VALID)
    for at, value in flips:
        data[at] = value
    _read(bytes(data), chunk)
