"""Probe handlers: httpGet, tcpSocket and grpc, with kubelet's rules and messages.

Each returns ``(ok, message)`` and never outlives its timeout.  Messages read
like kubelet's events (``HTTP probe failed with statuscode: 500``).

A probe is one connection and one request, a thousand times a second on a busy
node, so the handlers go straight to non-blocking sockets and Trio's
``wait_readable``/``wait_writable``: a general HTTP client's pool, retries and
stream machinery (httpx over anyio) cost several times the probe itself
(scripts/bench/probes.py: httpx reached 390 probes/s on a whole core).  HTTP messages are still
written and parsed by h11 (the parser under httpx) and HTTP/2 for gRPC by h2
(python-hyper's, under hypercorn), not by hand.

httpGet: 200-399 is success; redirects are followed only to the same host (a
redirect elsewhere ends the probe as a success, with a message saying so, as
kubelet does); only the response head is read (kubelet's result only depends on
it); https is not verified (kubelet does not either); no keep-alive.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import ssl
from urllib.parse import urljoin, urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h11
import trio

__all__ = ["GrpcCheck", "HttpGet", "grpc_check", "http_get", "tcp_socket"]

USER_AGENT = "kube-probe/1.29"
MAX_REDIRECTS = 10
MAX_HEAD_BYTES = 64 * 1024  # a response head larger than this is a failed probe
RECV_BYTES = 16 * 1024


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cause(exc: OSError) -> str:
    """Go's wording for the usual socket errors (kubelet's messages come from Go)."""
    code = exc.errno
    if code == errno.ECONNREFUSED:
        return "connect: connection refused"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"connect: {os.strerror(code).lower()}"
    if code == errno.ECONNRESET:
        return "read: connection reset by peer"
    return (exc.strerror or str(exc)).lower()


_poll = select.poll()  # one fd at a time, never across an await: select() stops at fd 1024


def _writable_now(sock: socket.socket) -> bool:
    _poll.register(sock, select.POLLOUT)
    try:
        return bool(_poll.poll(0))
    finally:
        _poll.unregister(sock)


async def _connect(host: str, port: int) -> socket.socket:
    """A connected non-blocking socket (the host is an IP: the pod's, no resolving)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        err = sock.connect_ex((host, port))
        if err == errno.EINPROGRESS:
            # To a pod on this node (loopback, a veth) the handshake is usually done when
            # connect returns: a zero-timeout select finds it without a turn of the run
            # loop (an epoll registration and a task switch, half the probe's cost).
            if not _writable_now(sock):
                await trio.lowlevel.wait_writable(sock)
            else:
                await trio.lowlevel.checkpoint_if_cancelled()
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        if err:
            raise OSError(err, os.strerror(err))
        return sock
    except BaseException:
        sock.close()
        raise


class _Plain:
    """The two calls a probe needs of a stream, on a bare socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.sock)

    async def receive_some(self) -> bytes:
        while True:
            try:
                return self.sock.recv(RECV_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.sock)


_tls: ssl.SSLContext | None = None


def _tls_context(alpn: list[str] | None = None) -> ssl.SSLContext:
    """Unverified, as kubelet's probes (InsecureSkipVerify)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


async def _open(host: str, port: int, tls: bool) -> tuple[socket.socket, _Plain | trio.SSLStream]:
    global _tls
    sock = await _connect(host, port)
    if not tls:
        return sock, _Plain(sock)
    _tls = _tls or _tls_context()
    stream = trio.SSLStream(trio.SocketStream(trio.socket.from_stdlib_socket(sock)), _tls,
                            server_hostname=host)
    await stream.do_handshake()
    return sock, stream


class HttpGet:
    """One httpGet probe: the request is rendered once, each call is one GET."""

    def __init__(self, host: str, port: int, path: str = "/", scheme: str = "HTTP",
                 headers: dict[str, str] | None = None) -> None:
        self.host, self.port, self.tls = host, port, scheme.upper() == "HTTPS"
        self.path = path if path.startswith("/") else "/" + path
        self.url = f"{'https' if self.tls else 'http'}://{_hostport(host, port)}{self.path}"
        given = {k.lower(): (k, v) for k, v in (headers or {}).items()}
        # Go sends the Host header first, then the user's headers; a user "Host" wins
        # (kubelet sets req.Host from it).
        fields = [("Host", given.pop("host", ("", _hostport(host, port)))[1]),
                  given.pop("user-agent", ("User-Agent", USER_AGENT)),
                  given.pop("accept", ("Accept", "*/*")),
                  *given.values(), ("Connection", "close")]
        self.request = h11.Request(method="GET", target=self.path, headers=fields)
        conn = h11.Connection(h11.CLIENT)
        self.wire = conn.send(self.request) + (conn.send(h11.EndOfMessage()) or b"")

    async def __call__(self, timeout_s: float = 1.0) -> tuple[bool, str]:
        probe, url = self, self.url
        with trio.move_on_after(timeout_s):
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    status, location = await probe._get()
                except OSError as exc:
                    return False, f'Get "{url}": dial tcp {_hostport(probe.host, probe.port)}: {_cause(exc)}'
                except h11.ProtocolError as exc:
                    return False, f'Get "{url}": malformed HTTP response: {exc}'
                except (trio.BrokenResourceError, ssl.SSLError) as exc:
                    return False, f'Get "{url}": {exc or type(exc).__name__}'
                except EOFError:
                    return False, f'Get "{url}": EOF'
                if 300 <= status < 400 and location is not None:
                    target = urljoin(url, location)
                    parts = urlsplit(target)
                    if parts.hostname != urlsplit(url).hostname or parts.scheme not in ("http", "https"):
                        return True, f"Probe terminated redirects, Response body: redirect to {target}"
                    url = target
                    probe = HttpGet(probe.host, parts.port or (443 if parts.scheme == "https" else 80),
                                    (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                                    parts.scheme, {k: v for k, v in
                                                   ((n.decode(), v.decode()) for n, v in self.request.headers)
                                                   if k.lower() not in ("connection", "host")})
                    continue
                if 200 <= status < 400:
                    return True, ""
                return False, f"HTTP probe failed with statuscode: {status}"
            return False, f'Get "{url}": stopped after {MAX_REDIRECTS} redirects'
        return False, (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                       "awaiting headers)")

    async def _get(self) -> tuple[int, str | None]:
        """Send the request, read the response head: (status, Location or None)."""
        sock, stream = await _open(self.host, self.port, self.tls)
        try:
            await stream.send_all(self.wire)
            conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
            conn.send(self.request)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some() if isinstance(stream, _Plain) \
                        else await stream.receive_some(RECV_BYTES)
                    conn.receive_data(bytes(data))
                elif isinstance(event, h11.Response):
                    location = next((v.decode("latin-1") for n, v in event.headers
                                     if n == b"location"), None)
                    return event.status_code, location
                elif isinstance(event, h11.ConnectionClosed):
                    raise EOFError
                # h11.InformationalResponse (100 Continue and the like): read on
        finally:
            sock.close()


async def http_get(host: str, port: int, path: str = "/", scheme: str = "HTTP",
                   headers: dict[str, str] | None = None,
                   timeout_s: float = 1.0) -> tuple[bool, str]:
    return await HttpGet(host, port, path, scheme, headers)(timeout_s)


async def tcp_socket(host: str, port: int, timeout_s: float = 1.0) -> tuple[bool, str]:
    with trio.move_on_after(timeout_s):
        try:
            (await _connect(host, port)).close()
        except OSError as exc:
            return False, f"dial tcp {_hostport(host, port)}: {_cause(exc)}"
        return True, ""
    return False, f"dial tcp {_hostport(host, port)}: i/o timeout"


# --- gRPC health checking (grpc.health.v1.Health/Check) ----------------------------------

SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
GRPC_CODES = {1: "Canceled", 2: "Unknown", 3: "InvalidArgument", 4: "DeadlineExceeded",
              5: "NotFound", 7: "PermissionDenied", 8: "ResourceExhausted", 12: "Unimplemented",
              13: "Internal", 14: "Unavailable", 16: "Unauthenticated"}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def health_request(service: str) -> bytes:
    """HealthCheckRequest{service} as one length-prefixed gRPC message."""
    raw = service.encode()
    body = b"\x0a" + _varint(len(raw)) + raw if raw else b""
    return b"\x00" + len(body).to_bytes(4, "big") + body


def health_status(frame: bytes) -> int:
    """The status field of a HealthCheckResponse frame; ValueError if it is malformed.

    The message has one field; a hand-read varint is what the protobuf runtime
    (and generated code) would otherwise be needed for.
    """
    if len(frame) < 5 or frame[0] != 0:
        raise ValueError("not an uncompressed gRPC message")
    size = int.from_bytes(frame[1:5], "big")
    msg = frame[5:5 + size]
    if len(msg) != size:
        raise ValueError("truncated gRPC message")
    status, i = 0, 0
    while i < len(msg):
        key, i = _read_varint(msg, i)
        wire = key & 7
        if wire == 0:
            value, i = _read_varint(msg, i)
            if key >> 3 == 1:
                status = value
        elif wire == 2:
            length, i = _read_varint(msg, i)
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"protobuf wire type {wire} in a HealthCheckResponse")
        if i > len(msg):
            raise ValueError("truncated protobuf field")
    return status


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("bad protobuf varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


class GrpcCheck:
    """One grpc probe: the gRPC health protocol over h2, plaintext (as kubelet's)."""

    def __init__(self, host: str, port: int, service: str = "") -> None:
        self.host, self.port, self.service = host, port, service
        self.target = _hostport(host, port)
        self.message = health_request(service)

    async def __call__(self, timeout_s: float = 1.0) -> tuple[bool, str]:
        with trio.move_on_after(timeout_s) as connecting:
            try:
                sock = await _connect(self.host, self.port)
            except OSError as exc:
                return False, (f'timeout: failed to connect service "{self.target}" within '
                               f"{timeout_s:g}s: {_cause(exc)}")
        if connecting.cancelled_caught:
            return False, f'timeout: failed to connect service "{self.target}" within {timeout_s:g}s'
        try:
            with trio.move_on_after(max(0.0, connecting.deadline - trio.current_time())):
                try:
                    code, detail, status = await self._check(_Plain(sock))
                except (OSError, EOFError, ValueError, h2.exceptions.ProtocolError) as exc:
                    return False, f"error: health rpc probe failed: {exc or type(exc).__name__}"
                if code == 12:
                    return False, ("this server does not implement the grpc health protocol "
                                   f"(grpc.health.v1.Health): {detail}")
                if code != 0:
                    return False, (f"error: health rpc probe failed: rpc error: code = "
                                   f"{GRPC_CODES.get(code, code)} desc = {detail}")
                if status != 1:
                    return False, (f"service unhealthy (responded with "
                                   f'"{SERVING_STATUS.get(status, status)}")')
                return True, ""
            return False, f"timeout: health rpc did not complete within {timeout_s:g}s"
        finally:
            sock.close()

    async def _check(self, stream: _Plain) -> tuple[int, str, int]:
        """(grpc-status, grpc-message, serving status) of one Check call."""
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                     header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                (":path", "/grpc.health.v1.Health/Check"),
                                (":authority", self.target), ("content-type", "application/grpc"),
                                ("te", "trailers"), ("user-agent", USER_AGENT)])
        conn.send_data(sid, self.message, end_stream=True)
        await stream.send_all(conn.data_to_send())
        headers: dict[str, str] = {}
        body = b""
        while True:
            data = await stream.receive_some()
            if not data:
                raise EOFError("connection closed before the response")
            for event in conn.receive_data(data):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    headers.update(dict(event.headers))  # type: ignore[arg-type]
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    if len(body) > MAX_HEAD_BYTES:
                        raise ValueError("health response too large")
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    raise EOFError(f"stream reset with error code {event.error_code}")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise EOFError(f"connection closed: {event.error_code!s}")
                elif isinstance(event, h2.events.StreamEnded):
                    if headers.get(":status", "200") != "200":
                        raise ValueError(f"HTTP status {headers.get(':status')}")
                    code = int(headers.get("grpc-status", "2"))
                    return code, headers.get("grpc-message", ""), \
                        health_status(body) if code == 0 else 0
            out = conn.data_to_send()
            if out:
                await stream.send_all(out)


async def grpc_check(host: str, port: int, service: str = "",
                     timeout_s: float = 1.0) -> tuple[bool, str]:
    return await GrpcCheck(host, port, service)(timeout_s)
