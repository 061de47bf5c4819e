"""Gossip encryption: AES-GCM with a keyring, as serf's and memberlist's.

A packet is sealed with the *primary* key and opened with any installed key, so
keys rotate without a restart and without losing members (serf's keys command):

    1. install the new key on every member (all can now read it);
    2. use it (make it primary) on every member (all now send with it);
    3. remove the old key everywhere.

Sealed packet: ``ENCRYPTED_VERSION (1 byte) | nonce (12) | ciphertext | tag (16)``,
the version byte bound as associated data.  A member with a keyring refuses
plaintext (and a member without one refuses sealed packets): both count as bad
packets, never an exception out of the receive loop.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_SIZES", "Keyring", "KeyringError", "decode_key"]

ENCRYPTED_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_SIZES = (16, 24, 32)  # AES-128, -192, -256
OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES
KEYRING_FILE = "gossip-keyring.json"  # in an agent's data dir: the keyring as rotated


class KeyringError(ValueError):
    """A key that is not one, a key operation that would leave no way to talk, or a
    packet that does not open."""


def decode_key(text: str) -> bytes:
    """A key as serf prints it (base64 of 16, 24 or 32 bytes).  Raises KeyringError."""
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise KeyringError(f"key {text[:6]}...: not base64") from exc
    if len(key) not in KEY_SIZES:
        raise KeyringError(f"key {text[:6]}...: {len(key)} bytes; AES keys have 16, 24 or 32")
    return key


def read_key_file(path: str) -> str:
    """The key text in a file (keys travel in files, never on a command line, where /proc
    shows them to everyone).  Raises KeyringError naming the file."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        raise KeyringError(f"{path}: {exc.strerror or exc}") from exc


def fingerprint(key: bytes) -> str:
    """How a key is named where it must not be shown: the start of its SHA-256."""
    return "sha256:" + hashlib.sha256(key).hexdigest()[:16]


class Keyring:
    def __init__(self, keys: list[bytes]) -> None:
        """``keys[0]`` is the primary.  Raises KeyringError for a bad or missing key."""
        if not keys:
            raise KeyringError("a keyring needs at least one key")
        for key in keys:
            if len(key) not in KEY_SIZES:
                raise KeyringError(f"a key of {len(key)} bytes; AES keys have 16, 24 or 32")
        self._keys = [AESGCM(k) for k in keys]
        self._raw = list(keys)

    @property
    def keys(self) -> list[bytes]:
        return list(self._raw)

    @property
    def primary(self) -> bytes:
        return self._raw[0]

    def install(self, key: bytes) -> None:
        if len(key) not in KEY_SIZES:
            raise KeyringError(f"a key of {len(key)} bytes; AES keys have 16, 24 or 32")
        if key not in self._raw:
            self._raw.append(key)
            self._keys.append(AESGCM(key))

    def use(self, key: bytes) -> None:
        """Make an installed key the primary (the one packets are sealed with)."""
        if key not in self._raw:
            raise KeyringError("that key is not installed; install it first")
        i = self._raw.index(key)
        self._raw.insert(0, self._raw.pop(i))
        self._keys.insert(0, self._keys.pop(i))

    def remove(self, key: bytes) -> None:
        if key not in self._raw:
            raise KeyringError("that key is not installed")
        if key == self._raw[0]:
            raise KeyringError("the primary key cannot be removed; use another first")
        i = self._raw.index(key)
        del self._raw[i], self._keys[i]

    def seal(self, packet: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        header = bytes([ENCRYPTED_VERSION])
        return header + nonce + self._keys[0].encrypt(nonce, packet, header)

    def open(self, data: bytes) -> bytes:
        """The plaintext of a sealed packet.  Raises KeyringError (not sealed, or by no
        installed key)."""
        if len(data) < OVERHEAD or data[0] != ENCRYPTED_VERSION:
            raise KeyringError("not an encrypted packet (plaintext refused)")
        nonce, body = data[1:1 + NONCE_BYTES], data[1 + NONCE_BYTES:]
        for aead in self._keys:
            try:
                return aead.decrypt(nonce, body, data[:1])
            except InvalidTag:
                continue
        raise KeyringError("no installed key opens this packet")
