"""A registry is trusted with nothing but what its digests prove: a hostile one (served
here on loopback) cannot make the puller read an unbounded manifest or blob, follow it to
another host, or hand credentials to a realm over plain HTTP."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import trio
from hostile_registry import Hostile, serve_hostile

from runtime.images import ImageError, ImageStore
from runtime.registry import MAX_MANIFEST_BYTES, RegistryClient

CONFIG = b'{"rootfs": {"type": "layers", "diff_ids": []}}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()


def manifest(size: int = len(CONFIG)) -> bytes:
    return json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": CONFIG_DIGEST, "size": size}, "layers": []}).encode()


@pytest.fixture
async def hostile(nursery: trio.Nursery) -> tuple[Hostile, str]:
    return await serve_hostile(nursery)


async def pull(store: ImageStore, ref: str, **kw: Any) -> Any:
    return await RegistryClient(store, **kw).pull(ref)


async def test_a_manifest_over_the_cap_is_not_read(hostile, tmp_path) -> None:
    app, host = hostile
    app.routes["/v2/x/manifests/latest"] = (200, {}, b" " * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ImageError, match="over"):
        await pull(ImageStore(str(tmp_path)), f"{host}/x:latest")


async def test_a_blob_longer_than_its_descriptor_is_cut(hostile, tmp_path) -> None:
    app, host = hostile
    app.routes["/v2/x/manifests/latest"] = (200, {}, manifest(size=len(CONFIG)))
    app.routes[f"/v2/x/blobs/{CONFIG_DIGEST}"] = (200, {}, CONFIG + b" " * 100_000)
    with pytest.raises(ImageError, match="longer than its"):
        await pull(ImageStore(str(tmp_path)), f"{host}/x:latest")


async def test_redirects_go_only_to_allowed_hosts(hostile, tmp_path) -> None:
    app, host = hostile
    port = host.rsplit(":", 1)[1]
    app.routes["/v2/x/manifests/latest"] = (
        307, {"location": f"http://127.0.0.2:{port}/v2/x/manifests/latest"}, b"")
    with pytest.raises(ImageError, match="not an allowed host"):
        await pull(ImageStore(str(tmp_path)), f"{host}/x:latest")
    assert all(seen_host == host for seen_host, _, _ in app.seen)


async def test_credentials_never_go_to_a_plain_http_realm(hostile, tmp_path) -> None:
    app, host = hostile
    app.routes["/v2/x/manifests/latest"] = (
        401, {"www-authenticate": 'Bearer realm="http://token.example.invalid/t",service="s"'}, b"")
    with pytest.raises(ImageError, match="not HTTPS"):
        await pull(ImageStore(str(tmp_path)), f"{host}/x:latest",
                   credentials={host: ("user", "secret")})
    assert [auth for _, _, auth in app.seen] == [None]
