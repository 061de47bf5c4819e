"""Who may hold a connection to the API, and how many: hypercorn's trio worker, with a gate
in front of accept.

Found: at a 1024-descriptor limit, 1010 idle watches from one client made the API
unreachable for everyone, and trio logged EMFILE ten times a second.  So:

- every client address may hold at most ``per_client`` connections, and all clients
  together ``total``; a connection over either is answered ``429 Too Many Requests``
  with ``Retry-After`` and closed, before any request is read;
- ``reserve`` more are kept for the peers the agent itself relies on -- loopback
  (health checks, the operator) and the cluster's own nodes (their heartbeats and
  store copies) -- which no other client can take;
- accept failing for want of descriptors is logged at a bounded rate, and the agent
  raises its own descriptor limit at start (``raise_fd_limit``).

With TLS (every listener but ``--insecure-http``'s) the handshake is ours, not
hypercorn's: it runs in the connection's own task (hypercorn calls ``do_handshake``
there, under its handshake timeout), and the client certificate it verified is kept in
``TlsPeers`` under the client's address, which is how the application learns who is
calling (hypercorn's ASGI scope carries no TLS details).

The serving loop is hypercorn's ``worker_serve`` (hypercorn/trio/run.py, pinned) with
its listeners wrapped; everything else about a connection is hypercorn's.
"""

from __future__ import annotations

import errno
import logging
import resource
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
import trio
from cryptography import x509
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr, repr_socket_addr, wrap_app

from nodeagent import pki
from nodeagent.api.spdyupgrade import SpdyUpgrade
from nodeagent.api.status import ApiError
from nodeagent.logs import ThrottledLog
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NODES

__all__ = ["ConnectionGate", "ConnectionLimits", "NodeAddresses", "TlsPeers", "loopback",
           "raise_fd_limit", "serve_gated"]

log = logging.getLogger("nodeagent.api")
_throttled = ThrottledLog(log, interval_s=10.0)
_NO_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
RETRY_AFTER_S = 1


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    per_client: int = 128
    """Connections one client address may hold (kubectl holds a few; a watch is one)."""
    total: int = 4096
    """Connections all other clients together may hold."""
    reserve: int = 256
    """Connections beyond ``total`` kept for loopback and the cluster's own nodes."""

    @classmethod
    def for_descriptors(cls, limit: int) -> ConnectionLimits:
        """Limits that leave the agent descriptors for its own files, sockets and pods:
        at most half of ``limit`` for clients, an eighth of that held in reserve."""
        total = max(16, min(cls.total, limit // 2))
        return cls(per_client=min(cls.per_client, total // 2), total=total,
                   reserve=max(8, total // 8))


def loopback(host: str) -> bool:
    """This machine's own address (127.0.0.1, ::1) or a unix socket (no address).  Not
    the whole of 127/8: a local client may bind any of it, and those are ordinary clients
    (the abuse benchmark is one)."""
    return host in ("", "127.0.0.1", "::1", "::ffff:127.0.0.1")


class ConnectionGate:
    """Counts connections by client address.  ``trusted(host)`` says whether a peer may
    use the reserve and is free of the per-client cap: this machine and the cluster's own
    nodes (the agent passes both)."""

    def __init__(self, limits: ConnectionLimits,
                 trusted: Callable[[str], bool] = loopback) -> None:
        self.limits = limits
        self.trusted = trusted
        self.by_client: Counter[str] = Counter()
        self.open = 0

    def admit(self, host: str) -> bool:
        ours = self.trusted(host)
        cap = self.limits.total + (self.limits.reserve if ours else 0)
        if self.open >= cap or (not ours and self.by_client[host] >= self.limits.per_client):
            _throttled.log(f"refused:{host}", "api: refused a connection from %s: %d open from "
                           "it, %d in all (limits %d per client, %d in all)", host,
                           self.by_client[host], self.open, self.limits.per_client, cap)
            return False
        self.by_client[host] += 1
        self.open += 1
        return True

    def release(self, host: str) -> None:
        self.open -= 1
        self.by_client[host] -= 1
        if self.by_client[host] <= 0:
            del self.by_client[host]


_REFUSAL_BODY = orjson.dumps(ApiError.too_many(
    "too many connections from this client; try again later", RETRY_AFTER_S).to_status())
_REFUSAL = (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %d\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (RETRY_AFTER_S, len(_REFUSAL_BODY))) + _REFUSAL_BODY


class _GatedStream(trio.abc.HalfCloseableStream):
    """A connection that gives its place back when hypercorn closes it (trio's
    SocketStream is final, so this wraps one; hypercorn reads ``.socket``)."""

    def __init__(self, inner: trio.SocketStream, gate: ConnectionGate, host: str) -> None:
        self.inner, self.socket = inner, inner.socket
        self._gate, self._host, self._released = gate, host, False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """The client's bytes; at its end of the stream the place and the descriptor are
        given back at once.  (hypercorn ends the connection at EOF anyway, but an idle one
        only after its keep-alive timeout: a client making short connections one after
        another would otherwise fill its quota with connections it closed.)"""
        try:
            data = await self.inner.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self.aclose()
            raise
        if not data:
            await self.aclose()
        return data

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._gate.release(self._host)
        await self.inner.aclose()


Identity = tuple[str, tuple[str, ...]]  # (user, groups) of a client certificate


class TlsPeers:
    """The TLS side of the listeners: the context to serve with (``context()``, read at
    each connection, so a renewed certificate is served from the next one on) and the
    identity each connection's client certificate gave, by client address as the ASGI
    scope's ``client`` has it."""

    def __init__(self, context: Callable[[], ssl.SSLContext]) -> None:
        self.context = context
        self._by_peer: dict[tuple[str, int], Identity] = {}

    def identity(self, client: Any) -> Identity | None:
        return self._by_peer.get(tuple(client)) if client else None

    def record(self, peer: tuple[str, int], der: bytes | None) -> None:
        if der:
            self._by_peer[peer] = pki.identity(x509.load_der_x509_certificate(der))

    def forget(self, peer: tuple[str, int]) -> None:
        self._by_peer.pop(peer, None)


class _TlsStream(trio.abc.Stream):
    """A server-side TLS connection as hypercorn's TCPServer uses one (``do_handshake``,
    ``selected_alpn_protocol``, ``transport_stream.socket``) that records its client's
    certificate in ``peers`` once verified, and forgets it when closed."""

    def __init__(self, transport: _GatedStream, peers: TlsPeers) -> None:
        self.transport_stream = transport
        self._tls = trio.SSLStream(transport, peers.context(), server_side=True,
                                   https_compatible=True)
        self._peers = peers
        sock = transport.socket
        self._peer: tuple[str, int] | None = parse_socket_addr(
            sock.family, sock.getpeername())
        # The hot path, bound straight to the TLS stream's (no frame of ours per call).
        self.send_all = self._tls.send_all  # type: ignore[method-assign]
        self.receive_some = self._tls.receive_some  # type: ignore[method-assign]

    async def do_handshake(self) -> None:
        await self._tls.do_handshake()
        if self._peer is not None:
            self._peers.record(self._peer, self._tls.getpeercert(binary_form=True))

    def selected_alpn_protocol(self) -> str | None:
        return self._tls.selected_alpn_protocol()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._tls.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._tls.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._tls.receive_some(max_bytes)

    async def aclose(self) -> None:
        if self._peer is not None:
            self._peers.forget(self._peer)
            self._peer = None
        try:
            await self._tls.aclose()
        finally:
            await self.transport_stream.aclose()


class _GatedListener(trio.abc.Listener[trio.SocketStream]):
    def __init__(self, inner: trio.SocketListener, gate: ConnectionGate,
                 nursery: trio.Nursery, tls: TlsPeers | None = None) -> None:
        self.inner, self.gate, self.nursery, self.tls = inner, gate, nursery, tls

    async def accept(self) -> trio.SocketStream:
        while True:
            try:
                stream = await self.inner.accept()
            except OSError as exc:
                if exc.errno not in _NO_DESCRIPTORS:
                    raise
                _throttled.log("accept", "api: accept failed (%s); retrying", exc)
                await trio.sleep(0.1)
                continue
            try:
                peer = stream.socket.getpeername()
                host = peer[0] if isinstance(peer, tuple) else ""
            except OSError:
                await stream.aclose()
                continue
            if self.gate.admit(host):
                gated = _GatedStream(stream, self.gate, host)
                # A raw SPDY upgrade is served as the WebSocket it stands for (spdyupgrade).
                if self.tls is not None:
                    return SpdyUpgrade(_TlsStream(gated, self.tls))  # type: ignore[return-value]
                return SpdyUpgrade(gated)  # type: ignore[return-value]
            # Over TLS an answer would need a handshake first: the refusal is the close.
            self.nursery.start_soon(_refuse, stream, self.tls is None)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _refuse(stream: trio.SocketStream, answer: bool) -> None:
    if answer:
        with trio.move_on_after(1.0):
            try:
                await stream.send_all(_REFUSAL)
            except (trio.BrokenResourceError, OSError):
                pass
    await stream.aclose()


class NodeAddresses:
    """``trusted`` for a gate: is this host this machine or one of the cluster's nodes?
    The nodes' addresses are read from the Node objects, at most every ``refresh_s``."""

    def __init__(self, objects: Objects, refresh_s: float = 5.0) -> None:
        self.objects, self.refresh_s = objects, refresh_s
        self._addresses: frozenset[str] = frozenset()
        self._read_at = -refresh_s

    def __call__(self, host: str) -> bool:
        now = trio.current_time()
        if now - self._read_at >= self.refresh_s:
            self._read_at = now
            try:
                items = self.objects.list(NODES, None)["items"]
            except Exception:  # no store yet, or no leader: keep what we had
                items = None
            if items is not None:
                self._addresses = frozenset(
                    str(a.get("address")) for n in items
                    for a in (n.get("status") or {}).get("addresses") or []
                    if isinstance(a, dict))
        return loopback(host) or host in self._addresses


def raise_fd_limit() -> int:
    """Raise this process's descriptor limit to its hard limit (systemd's LimitNOFILE, or
    the shell's); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the descriptor limit from %d to %d: %s", soft, hard, exc)
    return soft


async def serve_gated(app: Any, config: Config, gate: ConnectionGate, *,
                      tls: TlsPeers | None = None,
                      task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """hypercorn.trio.serve (its worker_serve) with every listener behind ``gate``, and
    with ``tls`` speaking TLS (the addresses reported are then https://)."""
    app = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(app, config, lifespan_state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            sockets = config.create_sockets()
            binds, listeners = [], []
            for sock in sockets.insecure_sockets:
                sock.listen(config.backlog)
                inner = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
                listeners.append(_GatedListener(inner, gate, server_nursery, tls))
                scheme = "https" if tls is not None else "http"
                binds.append(f"{scheme}://{repr_socket_addr(sock.family, sock.getsockname())}")
            task_status.started(binds)
            try:
                await trio.serve_listeners(
                    partial(TCPServer, app, config, context,
                            ConnectionState(lifespan_state.copy())),
                    listeners, handler_nursery=server_nursery)
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
