"""Push to and pull from a real registry (Debian's docker-registry) on loopback.

scripts/test installs docker-registry; the module starts its own on a free
loopback port with its own storage and stops it after.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "images"))

from build import build  # noqa: E402
from waiting import needs_root  # noqa: E402

from runtime.images import ImageError, ImageStore  # noqa: E402
from runtime.registry import RegistryClient, parse_reference  # noqa: E402

REGISTRY = shutil.which("docker-registry") or ""
pytestmark = [
    needs_root("unpacking layers with whiteouts"),
    pytest.mark.skipif(not REGISTRY, reason="Debian's docker-registry is not installed "
                       "(scripts/test installs it)"),
]


def run_registry(work: Path, auth: str = ""):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (work / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work}/data\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}")
    proc = subprocess.Popen([REGISTRY, "serve", str(work / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "registry did not start"
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    yield from run_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory):
    """A registry that wants Basic auth (htpasswd with a bcrypt hash)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    work = tmp_path_factory.mktemp("private")
    (work / "htpasswd").write_text(
        "puller:" + crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH)) + "\n")
    yield from run_registry(work, f"auth:\n  htpasswd:\n    realm: test\n"
                                  f"    path: {work}/htpasswd\n")


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):
    """busybox and kubia built from busybox-static, pushed to the registry."""
    layouts = build(str(tmp_path_factory.mktemp("layouts")))
    src = ImageStore(str(tmp_path_factory.mktemp("src")))
    client = RegistryClient(src)
    for ref, path in layouts.items():
        image = src.import_oci_layout(path)[0]
        trio.run(client.push, image, f"{registry}/{ref}")
    return src


def test_parse_reference_like_docker():
    r = parse_reference("busybox")
    assert (r.registry, r.name, r.tag) == ("registry-1.docker.io", "library/busybox", "latest")
    r = parse_reference("localhost:5000/team/app:v2")
    assert (r.registry, r.name, r.tag) == ("localhost:5000", "team/app", "v2")
    r = parse_reference("ghcr.io/a/b@sha256:" + "0" * 64)
    assert r.digest and r.ref == r.digest
    with pytest.raises(ImageError):
        parse_reference("UPPER/case")


def test_pull_verifies_and_unpacks_what_was_pushed(registry, pushed, tmp_path):
    dst = ImageStore(str(tmp_path / "dst"))
    seen: dict[str, int] = {}
    image = trio.run(RegistryClient(dst).pull, f"{registry}/kubia:latest",
                     lambda d, done, total: seen.__setitem__(d, done))
    original = pushed.get("kubia:latest")
    assert image.layers == original.layers and image.cmd == original.cmd
    assert all(os.path.isdir(dst.layer_dir(d)) for d in image.layers)
    assert len(seen) == 3 and all(v > 0 for v in seen.values())  # config + 2 layers
    assert not any(Path(dst.root, "blobs", "partial").iterdir())


def test_an_interrupted_download_resumes_with_a_range_request(registry, pushed, tmp_path):
    dst = ImageStore(str(tmp_path / "dst"))
    original = pushed.get("busybox:latest")
    manifest = pushed.read_json_blob(original.digest)
    layer = manifest["layers"][0]["digest"]
    data = pushed.read_blob(layer)
    partial = Path(dst.root, "blobs", "partial")
    partial.mkdir(parents=True)
    (partial / layer[7:]).write_bytes(data[: len(data) // 2])  # as if cut off half-way
    image = trio.run(RegistryClient(dst).pull, f"{registry}/busybox:latest")
    assert image.layers == original.layers
    assert dst.read_blob(layer) == data
    assert not (partial / layer[7:]).exists()


def test_a_corrupt_partial_download_is_refused_not_stored(registry, pushed, tmp_path):
    dst = ImageStore(str(tmp_path / "dst"))
    manifest = pushed.read_json_blob(pushed.get("busybox:latest").digest)
    layer = manifest["layers"][0]["digest"]
    partial = Path(dst.root, "blobs", "partial")
    partial.mkdir(parents=True)
    (partial / layer[7:]).write_bytes(b"garbage" * 100)
    with pytest.raises(ImageError) as info:
        trio.run(RegistryClient(dst).pull, f"{registry}/busybox:latest")
    assert "digest mismatch" in str(info.value)
    assert not dst.has_blob(layer)
    image = trio.run(RegistryClient(dst).pull, f"{registry}/busybox:latest")  # a retry works
    assert image.layers


def test_a_whole_partial_left_by_a_cancelled_pull_is_verified_not_asked_for_again(
        registry, pushed, tmp_path):
    """A pull cancelled between a blob's download and its commit leaves the whole blob as
    a partial; the next pull must not ask the registry for bytes past its end."""
    dst = ImageStore(str(tmp_path / "dst"))
    manifest = pushed.read_json_blob(pushed.get("busybox:latest").digest)
    config = manifest["config"]["digest"]
    partial = Path(dst.root, "blobs", "partial")
    partial.mkdir(parents=True)
    (partial / config[7:]).write_bytes(pushed.read_blob(config))
    image = trio.run(RegistryClient(dst).pull, f"{registry}/busybox:latest")
    assert image.layers and dst.has_blob(config) and not list(partial.iterdir())


def test_pull_errors_name_the_reference(registry, tmp_path):
    dst = ImageStore(str(tmp_path / "dst"))
    with pytest.raises(ImageError) as info:
        trio.run(RegistryClient(dst).pull, f"{registry}/nothing:here")
    assert info.value.reason == "ErrImagePull" and "nothing:here" in str(info.value)
    with pytest.raises(ImageError) as info:
        trio.run(RegistryClient(dst).pull, "127.0.0.1:9/busybox")
    assert info.value.reason == "ErrImagePull" and "ConnectError" in str(info.value)


def test_basic_auth_registry_needs_the_right_credentials(private_registry, pushed, tmp_path):
    image = pushed.get("busybox:latest")
    with pytest.raises(ImageError) as info:
        trio.run(RegistryClient(pushed).push, image, f"{private_registry}/busybox:latest")
    assert "unauthorized" in str(info.value)
    good = {private_registry: ("puller", "s3cret")}
    trio.run(RegistryClient(pushed, credentials=good).push, image,
             f"{private_registry}/busybox:latest")
    dst = ImageStore(str(tmp_path / "dst"))
    with pytest.raises(ImageError) as info:
        trio.run(RegistryClient(dst, credentials={private_registry: ("puller", "wrong")}).pull,
                 f"{private_registry}/busybox:latest")
    assert info.value.reason == "ErrImagePull" and "credentials refused" in str(info.value)
    pulled = trio.run(RegistryClient(dst, credentials=good).pull,
                      f"{private_registry}/busybox:latest")
    assert pulled.layers == image.layers


def test_bearer_token_flow(registry, pushed, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = subprocess.Popen([sys.executable, str(ROOT / "tests/fixtures/token_proxy.py"),
                              str(port), registry, "puller:s3cret"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        front = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"http://{front}/v2/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        dst = ImageStore(str(tmp_path / "dst"))
        with pytest.raises(ImageError) as info:
            trio.run(RegistryClient(dst).pull, f"{front}/kubia:latest")  # no credentials
        assert "unauthorized" in str(info.value)
        image = trio.run(RegistryClient(dst, credentials={front: ("puller", "s3cret")}).pull,
                         f"{front}/kubia:latest")
        assert image.layers == pushed.get("kubia:latest").layers
    finally:
        proxy.terminate()
        proxy.wait(10)
