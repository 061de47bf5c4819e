"""SPDY/3.1 frames, as kubectl's port-forward speaks them (moby/spdystream), without I/O.

kubectl 1.31+ tunnels SPDY through a WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``): each binary message carries SPDY bytes, frames may be
split across messages or share one.  :class:`FrameReader` takes bytes as they come
and yields whole frames; the ``*_frame`` functions make the bytes of frames to send.

Header blocks are zlib streams with SPDY's dictionary, one compression context per
direction for the whole connection (so the reader and the writer each keep one).  A
block's decompressed size and its pair count are capped, as every other parser here:
a few bytes of zlib must not become gigabytes of headers.  spdystream does no flow
control, and neither does this side (WINDOW_UPDATE is read and ignored).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

__all__ = ["DataFrame", "FrameReader", "ProtocolError", "RstStream", "SynStream",
           "data_frame", "goaway_frame", "ping_frame", "rst_frame", "syn_reply_frame",
           "syn_stream_frame"]

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = \
    1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
MAX_FRAME_BYTES = 1 << 20  # spdystream writes 32 KiB at most; a frame is buffered whole
MAX_HEADER_BYTES = 64 * 1024  # a decompressed header block (kubectl's are ~60 bytes)
MAX_HEADER_PAIRS = 64
# RST_STREAM status codes
PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 3, 5, 6

# SPDY/3's header compression dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1):
# length-prefixed names and values, then a tail of common status lines, dates and types.
_WORDS = (
    *"options head post put delete trace accept accept-charset accept-encoding "
     "accept-language accept-ranges age allow authorization cache-control connection "
     "content-base content-encoding content-language content-length content-location "
     "content-md5 content-range content-type date etag expect expires from host if-match "
     "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
     "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
     "server te trailer transfer-encoding upgrade user-agent vary via warning "
     "www-authenticate method get status".split(),
    "200 OK",  # the one entry with a space
    *"version HTTP/1.1 url public set-cookie keep-alive origin".split())
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
    "charset=iso-8859-1,utf-,*,enq=0.")


DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(ValueError):
    """Bytes that are not SPDY/3.1 as spdystream writes it: the session ends."""


@dataclass
class SynStream:
    stream_id: int
    headers: dict[str, str]
    fin: bool


@dataclass
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool


@dataclass
class RstStream:
    stream_id: int
    status: int


@dataclass
class Ping:
    id: int


@dataclass
class GoAway:
    last_stream_id: int


@dataclass
class FrameReader:
    """Bytes in, frames out.  Frames this side has no use for (SETTINGS, WINDOW_UPDATE,
    HEADERS, SYN_REPLY) are read and dropped; an unknown control type is skipped, as the
    spec asks."""

    _buffer: bytearray = field(default_factory=bytearray)
    _inflate: zlib._Decompress = field(
        default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))

    def feed(self, data: bytes) -> list[SynStream | DataFrame | RstStream | Ping | GoAway]:
        self._buffer += data
        frames: list[SynStream | DataFrame | RstStream | Ping | GoAway] = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if length > MAX_FRAME_BYTES:
                raise ProtocolError(f"a frame of {length} bytes: at most {MAX_FRAME_BYTES}")
            if len(self._buffer) < 8 + length:
                break
            head, body = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frame = self._frame(head, body)
            if frame is not None:
                frames.append(frame)
        return frames

    def _frame(self, head: bytes, body: bytes
               ) -> SynStream | DataFrame | RstStream | Ping | GoAway | None:
        flags = head[4]
        if not head[0] & 0x80:  # a data frame
            stream_id = int.from_bytes(head[:4], "big") & 0x7FFFFFFF
            return DataFrame(stream_id, body, bool(flags & FLAG_FIN))
        version = int.from_bytes(head[:2], "big") & 0x7FFF
        kind = int.from_bytes(head[2:4], "big")
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version}: only {VERSION} is spoken")
        if kind == SYN_STREAM:
            if len(body) < 10:
                raise ProtocolError("a SYN_STREAM shorter than its fixed fields")
            stream_id = int.from_bytes(body[:4], "big") & 0x7FFFFFFF
            if stream_id == 0:
                raise ProtocolError("a SYN_STREAM for stream 0")
            return SynStream(stream_id, self._headers(body[10:]), bool(flags & FLAG_FIN))
        if kind in (SYN_REPLY, HEADERS):
            self._headers(body[4:])  # read all the same: the zlib context moves on
            return None
        if kind == RST_STREAM and len(body) >= 8:
            return RstStream(int.from_bytes(body[:4], "big") & 0x7FFFFFFF,
                             int.from_bytes(body[4:8], "big"))
        if kind == PING and len(body) >= 4:
            return Ping(int.from_bytes(body[:4], "big"))
        if kind == GOAWAY and len(body) >= 4:
            return GoAway(int.from_bytes(body[:4], "big") & 0x7FFFFFFF)
        if kind in (RST_STREAM, PING, GOAWAY):
            raise ProtocolError(f"control frame type {kind} shorter than its fields")
        return None

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BYTES + 1)
        except zlib.error as exc:
            raise ProtocolError(f"a header block that does not inflate: {exc}") from None
        if len(raw) > MAX_HEADER_BYTES or self._inflate.unconsumed_tail:
            raise ProtocolError(f"a header block over {MAX_HEADER_BYTES} bytes")
        return parse_headers(raw)


def parse_headers(raw: bytes) -> dict[str, str]:
    """A decompressed name/value block: a count, then length-prefixed names and values
    (several values of one name joined by NUL; the first is kept)."""
    def take(at: int) -> tuple[str, int]:
        if at + 4 > len(raw):
            raise ProtocolError("a header block cut short")
        n = int.from_bytes(raw[at:at + 4], "big")
        if at + 4 + n > len(raw):
            raise ProtocolError("a header block cut short")
        return raw[at + 4:at + 4 + n].decode("utf-8", "replace"), at + 4 + n

    if len(raw) < 4:
        raise ProtocolError("a header block cut short")
    count = int.from_bytes(raw[:4], "big")
    if count > MAX_HEADER_PAIRS:
        raise ProtocolError(f"{count} headers in one block: at most {MAX_HEADER_PAIRS}")
    at, headers = 4, dict[str, str]()
    for _ in range(count):
        name, at = take(at)
        value, at = take(at)
        headers.setdefault(name.lower(), value.split("\0", 1)[0])
    return headers


class HeaderWriter:
    """This side's compression context (one per connection, as the reader's)."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15,
                                         zdict=DICTIONARY)

    def block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in headers.items())
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def _control(kind: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body


def syn_stream_frame(writer: HeaderWriter, stream_id: int, headers: dict[str, str],
                     fin: bool = False) -> bytes:
    """A client's new stream (tests and a future nodectl port-forward speak as kubectl)."""
    return _control(SYN_STREAM, FLAG_FIN if fin else 0,
                    struct.pack(">IIH", stream_id, 0, 0) + writer.block(headers))


def syn_reply_frame(writer: HeaderWriter, stream_id: int, headers: dict[str, str],
                    fin: bool = False) -> bytes:
    return _control(SYN_REPLY, FLAG_FIN if fin else 0,
                    struct.pack(">I", stream_id) + writer.block(headers))


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF,
                       ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def rst_frame(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def ping_frame(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack(">I", ping_id))


def goaway_frame(last_stream_id: int, status: int = 0) -> bytes:
    return _control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))
