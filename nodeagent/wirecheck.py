"""Field checks for the decoders of untrusted bytes (Raft's and gossip's codecs).

A peer can send anything; a decoder accepts exactly what its encoder produces and
raises its own error class, naming the field, for anything else -- never another
exception, so a receive loop can count, log and drop a bad message and go on.
"""

from __future__ import annotations

import builtins
from typing import Any

import msgpack

__all__ = ["MAX_INT", "FieldChecks"]

MAX_INT = 2**63 - 1


class FieldChecks:
    def __init__(self, error: type[ValueError]) -> None:
        self.error = error

    def unpack(self, data: bytes) -> Any:
        """msgpack, with every length capped by the message's own size."""
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=len(data),
                                   max_str_len=len(data), max_array_len=len(data),
                                   max_map_len=len(data))
        except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
            raise self.error(f"not a msgpack message: {type(exc).__name__}") from exc

    def int(self, v: Any, name: str) -> builtins.int:
        if type(v) is not int or not 0 <= v <= MAX_INT:
            raise self.error(f"{name}: expected a non-negative integer, got {type(v).__name__}")
        return v

    def bytes(self, v: Any, name: str, limit: builtins.int | None = None) -> builtins.bytes:
        if type(v) is not bytes:
            raise self.error(f"{name}: expected bytes, got {type(v).__name__}")
        if limit is not None and len(v) > limit:
            raise self.error(f"{name}: {len(v)} bytes is over the limit of {limit}")
        return v

    def bool(self, v: Any, name: str) -> builtins.bool:
        if type(v) is not bool:
            raise self.error(f"{name}: expected a boolean, got {type(v).__name__}")
        return v

    def list(self, v: Any, name: str, length: builtins.int | None = None) -> builtins.list[Any]:
        if type(v) is not list or (length is not None and len(v) != length):
            raise self.error(f"{name}: expected a list" + (f" of {length}" if length else ""))
        return v
