"""The audit log: one JSON line per request -- who, from where, did what to which object,
and what the answer was -- as kube-apiserver writes audit.k8s.io/v1 Events at the
Metadata level (no bodies: a Secret's value never reaches it).

The file is ``<data_dir>/audit.log`` (0600), rotated at ``max_bytes`` with ``backups``
old files kept (kube-apiserver's --audit-log-maxsize and --audit-log-maxbackup).  Health
checks are not recorded (kube's default policies leave them out too); a watch is one line
when it starts.
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import os
import uuid
from typing import Any

import orjson

from nodeagent.api.authn import User
from nodeagent.api.authz import Attributes

__all__ = ["AuditLog"]

QUIET = frozenset({"/healthz", "/livez", "/readyz"})


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    def __init__(self, path: str, *, max_bytes: int = 100 * 1024 * 1024,
                 backups: int = 5) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def record(self, scope: dict[str, Any], user: User | None, code: int,
               attrs: Attributes | None, received: str) -> None:
        path = scope.get("path", "")
        if path.rstrip("/") in QUIET:
            return
        query = scope.get("query_string", b"").decode(errors="replace")
        headers = dict(scope.get("headers") or [])
        client = scope.get("client")
        event: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": str(uuid.uuid4()), "stage": "ResponseComplete",
            "requestURI": path + (f"?{query}" if query else ""),
            "verb": attrs.verb if attrs is not None else scope.get("method", "GET").lower(),
            "user": user.info() if user is not None else {"username": "system:anonymous"},
            "sourceIPs": [client[0]] if client else [],
            "userAgent": headers.get(b"user-agent", b"").decode(errors="replace")[:256],
            "responseStatus": {"code": code},
            "requestReceivedTimestamp": received, "stageTimestamp": _now(),
        }
        if attrs is not None and attrs.resource_request:
            ref = {"resource": attrs.resource, "namespace": attrs.namespace, "name": attrs.name,
                   "apiGroup": attrs.api_group, "apiVersion": attrs.api_version,
                   "subresource": attrs.subresource}
            event["objectRef"] = {k: v for k, v in ref.items() if v}
        record = logging.LogRecord("nodeagent.audit", logging.INFO, "", 0,
                                   orjson.dumps(event).decode(), None, None)
        self._handler.emit(record)

    def close(self) -> None:
        self._handler.close()


def received_at() -> str:
    return _now()
