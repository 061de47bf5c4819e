"""HOST:PORT text, as every flag, peer list and gossip message writes an address."""

from __future__ import annotations

__all__ = ["parse_host_port"]


def parse_host_port(text: str) -> tuple[str, int] | None:
    """"HOST:PORT" as (host, port); None if it is not one (port 0 means any)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535 or \
            any(c.isspace() for c in text):
        return None
    return host, int(port)
