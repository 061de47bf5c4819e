"""Who a request says it is for, and where a browser says it came from.

A browser is a client that anyone on the web can drive.  Two doors it opens
into an API on a private address, both closed here:

- **DNS rebinding**: a page at ``evil.example`` re-resolves its own name to
  127.0.0.1 (or a node's address) and its scripts then reach this server as
  "same origin".  Every request it sends carries ``Host: evil.example``; a
  request whose Host is neither an IP address nor one of this server's names is
  refused (403).
- **Cross-site WebSocket**: a WebSocket is not subject to CORS, so any page can
  open one to ``/exec``.  Browsers always send ``Origin``; an upgrade whose
  Origin is not this server's own is refused before it is accepted, as the
  apiserver refuses browser clients it does not trust.  Non-browser clients
  (kubectl, nodectl, the official clients) send no Origin.

Plain requests with bodies need a JSON or YAML content type (server.py), which
a cross-site form cannot send without a CORS preflight that this server never
answers.
"""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = ["foreign_host", "foreign_origin"]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _hostname(authority: str) -> str:
    """``host[:port]`` or ``[v6]:port`` -> host, lower case."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def foreign_host(scope: dict[str, Any], names: frozenset[str]) -> str | None:
    """The request's Host if it names something other than this server (an IP literal,
    ``localhost`` or one of ``names``); None when it is fine or absent."""
    host = _header(scope, b"host")
    if host is None:
        return None
    name = _hostname(host)
    if name in names or name == "localhost" or name.endswith(".localhost"):
        return None
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        return host


def foreign_origin(scope: dict[str, Any]) -> str | None:
    """A WebSocket upgrade's Origin when it is not this server's own (same host and port
    as the Host header); None for no Origin (not a browser) or the server's own."""
    origin = _header(scope, b"origin")
    if origin is None:
        return None
    host = (_header(scope, b"host") or "").strip().lower()
    _scheme, sep, authority = origin.strip().lower().partition("://")
    if sep and authority.rstrip("/") == host:
        return None
    return origin
