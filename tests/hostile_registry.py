"""A registry that answers what a test tells it to (ASGI, served by hypercorn on loopback):
the hostile registry of the registry client's tests and fuzzers."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


class Hostile:
    """An ASGI registry whose answers each test sets."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, str, str | None]] = []  # (host, path, authorization)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append((headers.get("host", ""), scope["path"], headers.get("authorization")))
        status, extra, body = self.routes.get(scope["path"], (404, {}, b""))
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-length", str(len(body)).encode()),
            *((k.encode(), v.encode()) for k, v in extra.items())]})
        await send({"type": "http.response.body", "body": body})


async def serve_hostile(nursery: trio.Nursery) -> tuple[Hostile, str]:
    """Start one on loopback; returns it and its HOST:PORT."""
    app = Hostile()
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    (bound,) = await nursery.start(partial(serve, app, config))  # type: ignore[arg-type]
    return app, bound.removeprefix("http://")
