"""``pods/{name}/exec`` over WebSocket with Kubernetes' channel protocol.

kubectl (and nodectl) open a WebSocket with subprotocol ``v4.channel.k8s.io``
(or v5); each binary message starts with its channel: 0 stdin, 1 stdout,
2 stderr, 3 error (the final Status, with the exit code as a cause when it is
not 0), 4 resize.  The command runs through the runtime's exec in the pod's
container, so it sees the container's filesystem, namespaces and cgroup.

Not yet: stdin and tty (``-it``): the runtime's exec collects output until the
command ends and has no terminal, so an interactive request is answered with a
clear Failure rather than a hang.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.websockets import WebSocket, WebSocketDisconnect

from nodeagent.api.routes import parse_resource_path
from nodeagent.api.status import ApiError

__all__ = ["Exec", "serve_exec"]

log = logging.getLogger("nodeagent.api")

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDOUT, STDERR, ERROR = 1, 2, 3
# (pod, container, argv) -> (exit code, stdout, stderr)
Exec = Callable[[dict[str, Any], str, list[str]], Awaitable[tuple[int, bytes, bytes]]]


def _status(code: int, argv: list[str], message: str | None = None) -> bytes:
    if message is not None:
        body: dict[str, Any] = {"metadata": {}, "status": "Failure", "message": message}
    elif code == 0:
        body = {"metadata": {}, "status": "Success"}
    else:
        body = {"metadata": {}, "status": "Failure",
                "message": f"command terminated with non-zero exit code: error executing "
                           f"command {argv}, exit code {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
    return bytes([ERROR]) + json.dumps(body).encode()


async def serve_exec(scope: dict[str, Any], receive: Any, send: Any, objects: Any,
                     run: Exec | None) -> None:
    ws = WebSocket(scope, receive, send)
    offered = scope.get("subprotocols") or []
    protocol = next((p for p in PROTOCOLS if p in offered), None)
    if protocol is None:
        await ws.close(code=1002, reason="subprotocol v4.channel.k8s.io is required")
        return
    await ws.accept(subprotocol=protocol)
    query = parse_qs(scope.get("query_string", b"").decode())
    argv = query.get("command") or []
    try:
        target = parse_resource_path(scope["path"])
        if target is None or target.resource.kind != "Pod" or target.subresource != "exec" \
                or target.name is None:
            raise ApiError(404, "NotFound", "exec is a pods subresource: "
                           "/api/v1/namespaces/NS/pods/NAME/exec")
        pod = objects.get(target.resource, target.namespace or "default", target.name)
        if run is None:
            raise ApiError(404, "NotFound", "this agent runs no pods")
        if not argv:
            raise ApiError.bad_request("you must specify at least one command for the container")
        if query.get("tty", [""])[0] in ("true", "1") or query.get("stdin", [""])[0] in ("true", "1"):
            raise ApiError.bad_request("interactive exec (stdin, tty) is not supported yet: "
                                       "run the command without -i/-t")
        names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        container = (query.get("container") or [""])[0]
        if not container:
            if len(names) != 1:
                raise ApiError.bad_request(f"a container name must be specified for pod "
                                           f"{target.name}, choose one of: [{' '.join(names)}]")
            container = names[0]
        if container not in names:
            raise ApiError.bad_request(f"container {container} is not valid for pod {target.name}")
        code, out, err = await run(pod, container, argv)
        if out:
            await ws.send_bytes(bytes([STDOUT]) + out)
        if err:
            await ws.send_bytes(bytes([STDERR]) + err)
        await ws.send_bytes(_status(code, argv))
    except ApiError as exc:
        await ws.send_bytes(_status(1, argv, exc.message))
    except WebSocketDisconnect:
        return
    await ws.close()
