"""SPDY/3.1 frames as kubectl's port-forward sends them: headers through the shared zlib
context, frames split anywhere, and the caps that keep a hostile peer's bytes small."""

from __future__ import annotations

import struct
import zlib

import pytest

from nodeagent.api import spdy


def client_bytes() -> bytes:
    """What kubectl sends for one forwarded connection: an error and a data stream with
    one requestID, data, a half-close and a ping."""
    w = spdy.HeaderWriter()
    return b"".join([
        spdy.syn_stream_frame(w, 1, {"streamType": "error", "port": "8080", "requestID": "0"}),
        spdy.data_frame(1, b"", fin=True),
        spdy.syn_stream_frame(w, 3, {"streamType": "data", "port": "8080", "requestID": "0"}),
        spdy.data_frame(3, b"GET / HTTP/1.1\r\n\r\n"),
        spdy.data_frame(3, b"", fin=True),
        spdy.ping_frame(1),
        spdy.rst_frame(3, spdy.CANCEL),
        spdy.goaway_frame(3),
    ])


EXPECTED = [
    spdy.SynStream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}, False),
    spdy.DataFrame(1, b"", True),
    spdy.SynStream(3, {"streamtype": "data", "port": "8080", "requestid": "0"}, False),
    spdy.DataFrame(3, b"GET / HTTP/1.1\r\n\r\n", False),
    spdy.DataFrame(3, b"", True),
    spdy.Ping(1),
    spdy.RstStream(3, spdy.CANCEL),
    spdy.GoAway(3),
]


def test_the_dictionary_is_spdy3s() -> None:
    """The spec's dictionary, by size and checksum (the id zlib puts in each stream)."""
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


def test_frames_read_whole_and_split_anywhere() -> None:
    data = client_bytes()
    assert spdy.FrameReader().feed(data) == EXPECTED
    one_by_one = spdy.FrameReader()
    frames = [f for i in range(len(data)) for f in one_by_one.feed(data[i:i + 1])]
    assert frames == EXPECTED


def test_a_second_header_block_needs_the_first_ones_context() -> None:
    """One zlib stream per direction: a block read without the ones before it is an
    error, not garbage headers."""
    w = spdy.HeaderWriter()
    spdy.syn_stream_frame(w, 1, {"streamType": "error"})
    second = spdy.syn_stream_frame(w, 3, {"streamType": "error"})
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameReader().feed(second)


def _syn_with_block(block: bytes) -> bytes:
    return spdy._control(spdy.SYN_STREAM, 0, struct.pack(">IIH", 1, 0, 0) + block)


def test_a_header_bomb_is_refused() -> None:
    """A few KiB of zlib that would inflate to 10 MiB stop at the 64 KiB cap."""
    raw = struct.pack(">I", 1) + struct.pack(">I", 4) + b"name" + \
        struct.pack(">I", 10 << 20) + b"a" * (10 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, zdict=spdy.DICTIONARY)
    block = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(block) < 64 * 1024
    with pytest.raises(spdy.ProtocolError, match="over 65536 bytes"):
        spdy.FrameReader().feed(_syn_with_block(block))


def test_malformed_frames_are_protocol_errors() -> None:
    w = spdy.HeaderWriter()
    too_many = {f"h{i}": "v" for i in range(spdy.MAX_HEADER_PAIRS + 1)}
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, zdict=spdy.DICTIONARY)
    cut = deflate.compress(struct.pack(">II", 2, 100) + b"x") + deflate.flush(zlib.Z_SYNC_FLUSH)
    for bad, says in (
            (spdy.syn_stream_frame(w, 1, too_many), "headers in one block"),
            (_syn_with_block(cut), "cut short"),
            (_syn_with_block(b"not zlib at all"), "does not inflate"),
            (struct.pack(">HHI", 0x8002, spdy.SYN_STREAM, 10) + bytes(10), "version 2"),
            (struct.pack(">II", 1, spdy.MAX_FRAME_BYTES + 1), "a frame of"),
            (spdy._control(spdy.PING, 0, b"\0"), "shorter than its fields"),
            (spdy.syn_stream_frame(spdy.HeaderWriter(), 0, {}), "stream 0")):
        with pytest.raises(spdy.ProtocolError, match=says):
            spdy.FrameReader().feed(bad)


def test_frames_this_side_does_not_use_are_skipped() -> None:
    w = spdy.HeaderWriter()
    settings = spdy._control(spdy.SETTINGS, 0, struct.pack(">I", 0))
    window = spdy._control(spdy.WINDOW_UPDATE, 0, struct.pack(">II", 1, 1000))
    unknown = spdy._control(42, 0, b"whatever")
    reply = spdy.syn_reply_frame(w, 2, {"a": "b"})
    r = spdy.FrameReader()
    assert r.feed(settings + window + unknown + reply) == []
    # The reply's header block moved the reader's zlib context on: the next block reads.
    assert r.feed(spdy.syn_stream_frame(w, 5, {"x": "y"})) == [spdy.SynStream(5, {"x": "y"},
                                                                              False)]
