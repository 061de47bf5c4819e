"""No client can lock others out of the API: connections and watches are capped per client
address and in all, with 429 and Retry-After past a cap, and a reserve of connections is
kept for this machine and the cluster's own nodes (health checks, heartbeats).  Found: at
a 1024-descriptor limit 1010 watches from one client made the API unreachable.  The caps
here are small so the test is; the agent sizes them from its descriptor limit."""

from __future__ import annotations

from functools import partial

import httpx
import trio

from nodeagent.api.listen import ConnectionGate, ConnectionLimits
from nodeagent.api.objects import ObjectStore
from nodeagent.api.server import ApiApp, WatchLimits, serve_api
from nodeagent.store import LocalStore

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


async def _api(nursery: trio.Nursery, tmp_path, **kw) -> tuple[str, int]:
    store = LocalStore(str(tmp_path / "store"), fsync=False)
    await nursery.start(store.run)
    objects = ObjectStore(store)
    from nodeagent.agent import ensure_namespaces
    await ensure_namespaces(objects)
    app = ApiApp(objects, watch_limits=kw.pop("watch_limits", WatchLimits()))
    (bound,) = await nursery.start(partial(serve_api, app, "127.0.0.1:0", **kw))
    host, port = bound.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def _connect_from(source: str, port: int) -> tuple[trio.SocketStream, bytes]:
    """A connection from ``source`` (another loopback address: another client) and the
    first answer it gets to a health check."""
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    await stream.send_all(HEALTH)
    with trio.fail_after(10):
        return stream, await stream.receive_some(4096)


async def test_connections_are_capped_per_client_and_in_all_with_a_reserve(tmp_path) -> None:
    gate = ConnectionGate(ConnectionLimits(per_client=3, total=4, reserve=2),
                          trusted=lambda host: host == "127.0.0.1")
    async with trio.open_nursery() as nursery:
        _, port = await _api(nursery, tmp_path, gate=gate)
        held = []
        for _ in range(3):
            stream, answer = await _connect_from("127.0.0.2", port)
            assert answer.startswith(b"HTTP/1.1 200"), answer
            held.append(stream)
        stream, answer = await _connect_from("127.0.0.2", port)  # over its own cap
        assert answer.startswith(b"HTTP/1.1 429") and b"Retry-After: 1" in answer
        assert b'"reason":"TooManyRequests"' in answer
        await stream.aclose()
        stream, answer = await _connect_from("127.0.0.3", port)  # another client: room
        assert answer.startswith(b"HTTP/1.1 200")
        held.append(stream)
        stream, answer = await _connect_from("127.0.0.3", port)  # all 4 taken
        assert answer.startswith(b"HTTP/1.1 429")
        await stream.aclose()
        # This machine (and the cluster's nodes) still get in: the reserve is theirs.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            assert (await c.get("/readyz")).status_code == 200
        for s in held:
            await s.aclose()
        with trio.fail_after(5):  # at their close, not at the keep-alive timeout (30 s)
            while gate.open:  # noqa: ASYNC110 (the gate has no event to wait on)
                await trio.sleep(0.05)
        stream, answer = await _connect_from("127.0.0.2", port)  # places given back
        assert answer.startswith(b"HTTP/1.1 200")
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_watches_are_capped_per_client_with_429_and_retry_after(tmp_path) -> None:
    async with trio.open_nursery() as nursery:
        host, port = await _api(nursery, tmp_path, watch_limits=WatchLimits(per_client=3, total=5))
        url = f"http://{host}:{port}/api/v1/namespaces/default/configmaps?watch=true"
        async with httpx.AsyncClient(timeout=10) as c:
            async with c.stream("GET", url) as w1, c.stream("GET", url) as w2, \
                    c.stream("GET", url) as w3:
                assert {w1.status_code, w2.status_code, w3.status_code} == {200}
                r = await c.get(url)
                assert r.status_code == 429 and r.headers["retry-after"] == "1"
                assert r.json()["details"]["retryAfterSeconds"] == 1
                assert (await c.get(url.replace("?watch=true", ""))).status_code == 200
            await trio.sleep(0.2)
            async with c.stream("GET", url) as again:  # a closed watch gives its place back
                assert again.status_code == 200
        nursery.cancel_scope.cancel()


def test_the_agent_raises_its_descriptor_limit_to_the_hard_one() -> None:
    import resource
    import subprocess
    import sys
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    code = ("import resource; from nodeagent.api.listen import raise_fd_limit; "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard})); "
            "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(hard), str(hard)]


async def test_a_client_making_short_connections_one_after_another_is_never_refused(tmp_path):
    """Closed connections give their place back at once, not at the keep-alive timeout."""
    gate = ConnectionGate(ConnectionLimits(per_client=3, total=4, reserve=2),
                          trusted=lambda host: False)
    async with trio.open_nursery() as nursery:
        _, port = await _api(nursery, tmp_path, gate=gate)
        for _ in range(12):
            stream, answer = await _connect_from("127.0.0.2", port)
            assert answer.startswith(b"HTTP/1.1 200"), answer
            await stream.aclose()
            with trio.fail_after(5):
                while gate.open:  # noqa: ASYNC110 (the gate has no event to wait on)
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
