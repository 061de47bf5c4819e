"""Length-framed messages over a byte stream: ``u32 little-endian length | payload``.

Raft's transport, gossip's TCP exchanges and the benchmarks' key-value server
all speak it.  The reader refuses a frame over its cap before reading it, so a
peer cannot make us buffer without bound.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import trio

__all__ = ["FrameTooLarge", "frame", "read_frames"]

_LEN = struct.Struct("<I")


class FrameTooLarge(Exception):
    pass


def frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


async def read_frames(stream: trio.abc.ReceiveStream, max_bytes: int) -> AsyncIterator[bytes]:
    """The payloads of ``u32 length | payload`` frames until the peer closes; raises
    FrameTooLarge (before reading it) for a frame over ``max_bytes``."""
    buf = bytearray()
    while chunk := await stream.receive_some(65536):
        buf += chunk
        while len(buf) >= _LEN.size:
            (length,) = _LEN.unpack_from(buf)
            if length > max_bytes:
                raise FrameTooLarge(f"a {length}-byte frame is over the limit ({max_bytes})")
            if len(buf) < _LEN.size + length:
                break
            yield bytes(buf[_LEN.size:_LEN.size + length])
            del buf[:_LEN.size + length]
