"""``pods/{name}/exec`` and ``pods/{name}/attach`` over WebSocket with Kubernetes'
channel protocol.

kubectl (and nodectl) open a WebSocket with subprotocol ``v4.channel.k8s.io``
(or v5); each binary message starts with its channel: 0 stdin, 1 stdout,
2 stderr, 3 error (the final Status, with the exit code as a cause when it is
not 0), 4 resize (``{"Width": W, "Height": H}``), and with v5 255 close (the
client's stdin ended).  The command runs through the runtime's exec in the pod's
container, so it sees the container's filesystem, namespaces and cgroup; its
stdio (or its terminal, with tty) is handed to this process and streamed both
ways as it comes, so ``exec -it POD -- sh`` is a shell and ``-- tail -f`` follows.
A client that goes away hangs the command up.

``attach`` speaks the same protocol to a container's own process: its output from now
on, and its stdin when the container keeps one (``stdin: true``); the session ends
when the container does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

import trio
from starlette.websockets import WebSocket, WebSocketDisconnect

from nodeagent.api.routes import parse_resource_path
from nodeagent.api.status import ApiError

__all__ = ["Exec", "ExecStreams", "serve_exec"]

log = logging.getLogger("nodeagent.api")

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
DRAIN_S = 1.0  # output still arriving after the command exited (a child holding the pipe)


class ExecStreams(Protocol):
    stdin: Any  # trio streams; None when not asked for
    stdout: Any
    stderr: Any

    def resize(self, columns: int, rows: int) -> None: ...
    async def wait(self) -> int: ...
    async def aclose(self) -> None: ...


# (pod, container, argv, stdin, tty) -> the started command's streams
Exec = Callable[[dict[str, Any], str, list[str], bool, bool], Awaitable[ExecStreams]]


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, [""])[0] in ("true", "1")


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
                     run: Exec | None, subresource: str = "exec") -> None:
    """``run`` starts the exec'd command, or (``subresource`` attach) attaches to the
    container's process, the command ignored."""
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
        if target is None or target.resource.kind != "Pod" or \
                target.subresource != subresource or target.name is None:
            raise ApiError(404, "NotFound", f"{subresource} is a pods subresource: "
                           f"/api/v1/namespaces/NS/pods/NAME/{subresource}")
        pod = objects.get(target.resource, target.namespace or "default", target.name)
        if run is None:
            raise ApiError(404, "NotFound", "this agent runs no pods")
        if not argv and subresource == "exec":
            raise ApiError.bad_request("you must specify at least one command for the container")
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        container = (query.get("container") or [""])[0]
        if not container:
            if len(names) != 1:
                raise ApiError.bad_request(f"a container name must be specified for pod "
                                           f"{target.name}, choose one of: [{' '.join(names)}]")
            container = names[0]
        debuggers = [c["name"] for c in spec.get("ephemeralContainers") or []]
        if container not in names + debuggers:
            raise ApiError.bad_request(f"container {container} is not valid for pod {target.name}")
        stdin, tty = _flag(query, "stdin"), _flag(query, "tty")
        session = await run(pod, container, argv, stdin, tty)
        try:
            code = await _stream(ws, session, stdin or tty)
        finally:
            await session.aclose()
        await ws.send_bytes(_status(code, argv))
    except ApiError as exc:
        await ws.send_bytes(_status(1, argv, exc.message))
    except WebSocketDisconnect:
        return
    await ws.close()


async def _stream(ws: WebSocket, session: ExecStreams, interactive: bool) -> int:
    """Pump the command's output to the client and the client's stdin and resizes to the
    command until it exits and its output has drained; returns its exit code.  Raises
    WebSocketDisconnect when the client goes away first."""
    send_lock = trio.Lock()
    gone: list[BaseException] = []

    async def pump(stream: Any, channel: int, done: trio.Event) -> None:
        try:
            while data := await stream.receive_some(65536):
                async with send_lock:
                    await ws.send_bytes(bytes([channel]) + data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # a terminal whose last user closed it reads EIO: its end
        finally:
            done.set()

    async def from_client(cancel: trio.CancelScope) -> None:
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                data = message.get("bytes") or (message.get("text") or "").encode()
                if not data or not interactive:
                    continue
                if data[0] == STDIN and session.stdin is not None and len(data) > 1:
                    try:
                        await session.stdin.send_all(data[1:])
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass  # the command closed its stdin
                elif data[0] == RESIZE:
                    try:
                        size = json.loads(data[1:])
                        session.resize(int(size["Width"]), int(size["Height"]))
                    except (ValueError, TypeError, KeyError, OSError):
                        pass  # a bad resize changes nothing
                elif data[0] == CLOSE and data[1:2] == bytes([STDIN]) and \
                        session.stdin is not None and session.stdin is not session.stdout:
                    await session.stdin.aclose()
        except (WebSocketDisconnect, RuntimeError) as exc:
            gone.append(exc)
            cancel.cancel()

    outputs = [(s, ch) for s, ch in ((session.stdout, STDOUT), (session.stderr, STDERR))
               if s is not None]
    drained = [trio.Event() for _ in outputs]
    with trio.CancelScope() as everything:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(from_client, everything)
            for (stream, channel), done in zip(outputs, drained, strict=True):
                nursery.start_soon(pump, stream, channel, done)
            code = await session.wait()
            with trio.move_on_after(DRAIN_S):
                for done in drained:
                    await done.wait()
            nursery.cancel_scope.cancel()
    if gone:
        raise WebSocketDisconnect()
    return code
