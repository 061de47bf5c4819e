"""pods/proxy, services/proxy and nodes/proxy: HTTP to a pod, a Service's endpoint or a
node's agent, through the API (``kubectl proxy``, ``kubectl get --raw``), as the
apiserver does it.

Where a request may go is decided from the store, and only to the addresses Kubernetes
allows: a pod's own IP, an endpoint that is a pod's IP (a hand-written Endpoints cannot
point the API at another host), a node's address; never loopback, link-local, multicast
or unspecified, so that the API's own host and the cloud's metadata service are out of
reach.  The caller's credentials stay here: the upstream sees no Authorization header.
A node's agent is reached over TLS as this server, its certificate checked for the
node's name, as kube-apiserver reaches a kubelet.
"""

from __future__ import annotations

import ipaddress
import random
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from nodeagent.api.status import ApiError

__all__ = ["Location", "Proxy", "node_location", "pod_location", "service_location",
           "split_scheme_name_port"]

# Headers that belong to one connection (RFC 9110 7.6.1), and the caller's credentials.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "transfer-encoding",
                         "upgrade", "host", "authorization", "content-length"})
CONNECT_TIMEOUT_S = 5.0
# A proxied answer may stream for long (a log, a long poll), but not stall for long.
READ_TIMEOUT_S = 60.0
MAX_PROXIED = 64  # at once, on this server


@dataclass(frozen=True)
class Location:
    """Where a proxied request goes: ``base`` (scheme://host:port); ``tls``: the client
    context to use for https (None: not verified, as the apiserver treats pods);
    ``server_name``: the name the upstream's certificate must carry."""

    base: str
    tls: ssl.SSLContext | None = None
    server_name: str | None = None


def split_scheme_name_port(text: str) -> tuple[str, str, str]:
    """``[scheme:]name[:port]`` as Kubernetes reads a proxy path's name; 400 otherwise."""
    parts = text.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, (name, port) = "", parts
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        raise ApiError.bad_request(f'invalid request "{text}": expected [scheme:]name[:port]')
    if scheme not in ("", "http", "https") or not name:
        raise ApiError.bad_request(f'invalid request "{text}": expected [scheme:]name[:port] '
                                   "with scheme http or https")
    return scheme, name, port


def proxyable(address: str) -> bool:
    """Kubernetes' rule (a global unicast address): not loopback, link-local, multicast,
    unspecified or broadcast, and an IP, not a name."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified
                or ip == ipaddress.IPv4Address("255.255.255.255"))


def _host_port(ip: str, port: str | int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}" if port != "" else host


def _pod_ips(pod: dict[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict)]
    return [ip for ip in [status.get("podIP"), *ips] if isinstance(ip, str) and ip]


def _port_number(port: str, what: str) -> str:
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ApiError.bad_request(f'invalid port "{port}" for {what}: expected a number '
                                   "from 1 to 65535")
    return port


def pod_location(pod: dict[str, Any], scheme: str, port: str) -> Location:
    """A pod's own address; without a port, its first container's first port."""
    name = pod["metadata"]["name"]
    if not port:
        for c in (pod.get("spec") or {}).get("containers") or []:
            if c.get("ports"):
                port = str(c["ports"][0].get("containerPort") or "")
                break
    ips = _pod_ips(pod)
    if not ips:
        raise ApiError(503, "ServiceUnavailable", f'pod "{name}" has no IP address yet')
    if not proxyable(ips[0]):
        raise ApiError.bad_request("address not allowed")
    return Location(f"{scheme or 'http'}://{_host_port(ips[0], _port_number(port, name))}")


def service_location(svc: dict[str, Any], endpoints: dict[str, Any] | None,
                     find_pod: Callable[[str, str], dict[str, Any] | None], scheme: str,
                     port: str) -> Location:
    """A ready endpoint of the Service, picked at random, on the port named (by the
    Service's port number or name; without one, its unnamed port).  An address counts
    only if it is the IP of the pod its targetRef names."""
    meta = svc["metadata"]
    name, ns = meta["name"], meta.get("namespace") or "default"
    if port.isdigit():
        match = [p for p in (svc.get("spec") or {}).get("ports") or []
                 if str(p.get("port")) == port]
        if not match:
            raise ApiError(503, "ServiceUnavailable",
                           f'no service port {port} found for service "{name}"')
        port = match[0].get("name") or ""
    subsets = list((endpoints or {}).get("subsets") or [])
    random.shuffle(subsets)
    for ss in subsets:
        addresses = list(ss.get("addresses") or [])
        random.shuffle(addresses)
        for p in ss.get("ports") or []:
            if (p.get("name") or "") != port:
                continue
            for addr in addresses:
                ip, ref = addr.get("ip") or "", addr.get("targetRef") or {}
                if ref.get("kind") != "Pod" or not proxyable(ip):
                    continue
                pod = find_pod(ref.get("namespace") or ns, ref.get("name") or "")
                if pod is not None and ip in _pod_ips(pod):
                    return Location(f"{scheme or 'http'}://{_host_port(ip, p['port'])}")
    raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')


def node_location(node: dict[str, Any], scheme: str, port: str,
                  agent_tls: Callable[[], ssl.SSLContext] | None) -> Location:
    """The node's agent (its API port, daemonEndpoints' kubeletEndpoint) over TLS as this
    server; another port of the node's, plainly, as the apiserver does."""
    name = node["metadata"]["name"]
    status = node.get("status") or {}
    by_type = {a.get("type"): a.get("address") for a in reversed(status.get("addresses") or [])
               if isinstance(a, dict)}
    address = by_type.get("InternalIP") or by_type.get("ExternalIP") or ""
    if not proxyable(address):
        raise ApiError.bad_request(f'node "{name}" has no address that may be proxied to '
                                   f"({address or 'none'})")
    agent_port = str(((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {})
                     .get("Port") or "")
    port = _port_number(port, name)
    if port and port != agent_port:
        return Location(f"{scheme or 'http'}://{_host_port(address, port)}")
    if not agent_port:
        raise ApiError(503, "ServiceUnavailable", f'node "{name}" reports no agent port '
                       "(status.daemonEndpoints)")
    if agent_tls is None:
        raise ApiError(503, "ServiceUnavailable", "this server has no certificate to reach "
                       "a node's agent with (it runs without TLS)")
    return Location(f"https://{_host_port(address, agent_port)}", agent_tls(), name.lower())


class Proxy:
    """Sends requests upstream, at most MAX_PROXIED at once."""

    def __init__(self) -> None:
        self.running = 0

    async def forward(self, request: Request, body: bytes, where: Location, path: str,
                      prefix: str, extra: tuple[tuple[str, str], ...] = ()) -> Response:
        """``path``: what follows ``/proxy`` in the request; ``prefix``: the request's
        path up to it, put in front of a redirect the upstream answers with; ``extra``:
        headers added."""
        if self.running >= MAX_PROXIED:
            raise ApiError.too_many(f"too many proxied requests at once (limit {MAX_PROXIED})")
        headers = [(k, v) for k, v in request.headers.items()
                   if k.lower() not in _HOP_BY_HOP] + list(extra)
        url = where.base + (path or "/")
        if request.url.query:
            url += "?" + request.url.query
        verify: ssl.SSLContext | bool = where.tls if where.tls is not None else False
        client = httpx.AsyncClient(verify=verify, trust_env=False, follow_redirects=False,
                                   timeout=httpx.Timeout(READ_TIMEOUT_S,
                                                         connect=CONNECT_TIMEOUT_S))
        extensions = {"sni_hostname": where.server_name} if where.server_name else {}
        self.running += 1
        try:
            upstream = await client.send(client.build_request(
                request.method, url, headers=headers, content=body, extensions=extensions),
                stream=True)
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            self.running -= 1
            await client.aclose()
            raise ApiError(503, "ServiceUnavailable", f"error trying to reach "
                           f"{urlsplit(where.base).netloc}: {exc or type(exc).__name__}"
                           ) from None
        out = [(k, v) for k, v in upstream.headers.multi_items()
               if k.lower() not in _HOP_BY_HOP - {"content-length"}]
        out = [(k, _redirected(v, where.base, prefix) if k.lower() == "location" else v)
               for k, v in out]

        async def body_chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                return  # the upstream went away mid-answer: the client sees it cut short
            finally:
                self.running -= 1
                with trio.CancelScope(shield=True):
                    await upstream.aclose()
                    await client.aclose()

        response = StreamingResponse(body_chunks(), status_code=upstream.status_code)
        response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out]
        return response


def _redirected(location: str, base: str, prefix: str) -> str:
    """A redirect to the upstream itself, as the same place under the proxy path."""
    if location.startswith(base):
        location = location[len(base):] or "/"
    if location.startswith("/") and not location.startswith("//"):
        return prefix + location
    return location

