"""The ServiceAccount tokens of this node's pods, asked of a server with the node's own
credential (TokenRequest, bound to the pod), as kubelet's token manager asks.

A token is asked again once 80% of its life has passed or it is a day old, whichever
is first -- kubelet's rule -- and the pod's projected volume is written again with it
(the AtomicWriter switch: a reader sees the old token or the new, whole).  The
application rereads the file; the old token keeps working until it expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["PodTokens", "token_sources"]

log = logging.getLogger("nodeagent.podmanager")

Obj = dict[str, Any]
REFRESH_FRACTION = 0.8
MAX_AGE_S = 24 * 3600.0


@dataclass
class Held:
    token: str
    refresh_at: float  # time.monotonic()
    expires_at: float


def token_sources(pod: Obj) -> list[Obj]:
    """The serviceAccountToken sources of the pod's projected volumes."""
    return [src["serviceAccountToken"]
            for vol in (pod.get("spec") or {}).get("volumes") or [] if vol.get("projected")
            for src in vol["projected"].get("sources") or [] if src.get("serviceAccountToken")]


def _key(pod: Obj, source: Obj) -> tuple[str, str, int]:
    return (pod["metadata"]["uid"], source.get("audience") or "",
            int(source.get("expirationSeconds") or 3600))


class PodTokens:
    """``server()``: the API to ask; ``verify``: the node's client TLS (its certificate)."""

    def __init__(self, server: Callable[[], str], verify: Callable[[], ssl.SSLContext]) -> None:
        self.server, self.verify = server, verify
        self._context: ssl.SSLContext | None = None
        self._held: dict[tuple[str, str, int], Held] = {}
        self._errors: dict[str, str] = {}
        self._client: httpx.AsyncClient | None = None

    def get(self, pod: Obj, source: Obj) -> str | None:
        """The token for a source (None: none yet; ``error`` says why)."""
        held = self._held.get(_key(pod, source))
        return held.token if held is not None and held.expires_at > time.monotonic() \
            else None

    def error(self, pod: Obj) -> str:
        return self._errors.get(pod["metadata"]["uid"], "not requested yet")

    async def refresh(self, pod: Obj) -> bool:
        """Ask for every token of the pod that is missing or due; True if one changed (the
        volume is then written again)."""
        changed = False
        now = time.monotonic()
        for source in token_sources(pod):
            key = _key(pod, source)
            held = self._held.get(key)
            if held is not None and now < held.refresh_at:
                continue
            try:
                self._held[key] = await self._request(pod, source, key[2])
                self._errors.pop(key[0], None)
                changed = True
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                message = str(exc) or type(exc).__name__
                self._errors[key[0]] = message
                log.warning("pod %s/%s: token for service account %s: %s",
                            pod["metadata"].get("namespace"), pod["metadata"].get("name"),
                            (pod.get("spec") or {}).get("serviceAccountName"), message)
        return changed

    def next_refresh(self, pod: Obj) -> float | None:
        """Seconds until one of the pod's tokens is due (None: it has none)."""
        sources = token_sources(pod)
        if not sources:
            return None
        held = [self._held.get(_key(pod, source)) for source in sources]
        if any(h is None for h in held):
            return 1.0  # one not had yet: ask again soon
        return max(0.0, min(h.refresh_at for h in held if h) - time.monotonic())

    def forget(self, keep: set[str]) -> None:
        """Drop the tokens of pods (uids) no longer here."""
        for key in [k for k in self._held if k[0] not in keep]:
            del self._held[key]
        for uid in [u for u in self._errors if u not in keep]:
            del self._errors[uid]

    async def _request(self, pod: Obj, source: Obj, seconds: int) -> Held:
        if self._client is None or self._context is not self.verify():
            # The node's TLS as it is now (renewed certificates, a rotated CA).
            self._context = self.verify()
            self._client = httpx.AsyncClient(verify=self._context, timeout=10.0)
        meta = pod["metadata"]
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        spec: Obj = {"expirationSeconds": seconds,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                        "uid": meta["uid"]}}
        if source.get("audience"):
            spec["audiences"] = [source["audience"]]
        url = f"{self.server()}/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token"
        resp = await self._client.post(url, json={"apiVersion": "authentication.k8s.io/v1",
                                                  "kind": "TokenRequest", "spec": spec})
        if resp.status_code != 201:
            try:
                message = resp.json().get("message") or resp.text
            except ValueError:
                message = resp.text
            raise ValueError(f"HTTP {resp.status_code} from {url}: {message[:300]}")
        status = resp.json()["status"]
        expires = dt.datetime.fromisoformat(status["expirationTimestamp"].replace("Z", "+00:00"))
        ttl = max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds())
        now = time.monotonic()
        return Held(str(status["token"]), now + min(ttl * REFRESH_FRACTION, MAX_AGE_S), now + ttl)
