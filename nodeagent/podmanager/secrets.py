"""The Secrets of a node that is not a Raft server: its store copy holds none (a node
holds only what its own pods need), so the ones its pods name are asked of a server, one
by one, with the node's own credential -- which the Node authorizer lets read exactly
those (api/nodeauth.py), as kubelet's secret manager asks the apiserver.

Each is kept for ``ttl_s`` and asked again after, so a changed Secret reaches its pods'
volumes within that (kubelet's cache TTL does the same).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import trio

from nodeagent.objects.podutil import pod_references

__all__ = ["RemoteSecrets"]

log = logging.getLogger("nodeagent.podmanager")

Obj = dict[str, Any]


class RemoteSecrets:
    def __init__(self, server: Callable[[], str], verify: Callable[[], ssl.SSLContext],
                 ttl_s: float = 30.0) -> None:
        self.server, self.verify, self.ttl_s = server, verify, ttl_s
        self._context: ssl.SSLContext | None = None
        self._cache: dict[tuple[str, str], tuple[Obj | None, float]] = {}
        self._client: httpx.AsyncClient | None = None

    def get(self, namespace: str, name: str) -> Obj | None:
        entry = self._cache.get((namespace, name))
        return entry[0] if entry else None

    async def prefetch(self, pod: Obj) -> bool:
        """Ask for the Secrets ``pod`` names that are not known or are stale; True if one
        changed (the pod's volumes are then set up again)."""
        namespace = pod["metadata"].get("namespace") or "default"
        changed = False
        now = trio.current_time()
        for kind, name in sorted(pod_references(pod)):
            if kind != "secrets":
                continue
            key = (namespace, name)
            held = self._cache.get(key)
            if held is not None and now - held[1] < self.ttl_s:
                continue
            obj = await self._fetch(namespace, name)
            if held is None or _version(held[0]) != _version(obj):
                changed = True
            self._cache[key] = (obj, now)
        return changed

    def forget(self, keep: set[tuple[str, str]]) -> None:
        """Drop what no pod here names any more."""
        for key in set(self._cache) - keep:
            del self._cache[key]

    async def _fetch(self, namespace: str, name: str) -> Obj | None:
        if self._client is None or self._context is not self.verify():
            # The node's TLS as it is now (renewed certificates, a rotated CA).
            self._context = self.verify()
            self._client = httpx.AsyncClient(verify=self._context, timeout=10.0)
        url = f"{self.server()}/api/v1/namespaces/{namespace}/secrets/{name}"
        try:
            resp = await self._client.get(url)
        except httpx.HTTPError as exc:
            log.warning("secret %s/%s: %s: %s", namespace, name, url, exc)
            return self.get(namespace, name)  # keep what we had
        if resp.status_code == 200:
            return resp.json()
        if resp.status_code not in (404, 403):
            log.warning("secret %s/%s: HTTP %d from %s", namespace, name, resp.status_code, url)
            return self.get(namespace, name)
        return None


def _version(obj: Obj | None) -> str | None:
    return obj["metadata"].get("resourceVersion") if obj else None
