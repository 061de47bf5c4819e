"""Sealing a Secret's stored bytes (api/encryption.py): what is sealed opens with any key
of the configuration and only at the key it was stored at; a wrong key, changed bytes or
an unknown key name do not open; a configuration that is not one is refused by what is
wrong in it; rotation adds a primary and keeps the rest."""

from __future__ import annotations

import pytest

from nodeagent.api import encryption
from nodeagent.api.encryption import EncryptionError, Keys, Transformer

KEY = "/registry/secrets/default/db"


def test_sealed_bytes_open_only_where_and_with_what_they_were_sealed() -> None:
    keys = Keys.new()
    t = Transformer(keys)
    sealed = t.seal(KEY, b'{"metadata":{}}')
    assert sealed.startswith(b"k8s:enc:aesgcm:v1:key1:") and b"metadata" not in sealed
    assert t.open(KEY, sealed) == b'{"metadata":{}}'
    assert t.open("/registry/secrets/default/other", sealed) is None  # bound to its key
    assert Transformer(Keys.new()).open(KEY, sealed) is None  # another key of the same name
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert t.open(KEY, flipped) is None
    assert t.open(KEY, b"k8s:enc:aesgcm:v1:nope:" + sealed[-40:]) is None
    assert t.open(KEY, b"k8s:enc:aesgcm:v1:key1") is None
    rotated = keys.rotated()
    assert [n for n, _ in rotated.keys] == ["key2", "key1"]
    t2 = Transformer(rotated)
    assert t2.open(KEY, sealed) == b'{"metadata":{}}'  # the old key still reads
    assert t2.sealed_with(t2.seal(KEY, b"{}")) == "key2"


def test_only_secrets_are_sealed_and_only_with_keys_installed() -> None:
    try:
        encryption.install(None)
        assert encryption.seal(KEY, b"{}") == b"{}"
        encryption.install(Keys.new())
        assert encryption.seal("/registry/configmaps/default/x", b"{}") == b"{}"
        sealed = encryption.seal(KEY, b"{}")
        assert sealed != b"{}" and encryption.unseal(KEY, sealed) == b"{}"
        encryption.install(None)
        assert encryption.unseal(KEY, sealed) is None  # sealed, and no key: not readable
    finally:
        encryption.install(None)


def test_a_configuration_round_trips_and_bad_ones_say_why() -> None:
    keys = Keys.new().rotated()
    assert Keys.from_yaml(keys.to_yaml()) == keys
    for text, why in ((b"[]", "not an EncryptionConfiguration"),
                      (b"resources: [{resources: [secrets], providers: [{identity: {}}]}]",
                       "aesgcm"),
                      (b"resources: [{resources: [secrets], providers: [{aesgcm: {keys: [{name:"
                       b" k, secret: c2hvcnQ=}]}}]}]", "bytes"),
                      (b"resources: [{resources: [secrets], providers: [{aesgcm: {keys: []}}]}]",
                       "at least one key")):
        with pytest.raises(EncryptionError, match=why):
            Keys.from_yaml(text)
