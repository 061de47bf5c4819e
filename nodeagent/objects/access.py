"""The object store as its users see it: the controllers, the pod manager, the proxy, the
node's status and routes, and the event recorder.

A Protocol, so that each of them names what it is handed (the API's ObjectStore in the
agent and in the tests) without importing the API, and the type checker holds the two
to the same calls.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

from nodeagent.objects.kinds import Resource
from nodeagent.store.base import KeyValueStore, Watch
from nodeagent.store.mvcc import Event, Txn, TxnResult

__all__ = ["Obj", "Objects"]

Obj = dict[str, Any]


class Objects(Protocol):
    """Objects by resource, namespace and name.  Errors are the API's (ApiError: 404 not
    found, 409 conflict, 503 no store to write to), as a client of the API would see."""

    store: KeyValueStore

    def get(self, res: Resource, namespace: str | None, name: str) -> Obj: ...

    def list(self, res: Resource, namespace: str | None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int = 0,
             continue_token: str | None = None, resource_version: str | None = None,
             raw: bool = False) -> Obj: ...

    async def create(self, res: Resource, namespace: str | None, body: Any, *,
                     dry_run: bool = False, heavy: bool = False) -> Obj: ...

    async def update(self, res: Resource, namespace: str | None, name: str, body: Any, *,
                     subresource: str | None = None, dry_run: bool = False,
                     heavy: bool = False) -> Obj: ...

    async def patch(self, res: Resource, namespace: str | None, name: str, patch: Any,
                    content_type: str, *, subresource: str | None = None,
                    dry_run: bool = False, heavy: bool = False) -> Obj: ...

    async def delete(self, res: Resource, namespace: str | None, name: str, *,
                     grace_period_s: int | None = None, preconditions_uid: str | None = None,
                     preconditions_rv: str | None = None, dry_run: bool = False,
                     propagation: str | None = None) -> tuple[Obj, bool]: ...

    async def bind(self, namespace: str, name: str, binding: Any) -> Obj: ...

    def watch(self, res: Resource, namespace: str | None,
              start_revision: int) -> tuple[Watch, builtins.list[Event]]: ...

    async def txn(self, txn: Txn) -> TxnResult: ...
