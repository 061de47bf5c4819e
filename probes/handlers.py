"""Probe handlers: httpGet and tcpSocket, with kubelet's rules and messages.

Each returns ``(ok, message)`` and never outlives its timeout.  httpGet: 200-399
is success; redirects are followed only to the same host (a redirect elsewhere
ends the probe as a success, as kubelet does, with a message saying so); the
body is read up to a cap; https is not verified (kubelet does not either).
Messages read like kubelet's events (``HTTP probe failed with statuscode: 500``).
"""

from __future__ import annotations

import httpx
import trio

__all__ = ["http_get", "tcp_socket"]


def _refused(exc: BaseException | None, depth: int = 0) -> bool:
    """Is a connection refusal somewhere in this error's causes (trio wraps them)?"""
    if exc is None or depth > 8:
        return False
    if isinstance(exc, ConnectionRefusedError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_refused(e, depth + 1) for e in exc.exceptions)
    return _refused(exc.__cause__, depth + 1) or _refused(exc.__context__, depth + 1)

MAX_BODY_BYTES = 10 * 1024
MAX_REDIRECTS = 10


_clients: dict[int, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    """One client per Trio run, shared by every probe: building a client (with its TLS
    context) per probe costs more than the probe.  No keep-alive, as kubelet's probes:
    every probe opens its own connection, as a new client would."""
    key = id(trio.lowlevel.current_root_task())
    client = _clients.get(key)
    if client is None:
        _clients.clear()  # clients of finished runs
        client = httpx.AsyncClient(verify=False, follow_redirects=False,
                                   limits=httpx.Limits(max_keepalive_connections=0))
        _clients[key] = client
    return client


async def http_get(host: str, port: int, path: str = "/", scheme: str = "HTTP",
                   headers: dict[str, str] | None = None,
                   timeout_s: float = 1.0) -> tuple[bool, str]:
    url = f"{scheme.lower()}://{host}:{port}{path if path.startswith('/') else '/' + path}"
    request_headers = {"User-Agent": "kube-probe/1.29", "Accept": "*/*", **(headers or {})}
    with trio.move_on_after(timeout_s):
        try:
            http = _client()
            for _ in range(MAX_REDIRECTS + 1):
                async with http.stream("GET", url, headers=request_headers,
                                       timeout=timeout_s) as resp:
                    read = 0
                    async for chunk in resp.aiter_bytes():
                        read += len(chunk)
                        if read >= MAX_BODY_BYTES:
                            break
                    if resp.is_redirect and "location" in resp.headers:
                        target = httpx.URL(url).join(resp.headers["location"])
                        if target.host != httpx.URL(url).host:
                            return True, (f"Probe terminated redirects, Response body: "
                                          f"redirect to {target}")
                        url = str(target)
                        continue
                    if 200 <= resp.status_code < 400:
                        return True, ""
                    return False, f"HTTP probe failed with statuscode: {resp.status_code}"
            return False, f'Get "{url}": stopped after {MAX_REDIRECTS} redirects'
        except httpx.ConnectError as exc:
            cause = "connect: connection refused" if _refused(exc) else str(exc)
            return False, f'Get "{url}": dial tcp {host}:{port}: {cause}'
        except httpx.TimeoutException:
            pass
        except httpx.HTTPError as exc:
            return False, f'Get "{url}": {exc}'
    return False, (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                   "awaiting headers)")


async def tcp_socket(host: str, port: int, timeout_s: float = 1.0) -> tuple[bool, str]:
    with trio.move_on_after(timeout_s):
        sock = trio.socket.socket(trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET)
        try:
            # A plain connect: the host is an IP (the pod's), no resolving or happy eyeballs.
            await sock.connect((host, port))
        except OSError as exc:
            cause = "connect: connection refused" if _refused(exc) else exc.strerror or str(exc)
            return False, f"dial tcp {host}:{port}: {cause}"
        finally:
            sock.close()
        return True, ""
    return False, f"dial tcp {host}:{port}: i/o timeout"
