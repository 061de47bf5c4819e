"""A trivial ASGI app on hypercorn (trio), as the agent serves it: the HTTP stack's ceiling.

Run as ``python _asgi_ceiling.py PORT``.  Answers every request with a small JSON body
after reading the request body, so a benchmark can tell how much of the agent's cost
per request is the HTTP server itself.
"""

from __future__ import annotations

import sys
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"kind":"Status"}'})


if __name__ == "__main__":
    config = Config()
    config.bind = [f"127.0.0.1:{sys.argv[1]}"]
    config.accesslog = None
    trio.run(serve, app, config)  # type: ignore[arg-type]
