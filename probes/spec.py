"""From a Pod's probe spec to a handler: port names resolved, host defaulted to the pod IP.

Validation rejects bad probes at the API; a spec that slips through
anyway (an object written before a rule existed, say) becomes a handler that
fails with a message saying what is wrong, never an exception in a worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import h11

from probes.handlers import GrpcCheck, HttpGet, tcp_socket
from probes.state import ProbeParams

__all__ = ["ExecFn", "handler_for"]

# Runs a command in the container with a timeout: (args, timeout_s) -> (exit code, output).
ExecFn = Callable[[list[str], float], Awaitable[tuple[int, str]]]
Handler = Callable[[float], Awaitable[tuple[bool, str]]]


def _failing(message: str) -> Handler:
    async def handler(timeout_s: float) -> tuple[bool, str]:
        return False, message
    return handler


def _port(value: Any, container: dict[str, Any]) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    for p in container.get("ports") or []:
        if p.get("name") == value:
            return int(p["containerPort"])
    return None


def handler_for(probe: dict[str, Any], container: dict[str, Any], pod_ip: str,
                exec_fn: ExecFn | None = None) -> tuple[ProbeParams, Handler]:
    params = ProbeParams.from_spec(probe)
    if "httpGet" in probe:
        h = probe["httpGet"] or {}
        port = _port(h.get("port"), container)
        if port is None:
            return params, _failing(f"port {h.get('port')!r} is not a port of the container")
        headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []
                   if isinstance(x, dict) and "name" in x and "value" in x}
        try:
            return params, HttpGet(h.get("host") or pod_ip, port, h.get("path") or "/",
                                   h.get("scheme") or "HTTP", headers)
        except h11.LocalProtocolError as exc:  # a header or path HTTP cannot carry
            return params, _failing(f"httpGet cannot be sent: {exc}")
    if "tcpSocket" in probe:
        t = probe["tcpSocket"] or {}
        port = _port(t.get("port"), container)
        if port is None:
            return params, _failing(f"port {t.get('port')!r} is not a port of the container")
        host, tcp_port = t.get("host") or pod_ip, port

        async def tcp(timeout_s: float) -> tuple[bool, str]:
            return await tcp_socket(host, tcp_port, timeout_s)
        return params, tcp
    if "exec" in probe:
        command = list((probe["exec"] or {}).get("command") or [])
        if not command or exec_fn is None:
            return params, _failing("exec probe without a command or a way to run it")
        run = exec_fn

        async def exec_probe(timeout_s: float) -> tuple[bool, str]:
            code, output = await run(command, timeout_s)
            if code == 0:
                return True, ""
            return False, (f"command {command!r} exited with {code}: {output.strip()[:200]}"
                           if output.strip() else f"command {command!r} exited with {code}")
        return params, exec_probe
    if "grpc" in probe:
        g = probe["grpc"] or {}
        port = g.get("port")
        if not isinstance(port, int):
            return params, _failing(f"grpc port {port!r} is not a port number")
        return params, GrpcCheck(pod_ip, port, g.get("service") or "")
    return params, _failing("the probe has no handler")
