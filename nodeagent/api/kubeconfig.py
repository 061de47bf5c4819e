"""Where a client finds the server and its credentials: a kubeconfig, as kubectl reads one.

The file is ``--kubeconfig``, else the first of ``$KUBECONFIG`` (a colon-separated list,
merged the way kubectl merges: the first file to name a thing wins), else
``~/.kube/config``, else the admin kubeconfig of an agent on this machine
(``$NODEAGENT_DATA_DIR`` or /var/lib/nodeagent, ``admin.kubeconfig``: readable by root
only, as k3s's /etc/rancher/k3s/k3s.yaml).  ``--server`` replaces the server and keeps
the credentials, as kubectl's does.

What is read: the current context's cluster (``server``,
``certificate-authority[-data]``, ``insecure-skip-tls-verify``), user
(``client-certificate[-data]``, ``client-key[-data]``, ``token``, ``tokenFile``) and
namespace.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Credentials", "KubeconfigError", "load"]

DEFAULT_SERVER = "https://127.0.0.1:6443"
MAX_BYTES = 1024 * 1024


class KubeconfigError(Exception):
    """A kubeconfig that cannot be used: the message names the file and the field."""


@dataclass
class Credentials:
    server: str = DEFAULT_SERVER
    namespace: str | None = None
    token: str | None = None
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    insecure: bool = False
    source: str = ""

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx and websockets verify the server with, showing the client
        certificate if there is one."""
        if self.insecure:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_pem is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            try:
                ctx.load_verify_locations(cadata=self.ca_pem.decode())
            except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
                raise KubeconfigError(f"{self.source}: certificate-authority: {exc}") from None
        else:
            ctx = ssl.create_default_context()
        if self.cert_pem is not None and self.key_pem is not None:
            _load_chain(ctx, self.cert_pem, self.key_pem, self.source)
        return ctx

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _load_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes, source: str) -> None:
    """ssl loads a certificate and key only from files: a private temporary one each,
    removed at once (the official Python client does the same)."""
    with tempfile.TemporaryDirectory(prefix="nodectl-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise KubeconfigError(f"{source}: client-certificate / client-key: {exc}") from None


def _files(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    home = Path.home() / ".kube" / "config"
    if home.exists():
        return [home]
    data_dir = os.environ.get("NODEAGENT_DATA_DIR", "/var/lib/nodeagent")
    admin = Path(data_dir) / "admin.kubeconfig"
    with contextlib.suppress(OSError):
        if os.access(admin, os.R_OK):
            return [admin]
    return []


def _read(path: Path, explicit: bool) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        if explicit:
            raise KubeconfigError(f"{path}: no such file") from None
        return None
    except OSError as exc:
        raise KubeconfigError(f"{path}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise KubeconfigError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"{path}: not YAML: {exc}") from None
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{path}: not a kubeconfig (a mapping)")
    return doc


def _named(doc: dict[str, Any], section: str, name: str, source: Path) -> dict[str, Any] | None:
    items = doc.get(section) or []
    if not isinstance(items, list):
        raise KubeconfigError(f"{source}: {section}: expected a list")
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            key = section[:-1]  # clusters -> cluster
            value = item.get(key) or {}
            if not isinstance(value, dict):
                raise KubeconfigError(f"{source}: {section}[{name}].{key}: expected a mapping")
            return value
    return None


def _data(section: dict[str, Any], field: str, base: Path, source: str) -> bytes | None:
    """``field-data`` (base64) or ``field`` (a path, relative to the kubeconfig's
    directory)."""
    data = section.get(f"{field}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except ValueError:
            raise KubeconfigError(f"{source}: {field}-data: not base64") from None
    path = section.get(field)
    if path:
        full = base / str(path)
        try:
            return full.read_bytes()
        except OSError as exc:
            raise KubeconfigError(f"{source}: {field}: {full}: {exc.strerror}") from None
    return None


def load(kubeconfig: str | None = None, server: str | None = None,
         context: str | None = None) -> Credentials:
    """The credentials to call with.  Raises KubeconfigError naming the file and field."""
    docs = [(p, d) for p in _files(kubeconfig) if (d := _read(p, bool(kubeconfig))) is not None]
    creds = Credentials()
    if docs:
        current = context or next((d.get("current-context") for _, d in docs
                                   if d.get("current-context")), None)
        if not current:
            raise KubeconfigError(f"{docs[0][0]}: no current-context")
        found = [(p, c) for p, d in docs if (c := _named(d, "contexts", current, p)) is not None]
        if not found:
            raise KubeconfigError(f"{docs[0][0]}: context {current!r} is not defined")
        ctx_path, ctx = found[0]
        cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
        cluster = next((( p, c) for p, d in docs
                        if (c := _named(d, "clusters", str(cluster_name), p)) is not None), None)
        if cluster is None:
            raise KubeconfigError(f"{ctx_path}: cluster {cluster_name!r} is not defined")
        user = next(((p, u) for p, d in docs
                     if (u := _named(d, "users", str(user_name), p)) is not None), None)
        cpath, c = cluster
        source = str(cpath)
        creds.source = source
        creds.server = str(c.get("server") or DEFAULT_SERVER)
        creds.ca_pem = _data(c, "certificate-authority", cpath.parent, source)
        creds.insecure = bool(c.get("insecure-skip-tls-verify"))
        creds.namespace = ctx.get("namespace") or None
        if user is not None:
            upath, u = user
            creds.cert_pem = _data(u, "client-certificate", upath.parent, str(upath))
            creds.key_pem = _data(u, "client-key", upath.parent, str(upath))
            token = u.get("token")
            if not token and u.get("tokenFile"):
                try:
                    token = (upath.parent / str(u["tokenFile"])).read_text().strip()
                except OSError as exc:
                    raise KubeconfigError(f"{upath}: tokenFile: {exc.strerror}") from None
            creds.token = str(token) if token else None
    if server:
        creds.server = server if "://" in server else f"https://{server}"
    return creds
