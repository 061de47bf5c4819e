"""An agent that is not a server keeps a copy of the store fed by a server's API, reads and
watches it locally, and writes through the server: real HTTP on loopback, a real store."""

from __future__ import annotations

import trio

from nodeagent.api.objects import ObjectStore
from nodeagent.api.server import ApiApp, serve_api
from nodeagent.objects.kinds import CONFIGMAPS, NAMESPACES
from nodeagent.store import LocalStore
from nodeagent.store.remote import RemoteStore
from nodeagent.store.wire import MEDIA_TYPE


def cm(name: str, value: str) -> dict:
    return {"metadata": {"name": name}, "data": {"v": value}}


async def start_api(nursery: trio.Nursery, objects: ObjectStore) -> tuple[str, trio.CancelScope]:
    """One API server over ``objects``; its own cancel scope stops it alone."""
    scope = trio.CancelScope()

    async def serve(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await serve_api(ApiApp(objects), "127.0.0.1:0", task_status=task_status)

    addrs = await nursery.start(serve)
    return f"http://{addrs[0].removeprefix('http://')}", scope


async def test_a_copy_reads_watches_and_writes_through_the_server(tmp_path):
    server_store = LocalStore(str(tmp_path / "server"), fsync=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(server_store.run)
        server = ObjectStore(server_store)
        await server.create(NAMESPACES, None, {"metadata": {"name": "default"}})
        for i in range(5):
            await server.create(CONFIGMAPS, "default", cm(f"before-{i}", str(i)))
        url, _ = await start_api(nursery, server)

        remote = RemoteStore([url])
        await nursery.start(remote.run)
        copy = ObjectStore(remote)
        # The state the server had, with the server's revisions.
        assert remote.revision == server_store.revision
        names = [o["metadata"]["name"] for o in copy.list(CONFIGMAPS, "default")["items"]]
        assert names == [f"before-{i}" for i in range(5)]
        assert copy.get(CONFIGMAPS, "default", "before-3")["metadata"]["resourceVersion"] == \
            server.get(CONFIGMAPS, "default", "before-3")["metadata"]["resourceVersion"]

        # A watch on the copy sees a change made on the server, with the old value.
        watch, _ = copy.watch(CONFIGMAPS, "default", remote.revision + 1)
        await server.update(CONFIGMAPS, "default", "before-1", cm("before-1", "changed"))
        with trio.fail_after(5):
            events = await watch.receive()
        assert [(e.type, e.kv.key) for e in events] == [("PUT", "/registry/configmaps/default/before-1")]
        assert events[0].prev_kv is not None and b'"1"' in events[0].prev_kv.value
        watch.close()

        # A write through the copy lands on the server and is readable here at once.
        made = await copy.create(CONFIGMAPS, "default", cm("through-copy", "x"))
        assert copy.get(CONFIGMAPS, "default", "through-copy")["data"] == {"v": "x"}
        assert server.get(CONFIGMAPS, "default", "through-copy")["metadata"]["uid"] == \
            made["metadata"]["uid"]
        # Compare-and-swap still holds: a second create of the name is refused.
        try:
            await copy.create(CONFIGMAPS, "default", cm("through-copy", "y"))
            raise AssertionError("a second create succeeded")
        except Exception as exc:  # ApiError 409
            assert getattr(exc, "code", None) == 409
        await copy.delete(CONFIGMAPS, "default", "before-0")
        assert "before-0" not in [o["metadata"]["name"] for o in
                                  server.list(CONFIGMAPS, "default")["items"]]

        # After a read barrier the copy holds every write the server took before it.
        for i in range(20):
            await server.create(CONFIGMAPS, "default", cm(f"burst-{i}", "b"))
        await copy.read_barrier()
        assert remote.revision >= server_store.revision
        assert copy.get(CONFIGMAPS, "default", "burst-19")["data"] == {"v": "b"}
        nursery.cancel_scope.cancel()


async def test_a_copy_moves_to_the_next_server_and_takes_a_snapshot_when_behind(tmp_path):
    """Two API servers over one store (as two Raft servers hold the same history): the copy
    follows one; when it stops, the copy goes on with the other; a copy further behind than
    the server's history gets the whole state, and its watchers resume."""
    server_store = LocalStore(str(tmp_path / "server"), fsync=False, history_revisions=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(server_store.run)
        server = ObjectStore(server_store)
        await server.create(NAMESPACES, None, {"metadata": {"name": "default"}})
        url_a, scope_a = await start_api(nursery, server)
        url_b, scope_b = await start_api(nursery, server)
        remote = RemoteStore([url_a, url_b])
        remote._server = 0
        await nursery.start(remote.run)
        copy = ObjectStore(remote)
        assert remote.server == url_a

        scope_a.cancel()  # the server the copy follows goes away
        await server.create(CONFIGMAPS, "default", cm("while-moving", "1"))
        assert await remote.wait_for(server_store.revision)
        assert remote.server == url_b
        assert copy.get(CONFIGMAPS, "default", "while-moving")["data"] == {"v": "1"}
        # Writes go to the server it follows now.
        await copy.create(CONFIGMAPS, "default", cm("after-move", "2"))
        assert server.get(CONFIGMAPS, "default", "after-move")["data"] == {"v": "2"}

        # Cut the copy off, write past the server's history, let it back.
        watch, _ = copy.watch(CONFIGMAPS, "default", remote.revision + 1)
        scope_b.cancel()
        for i in range(30):
            await server.update(CONFIGMAPS, "default", "after-move", cm("after-move", str(i)))
        assert server_store.compact_revision > remote.revision
        url_c, _ = await start_api(nursery, server)
        remote.servers[0] = url_c
        assert await remote.wait_for(server_store.revision)
        assert copy.get(CONFIGMAPS, "default", "after-move")["data"] == {"v": "29"}
        assert copy.list(CONFIGMAPS, "default")["items"] == server.list(CONFIGMAPS, "default")["items"]
        # The watcher could not follow the jump: its stream ended, flagged to resume.
        with trio.fail_after(5):
            async for _ in watch:
                pass
        assert watch.overflowed
        nursery.cancel_scope.cancel()


async def test_the_replica_calls_refuse_bad_input_clearly(tmp_path):
    import httpx
    server_store = LocalStore(str(tmp_path / "server"), fsync=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(server_store.run)
        url, _ = await start_api(nursery, ObjectStore(server_store))
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            r = await client.get("/replica/stream", params={"revision": "-1"})
            assert r.status_code == 400 and "revision" in r.json()["message"]
            r = await client.get("/replica/stream", params={"revision": "x"})
            assert r.status_code == 400
            for body in (b"", b"\xc1", b"\x93\x90\x90", b"\x93\x91\x94\xa1k\xa1z\xa1=\x01\x90\x90"):
                r = await client.post("/replica/txn", content=body,
                                      headers={"content-type": MEDIA_TYPE})
                assert r.status_code == 400 and "malformed" in r.json()["message"], body
            r = await client.post("/replica/txn", content=b"\x93\x90\x90\x90")
            assert r.status_code == 415  # a transaction comes with its media type
            r = await client.post("/replica/nothing")
            assert r.status_code == 404
            r = await client.post("/raft/hello", json={"id": 1})  # not a Raft server
            assert r.status_code == 404 and "not a Raft server" in r.json()["message"]
        assert server_store.revision == 0  # nothing bad got in
        nursery.cancel_scope.cancel()
