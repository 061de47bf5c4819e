"""A small synchronous client for the API, used by nodectl (and by tests).

Errors come back as :class:`ClientError` carrying the server's Status, so
callers print them the way kubectl does:
``Error from server (NotFound): pods "x" not found``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from nodeagent.api.kubeconfig import DEFAULT_SERVER, Credentials
from nodeagent.objects.kinds import Resource

__all__ = ["DEFAULT_SERVER", "Client", "ClientError", "ConnectionFailed"]


# kubectl get's Accept: the server's Table, else a plain list.
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


class ClientError(Exception):
    """The server answered with a failure Status."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        self.code = int(status.get("code") or 0)
        self.reason = status.get("reason") or "Unknown"
        self.message = status.get("message") or ""
        super().__init__(self.message)


class ConnectionFailed(Exception):
    """The server could not be reached at all."""


class Client:
    def __init__(self, server: str | Credentials = DEFAULT_SERVER,
                 timeout_s: float = 30.0) -> None:
        """``server``: the credentials of a kubeconfig (api/kubeconfig.py), or only a
        server URL (no client credentials; the system's CAs)."""
        creds = server if isinstance(server, Credentials) else Credentials(server=server)
        self.credentials = creds
        self.server = creds.server.rstrip("/")
        if "://" not in self.server:
            self.server = "https://" + self.server
        verify = creds.ssl_context() if self.server.startswith("https://") else True
        self._http = httpx.Client(base_url=self.server, timeout=timeout_s, verify=verify,
                                  headers=creds.headers())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- paths ----------------------------------------------------------------------------

    @staticmethod
    def path(res: Resource, namespace: str | None, name: str | None = None,
             subresource: str | None = None) -> str:
        p = res.group_path
        if res.namespaced and namespace is not None:
            p += f"/namespaces/{namespace}"
        p += f"/{res.plural}"
        if name is not None:
            p += f"/{name}"
        if subresource:
            p += f"/{subresource}"
        return p

    # --- requests -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, content_type: str = "application/json",
                accept: str = "application/json") -> Any:
        headers = {"Accept": accept}
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = content_type
            # as kubectl's --validate=strict: a misspelt field is an error, not a warning
            params = {"fieldValidation": "Strict", **(params or {})}
        try:
            resp = self._http.request(method, path, params=_clean(params), content=content,
                                      headers=headers)
        except httpx.ConnectError as exc:
            raise self._connect_failed(exc) from None
        except httpx.TimeoutException:
            raise ConnectionFailed(f"Unable to connect to the server {self.server}: "
                                   "timeout") from None
        except httpx.HTTPError as exc:
            raise ConnectionFailed(f"Unable to connect to the server {self.server}: "
                                   f"{exc}") from None
        return self._decode(resp)

    def _connect_failed(self, exc: httpx.ConnectError) -> ConnectionFailed:
        """kubectl's words: a refused connection, or TLS that failed (wrong CA, a name
        the certificate does not have, a plain-HTTP server)."""
        host = urlsplit(self.server).netloc
        text = str(exc)
        if "SSL" in text or "CERTIFICATE" in text or "certificate" in text:
            return ConnectionFailed(f"Unable to connect to the server {host}: tls: {text}")
        return ConnectionFailed(f"The connection to the server {host} was refused - did you "
                                "specify the right host or port?")

    @staticmethod
    def _decode(resp: httpx.Response) -> Any:
        try:
            data = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            data = None
        if resp.status_code >= 400:
            if isinstance(data, dict) and data.get("kind") == "Status":
                raise ClientError(data)
            raise ClientError({"code": resp.status_code, "reason": resp.reason_phrase,
                               "message": resp.text[:500] or resp.reason_phrase})
        return data

    def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return self.request("GET", self.path(res, namespace, name))

    def list(self, res: Resource, namespace: str | None, **params: Any) -> dict[str, Any]:
        return self.request("GET", self.path(res, namespace), params=params)

    def table(self, res: Resource, namespace: str | None, name: str | None = None,
              **params: Any) -> dict[str, Any]:
        """The server's Table of one object or a list, as kubectl get asks for it."""
        return self.request("GET", self.path(res, namespace, name), params=params,
                            accept=TABLE_ACCEPT)

    def create(self, res: Resource, namespace: str | None, obj: dict[str, Any],
               **params: Any) -> dict[str, Any]:
        return self.request("POST", self.path(res, namespace), body=obj, params=params)

    def replace(self, res: Resource, namespace: str | None, name: str, obj: dict[str, Any],
                subresource: str | None = None) -> dict[str, Any]:
        return self.request("PUT", self.path(res, namespace, name, subresource), body=obj)

    def patch(self, res: Resource, namespace: str | None, name: str, patch: Any,
              kind: str = "merge", subresource: str | None = None) -> dict[str, Any]:
        ctype = {"merge": "application/merge-patch+json",
                 "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[kind]
        return self.request("PATCH", self.path(res, namespace, name, subresource), body=patch,
                            content_type=ctype)

    def delete(self, res: Resource, namespace: str | None, name: str,
               grace_period_s: int | None = None, propagation: str | None = None
               ) -> dict[str, Any]:
        params = _clean({"gracePeriodSeconds": grace_period_s, "propagationPolicy": propagation})
        return self.request("DELETE", self.path(res, namespace, name), params=params or None)

    def watch(self, res: Resource, namespace: str | None, *, tables: bool = False,
              **params: Any) -> Iterator[dict[str, Any]]:
        """Yield watch events until the server ends the stream; ``tables``: each event's
        object a Table of one row (the first with its columns), as kubectl get -w asks."""
        params = {**params, "watch": "true"}
        accept = TABLE_ACCEPT if tables else "application/json"
        try:
            with self._http.stream("GET", self.path(res, namespace), params=_clean(params),
                                   headers={"Accept": accept},
                                   timeout=httpx.Timeout(30.0, read=None)) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._decode(resp)
                for line in resp.iter_lines():
                    if line.strip():
                        yield orjson.loads(line)
        except httpx.ConnectError as exc:
            raise self._connect_failed(exc) from None

    def logs(self, namespace: str, pod: str, **params: Any) -> Iterator[bytes]:
        """A pod's log, as it arrives (follow keeps it open)."""
        pods = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        try:
            with self._http.stream("GET", pods, params=_clean(params),
                                   timeout=httpx.Timeout(30.0, read=None)) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._decode(resp)
                yield from resp.iter_bytes()
        except httpx.ConnectError as exc:
            raise self._connect_failed(exc) from None

    def version(self) -> dict[str, Any]:
        return self.request("GET", "/version")


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {k: v for k, v in params.items() if v is not None and v != ""}
