"""The store of an agent that is not a Raft server: a copy fed by a server, writes sent to it.

Kubelet and kube-proxy keep informer caches of the apiserver; this agent keeps
a copy of the whole store instead (it is small: a cluster's objects), fed by one
server's ``/replica/stream`` (api/replica.py).  The copy holds the same keys
with the same revisions, so everything above the store (ObjectStore, the API,
watches, the pod manager and the proxy) runs unchanged on it: reads and watches
are local, resourceVersions mean the same as on the servers.

Writes are transactions sent to the server (which hands them to the Raft
leader); the answer comes once the copy has the write too, so this agent reads
its own writes.  ``read_barrier`` asks the server for a linearizable revision
and waits for the copy to reach it, so the API's reads here are as linearizable
as on a server.  When the server goes away the copy carries on from its
revision with the next server; one that has compacted past it sends the whole
state again, and watchers here resume as after a Raft snapshot.
"""

from __future__ import annotations

import logging
import random
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import msgpack
import trio

from nodeagent.store.base import MVCCReads, Watch
from nodeagent.store.errors import StoreError, StoreUnavailableError, TxnForbiddenError
from nodeagent.store.mvcc import MVCC, Txn, TxnResult
from nodeagent.store.wire import KEEPALIVE_S, MEDIA_TYPE, decode_result, revisions

__all__ = ["RemoteStore"]

log = logging.getLogger("nodeagent.store")

MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # a snapshot of the whole store comes as one message


class RemoteStore(MVCCReads):
    def __init__(self, servers: list[str], *, history_revisions: int = 100_000,
                 watch_buffer: int = 1024, timeout_s: float = 5.0,
                 rng: random.Random | None = None,
                 verify: ssl.SSLContext | bool | Callable[[], ssl.SSLContext] = True) -> None:
        """``verify``: the TLS context of the calls to the servers (the cluster's CA and
        this node's certificate); a callable is asked again for each new connection, so
        renewed certificates and a rotated CA are taken up."""
        self.verify = verify
        self.servers = [s.rstrip("/") for s in servers]  # empty: until gossip finds some
        self.mvcc = MVCC(history_revisions=history_revisions)
        self.watch_buffer = watch_buffer
        self._watches: set[Watch] = set()
        self.timeout_s = timeout_s
        self.ready = trio.Event()
        self._advanced = trio.Event()  # set (and replaced) each time the copy moves on
        self._server = (rng or random.Random()).randrange(max(1, len(self.servers)))
        self._client: httpx.AsyncClient | None = None
        self._servers_known = trio.Event()
        if self.servers:
            self._servers_known.set()

    @property
    def server(self) -> str:
        """The server the copy follows now (and writes go to)."""
        return self.servers[self._server % len(self.servers)] if self.servers else ""

    def set_servers(self, servers: list[str]) -> None:
        """The servers as gossip knows them now; the one followed stays if it is there."""
        current = self.server
        self.servers = [s.rstrip("/") for s in servers]
        if current in self.servers:
            self._server = self.servers.index(current)
        if self.servers:
            self._servers_known.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow a server until cancelled; started once the copy has the servers' state
        (the pod manager must not act on an empty copy)."""
        timeout = httpx.Timeout(self.timeout_s, read=KEEPALIVE_S * 3)
        failures = 0
        try:
            while True:  # a client per TLS context: a new one once the context changed
                context = self._context()
                async with httpx.AsyncClient(timeout=timeout, verify=context) as client:
                    self._client = client
                    while context is self._context():
                        await self._servers_known.wait()
                        try:
                            await self._follow(client, task_status)
                            failures = 0  # the server ended the stream: resume at once
                        except (httpx.HTTPError, StoreError, ValueError) as exc:  # msgpack's
                            failures += 1
                            if failures == 1 or failures % 30 == 0:
                                log.warning("store copy: server %s: %s (%d tries); trying the "
                                            "next", self.server, exc or type(exc).__name__,
                                            failures)
                            self._server += 1
                            await trio.sleep(min(1.0, 0.05 * failures))
        finally:
            self._client = None
            self._close_watches()

    def _context(self) -> ssl.SSLContext | bool:
        return self.verify() if callable(self.verify) else self.verify

    async def _follow(self, client: httpx.AsyncClient, task_status: trio.TaskStatus[None]) -> None:
        async with client.stream("GET", f"{self.server}/replica/stream",
                                 params={"revision": self.mvcc.revision}) as resp:
            if resp.status_code != 200:
                raise StoreError(f"{resp.status_code} from /replica/stream")
            unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_MESSAGE_BYTES)
            async for chunk in resp.aiter_raw():
                unpacker.feed(chunk)
                for message in unpacker:
                    self._take(message)
                    if not self.ready.is_set():
                        log.info("store copy: following %s at revision %d", self.server,
                                 self.mvcc.revision)
                        self.ready.set()
                        task_status.started()

    def _take(self, message: Any) -> None:
        kind = message.get("t") if isinstance(message, dict) else None
        if kind == "snap":
            state = message.get("state")
            if not isinstance(state, bytes):
                raise StoreError("malformed snapshot message from the server")
            self.mvcc.restore(state)
            for w in list(self._watches):  # they cannot follow a jump: they resume
                w.overflowed = True
                w.close()
        elif kind == "ev":
            for revision, changes in revisions(message.get("e")):
                self._publish(self.mvcc.install(revision, changes))
        elif kind == "rev":
            # The server's revision, with nothing this copy holds changed up to it (a
            # keep-alive, or changes to what a node's copy is not sent).
            revision = message.get("r")
            if type(revision) is int and revision > self.mvcc.revision:
                self._publish(self.mvcc.install(revision, []))
        else:
            raise StoreError(f"unknown message from the server: {str(message)[:80]}")
        self._advanced.set()
        self._advanced = trio.Event()

    async def wait_for(self, revision: int) -> bool:
        """Wait (up to the timeout) until the copy holds ``revision``; False if it did not."""
        with trio.move_on_after(self.timeout_s):
            while self.mvcc.revision < revision:
                await self._advanced.wait()
            return True
        return False

    async def _call(self, path: str, body: bytes = b"") -> bytes:
        """POST to the server the copy follows.  Only a request that never left (no
        connection) is tried on the next server: any other may have been applied."""
        client = self._client
        if client is None:
            raise StoreUnavailableError("the store copy is not running")
        for _ in self.servers:
            server = self.server
            try:
                resp = await client.post(f"{server}{path}", content=body,
                                         headers={"content-type": MEDIA_TYPE})
            except httpx.ConnectError as exc:
                log.warning("store copy: %s refused %s: %s", server, path, exc)
                self._server += 1
                continue
            except httpx.HTTPError as exc:
                raise StoreUnavailableError(f"{server}{path}: {exc or type(exc).__name__} "
                                            "(a write may have been applied)") from exc
            if resp.status_code == 200:
                return resp.content
            try:
                message = resp.json().get("message", "")
            except ValueError:
                message = resp.text[:200]
            if resp.status_code == 503:
                raise StoreUnavailableError(f"{server}: {message}")
            if resp.status_code == 403:
                raise TxnForbiddenError(f"{server}: {message}")
            raise StoreError(f"{server}{path}: {resp.status_code} {message}")
        raise StoreUnavailableError(f"no server answered ({', '.join(self.servers)})")

    async def txn(self, txn: Txn) -> TxnResult:
        result = decode_result(await self._call("/replica/txn", txn.encode()))
        if not await self.wait_for(result.revision):
            log.warning("store copy: write at revision %d is committed but the copy is at %d",
                        result.revision, self.mvcc.revision)
        return result

    async def read_barrier(self) -> None:
        answer = await self._call("/replica/barrier")
        try:
            revision = int(msgpack.unpackb(answer, raw=False)["revision"])
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            raise StoreError("malformed barrier answer from the server") from exc
        if not await self.wait_for(revision):
            raise StoreUnavailableError(f"the store copy is at revision {self.mvcc.revision}, "
                                        f"behind the servers' {revision}")
