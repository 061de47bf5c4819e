"""exec, attach and port-forward to a pod on another node: the client's WebSocket
relayed, message for message, to the agent of the pod's node.

A pod's processes, logs and ports are on its own node, whose agent serves them; in a
cluster kubectl may be pointed at any server.  As kube-apiserver hands these requests to
the pod's kubelet, this server opens the same request to the pod's node's agent (over
TLS as itself, that agent's certificate checked for the node's name, as nodes/proxy does)
after it authenticated and authorized the caller, and then passes the messages both ways
until either side closes.  The upstream's refusal (its status and Status body) is the
client's refusal.  Uses websockets' sans-I/O client on Trio streams.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import trio
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader, InvalidStatus, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.http11 import Response as WsResponse
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from nodeagent.api.resourceproxy import Location, node_location
from nodeagent.api.status import ApiError

__all__ = ["RELAYED", "ask_nodes", "relay_websocket"]

# Marks a request one server relays to another: that one answers it itself, or says
# no, and never relays it again (a node whose address led back would loop).
RELAYED = "X-Nodeagent-Relayed"

log = logging.getLogger("nodeagent.api")

CONNECT_TIMEOUT_S = 5.0
ASK_WAIT_S = 5.0  # for another node's agent to answer a read (metrics)
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_READ = 65536


class _Client(ClientProtocol):
    """websockets' client, taking Kubernetes' subprotocol names as they are:
    ``SPDY/3.1+portforward.k8s.io`` is no RFC 6455 token, and the library refuses it."""

    def process_subprotocol(self, headers: Headers) -> Subprotocol | None:
        chosen = [v.strip() for v in headers.get_all("Sec-WebSocket-Protocol")]
        if not chosen:
            return None
        if len(chosen) != 1 or chosen[0] not in (self.available_subprotocols or []):
            raise InvalidHeader("Sec-WebSocket-Protocol", f"not one offered: {chosen}")
        return Subprotocol(chosen[0])


async def _upstream(where: Location, path_qs: str, subprotocols: list[str]
                    ) -> tuple[trio.abc.Stream, ClientProtocol]:
    """The WebSocket to the node's agent, its handshake done; ApiError with the
    upstream's answer when it refuses."""
    parts = urlsplit(where.base)
    host, port = parts.hostname or "", parts.port or 443
    with trio.move_on_after(CONNECT_TIMEOUT_S) as timer:
        try:
            tcp = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ApiError(503, "ServiceUnavailable", f"error dialing the pod's node's agent "
                           f"at {parts.netloc}: {exc}") from None
    if timer.cancelled_caught:
        raise ApiError(503, "ServiceUnavailable", f"timed out dialing the pod's node's agent "
                       f"at {parts.netloc}")
    stream: trio.abc.Stream = tcp
    if parts.scheme == "https":
        ctx = where.tls or ssl.create_default_context()
        stream = trio.SSLStream(tcp, ctx, server_hostname=where.server_name or host,
                                https_compatible=True)
    scheme = "wss" if parts.scheme == "https" else "ws"
    proto = _Client(parse_uri(f"{scheme}://{parts.netloc}{path_qs}"),
                           subprotocols=[Subprotocol(p) for p in subprotocols],
                           max_size=MAX_MESSAGE_BYTES)
    request = proto.connect()
    request.headers[RELAYED] = "1"
    proto.send_request(request)
    try:
        await _flush(stream, proto)
        while True:
            data = await stream.receive_some(_READ)
            if not data:
                proto.receive_eof()
            else:
                proto.receive_data(bytes(data))
            for event in proto.events_received():
                if isinstance(event, WsResponse):
                    if proto.handshake_exc is not None:
                        raise _refusal(proto.handshake_exc, event)
                    return stream, proto
            if not data:
                raise ApiError(503, "ServiceUnavailable", "the pod's node's agent closed the "
                               "connection during the upgrade")
    except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
        await stream.aclose()
        raise ApiError(503, "ServiceUnavailable", f"error talking to the pod's node's agent "
                       f"at {parts.netloc}: {exc}") from None
    except BaseException:
        await stream.aclose()
        raise


def _refusal(exc: Exception, response: WsResponse) -> ApiError:
    """The upstream's refusal as this server's: its code and message."""
    code = response.status_code if isinstance(exc, InvalidStatus) else 502
    try:
        status = orjson.loads(response.body or b"{}")
        message = str(status.get("message") or "")
        reason = str(status.get("reason") or "")
    except orjson.JSONDecodeError:
        message, reason = (response.body or b"").decode(errors="replace")[:500], ""
    return ApiError(code, reason or "ServiceUnavailable",
                    message or f"the pod's node's agent refused the upgrade ({code})")


async def _flush(stream: trio.abc.Stream, proto: ClientProtocol) -> None:
    for chunk in proto.data_to_send():
        if chunk:
            await stream.send_all(chunk)


async def relay_websocket(receive: Any, send: Any, where: Location, path_qs: str,
                          subprotocols: list[str]) -> None:
    """Relay an accepted-to-be client WebSocket (ASGI ``receive``/``send``) to the node's
    agent.  Raises ApiError before accepting when the upstream cannot be had."""
    stream, proto = await _upstream(where, path_qs, subprotocols)
    await send({"type": "websocket.accept", "subprotocol": proto.subprotocol})
    async with trio.open_nursery() as nursery:

        async def client_to_node() -> None:
            while True:
                msg = await receive()
                if msg["type"] == "websocket.disconnect":
                    proto.send_close(1000)
                    break
                if msg["type"] != "websocket.receive":
                    continue
                if msg.get("bytes") is not None:
                    proto.send_binary(msg["bytes"])
                else:
                    proto.send_text((msg.get("text") or "").encode())
                await _flush(stream, proto)
            await _flush(stream, proto)
            nursery.cancel_scope.cancel()

        async def node_to_client() -> None:
            closed: tuple[int, str] = (1000, "")
            try:
                while True:
                    data = await stream.receive_some(_READ)
                    if data:
                        proto.receive_data(bytes(data))
                    else:
                        proto.receive_eof()
                    for event in proto.events_received():
                        if not isinstance(event, Frame):
                            continue
                        if event.opcode is Opcode.BINARY:
                            await send({"type": "websocket.send", "bytes": bytes(event.data)})
                        elif event.opcode is Opcode.TEXT:
                            await send({"type": "websocket.send",
                                        "text": bytes(event.data).decode()})
                        elif event.opcode is Opcode.CLOSE and proto.close_rcvd is not None:
                            closed = (proto.close_rcvd.code, proto.close_rcvd.reason)
                    await _flush(stream, proto)  # pongs, the close's answer
                    if not data or proto.close_rcvd is not None:
                        break
            except (trio.BrokenResourceError, ssl.SSLError, OSError, WebSocketException):
                closed = (1011, "the pod's node's agent went away")
            code, reason = closed
            await send({"type": "websocket.close", "code": code if code != 1005 else 1000,
                        "reason": reason})
            nursery.cancel_scope.cancel()

        nursery.start_soon(client_to_node)
        nursery.start_soon(node_to_client)
    with trio.CancelScope(shield=True):
        await stream.aclose()



async def ask_nodes(nodes: list[dict[str, Any]], path: Callable[[dict[str, Any]], str],
                    agent_tls: Callable[[], ssl.SSLContext] | None) -> list[dict[str, Any]]:
    """What each node's agent answers to GET ``path(node)``, relayed (so of its own node
    only), asked at once: the items of a list, or the one object.  A node that does not
    answer within ASK_WAIT_S is left out, as metrics-server leaves out a node it cannot
    scrape."""
    found: list[dict[str, Any]] = []

    async def ask(node: dict[str, Any]) -> None:
        try:
            where = node_location(node, "", "", agent_tls)
        except ApiError:
            return  # no address or agent port: nothing from it
        verify: ssl.SSLContext | bool = where.tls if where.tls is not None else False
        with trio.move_on_after(ASK_WAIT_S):
            try:
                async with httpx.AsyncClient(verify=verify, trust_env=False,
                                             timeout=ASK_WAIT_S) as client:
                    r = await client.get(where.base + path(node), headers={RELAYED: "1"},
                                         extensions={"sni_hostname": where.server_name})
                body = r.json() if r.status_code == 200 else None
            except (httpx.HTTPError, ssl.SSLError, OSError, ValueError):
                return
            if not isinstance(body, dict):
                return
            items = body.get("items") if "items" in body else [body]
            found.extend(i for i in items or [] if isinstance(i, dict) and
                         isinstance(i.get("metadata"), dict))

    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(ask, node)
    return found
