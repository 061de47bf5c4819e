"""Secrets at rest: encrypted in the store, and so in the WAL, the Raft log, snapshots and
backups, as kube-apiserver's ``aesgcm`` EncryptionConfiguration provider does.

A Secret's stored bytes become ``k8s:enc:aesgcm:v1:<key name>:<nonce><ciphertext+tag>``
(Kubernetes' own layout), sealed with AES-GCM under the primary key, the store key bound
as associated data (a sealed value moved to another key does not open).  Any key of the
configuration opens a value, so the keys rotate without a stop: a new primary, every
Secret rewritten under it (``rotate``), the old key kept to read older backups.

The keys live outside the store, in ``<data_dir>/pki/encryption-config.yaml`` (0600), an
EncryptionConfiguration as kube-apiserver reads one.  The first server makes it; a server
that joins receives it; nodes never hold one (they are sent no Secret).

The transformer is process-wide (``install``), set by the agent at start: the codec
functions that read and write stored objects (api/objects.py) call ``seal`` and
``unseal``.  A value that does not open (no key, a wrong key, bytes changed) is skipped
and reported like any object that does not decode, never a crash.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nodeagent.fsutil import write_atomic
from nodeagent.store.base import SEALED_KEYS, SEALED_PREFIX

__all__ = ["CONFIG_FILE", "EncryptionError", "Keys", "active", "install", "seal", "unseal"]

CONFIG_FILE = "encryption-config.yaml"  # in <data_dir>/pki
NONCE_BYTES = 12
_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")


class EncryptionError(Exception):
    """An encryption configuration that cannot be used: the message names what."""


@dataclass(frozen=True)
class Keys:
    """The aesgcm keys, the primary first."""
    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise EncryptionError("an aesgcm provider needs at least one key")
        names = [n for n, _ in self.keys]
        if len(set(names)) != len(names):
            raise EncryptionError(f"key names repeat: {names}")
        for name, secret in self.keys:
            if not _NAME.match(name):
                raise EncryptionError(f"key name {name!r}: letters, digits, '-', '_', '.'")
            if len(secret) not in (16, 24, 32):
                raise EncryptionError(f"key {name!r}: {len(secret)} bytes; AES keys have 16, "
                                      "24 or 32")

    @property
    def primary(self) -> str:
        return self.keys[0][0]

    @classmethod
    def new(cls) -> Keys:
        return cls(((_name_for(1), os.urandom(32)),))

    def rotated(self) -> Keys:
        """A new primary key; the others kept, to read what they sealed."""
        n = 1 + max((int(m.group(1)) for name, _ in self.keys
                     if (m := re.fullmatch(r"key(\d+)", name))), default=0)
        return Keys(((_name_for(n), os.urandom(32)), *self.keys))

    # --- the file ---------------------------------------------------------------------

    def to_yaml(self) -> bytes:
        doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
               "resources": [{"resources": ["secrets"], "providers": [
                   {"aesgcm": {"keys": [{"name": n, "secret": base64.b64encode(k).decode()}
                                        for n, k in self.keys]}},
                   {"identity": {}}]}]}
        return yaml.safe_dump(doc, sort_keys=False).encode()

    @classmethod
    def from_yaml(cls, text: bytes, where: str = "the encryption configuration") -> Keys:
        try:
            doc: Any = yaml.safe_load(text)
            resources = doc["resources"]
            providers = next(r["providers"] for r in resources if "secrets" in r["resources"])
            aesgcm = next(p["aesgcm"] for p in providers if "aesgcm" in p)
            keys = tuple((str(k["name"]), base64.b64decode(str(k["secret"]), validate=True))
                         for k in aesgcm["keys"])
        except (yaml.YAMLError, KeyError, TypeError, StopIteration, ValueError) as exc:
            raise EncryptionError(f"{where}: not an EncryptionConfiguration with an aesgcm "
                                  f"provider for secrets ({type(exc).__name__}: {exc})") from exc
        return cls(keys)

    def save(self, path: Path) -> None:
        write_atomic(path, self.to_yaml())

    @classmethod
    def load(cls, path: Path) -> Keys:
        try:
            return cls.from_yaml(path.read_bytes(), str(path))
        except OSError as exc:
            raise EncryptionError(f"{path}: {exc.strerror}") from exc


def _name_for(n: int) -> str:
    return f"key{n}"


class Transformer:
    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self._aeads = {name: AESGCM(secret) for name, secret in keys.keys}

    def seal(self, key: str, data: bytes) -> bytes:
        name = self.keys.primary
        nonce = os.urandom(NONCE_BYTES)
        return (SEALED_PREFIX + name.encode() + b":" + nonce
                + self._aeads[name].encrypt(nonce, data, key.encode()))

    def open(self, key: str, value: bytes) -> bytes | None:
        rest = value[len(SEALED_PREFIX):]
        name, sep, sealed = rest.partition(b":")
        aead = self._aeads.get(name.decode(errors="replace")) if sep else None
        if aead is None or len(sealed) < NONCE_BYTES + 16:
            return None
        try:
            return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], key.encode())
        except InvalidTag:
            return None

    def sealed_with(self, value: bytes) -> str | None:
        """The name of the key ``value`` was sealed with (None: not sealed)."""
        if not value.startswith(SEALED_PREFIX):
            return None
        return value[len(SEALED_PREFIX):].partition(b":")[0].decode(errors="replace")


_active: Transformer | None = None


def install(keys: Keys | None) -> None:
    """Seal from now on with ``keys`` (None: write plaintext, open nothing sealed)."""
    global _active
    _active = Transformer(keys) if keys is not None else None


def active() -> Transformer | None:
    return _active


def seal(key: str, data: bytes) -> bytes:
    """The bytes to store for ``data`` at ``key``: sealed for a Secret when keys are set."""
    if _active is not None and key.startswith(SEALED_KEYS):
        return _active.seal(key, data)
    return data


def unseal(key: str, value: bytes) -> bytes | None:
    """The stored bytes opened (as they are when not sealed); None for a sealed value that
    no key opens."""
    if not value.startswith(SEALED_PREFIX):
        return value
    return _active.open(key, value) if _active is not None else None
