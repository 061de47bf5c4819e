"""The image store: OCI layout and docker-archive import, layers with whiteouts, overlay
rootfs, digest checks, hostile layers, GC; and the kubia image answering over HTTP.

Needs root (whiteouts are device nodes and trusted.* xattrs; overlay mounts).
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "images"))

from build import build, layer_tar, write_layout  # noqa: E402
from waiting import needs_root  # noqa: E402

from runtime.images import ImageError, ImageStore  # noqa: E402
from runtime.launch import spawn_exec, start, wait  # noqa: E402
from runtime.spec import ContainerSpec  # noqa: E402

pytestmark = needs_root("whiteouts and overlay mounts")


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build(str(tmp_path_factory.mktemp("images")))


@pytest.fixture
def store(tmp_path: Path):
    s = ImageStore(str(tmp_path / "store"))
    yield s
    for cid in os.listdir(tmp_path / "store" / "containers"):
        s.remove_rootfs(cid)


def run_in(store: ImageStore, cid: str, image, *args: str, **kw) -> tuple[int, bytes]:
    root = store.mount_rootfs(cid, image)
    spec = ContainerSpec(rootfs=root, args=args or tuple(image.cmd), env=tuple(image.env), **kw)
    r, w = os.pipe()
    started = start(spec, stdio=(0, w, w))
    os.close(w)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    return wait(started), out


def test_kubia_image_answers_with_its_hostname(store, layouts):
    store.import_oci_layout(layouts["kubia:latest"])
    image = store.get("kubia")
    assert image.cmd[0] == "httpd" and len(image.layers) == 2
    root = store.mount_rootfs("k1", image)
    spec = ContainerSpec(rootfs=root, args=tuple(image.cmd), env=tuple(image.env),
                         hostname="kubia-7d9f")
    started = start(spec)
    try:
        for _ in range(50):
            r, w = os.pipe()
            e = spawn_exec(started.pid, spec, ("wget", "-qO-", "http://127.0.0.1:8080/"),
                           stdio=(0, w, w))
            os.close(w)
            code, out = wait(e), os.read(r, 4096)
            os.close(r)
            if code == 0:
                break
            time.sleep(0.05)
        assert out == b"You've hit kubia-7d9f\n"
    finally:
        os.kill(started.pid, 9)
        wait(started)


def test_containers_share_layers_but_not_writes(store, layouts):
    store.import_oci_layout(layouts["busybox:latest"])
    image = store.get("busybox:latest")
    code, _ = run_in(store, "a", image, "sh", "-c", "echo mine > /root/file")
    assert code == 0
    code, out = run_in(store, "b", image, "sh", "-c", "cat /root/file 2>&1; echo rc=$?")
    assert b"rc=1" in out  # b does not see a's write
    layer = store.layer_dir(image.layers[0])
    assert not os.path.exists(os.path.join(layer, "root", "file"))


def test_whiteouts_hide_files_and_opaque_dirs(store, tmp_path, layouts):
    base_layout = layouts["busybox:latest"]
    with open(os.path.join(base_layout, "index.json")) as f:
        index = json.load(f)
    manifest = json.loads(Path(base_layout, "blobs/sha256",
                               index["manifests"][0]["digest"][7:]).read_text())
    base_gz = Path(base_layout, "blobs/sha256", manifest["layers"][0]["digest"][7:]).read_bytes()
    import gzip
    base_tar = gzip.decompress(base_gz)
    add = layer_tar({"data": (0o755, None, None), "data/keep": (0o644, b"1", None),
                     "data/drop": (0o644, b"2", None), "cache": (0o755, None, None),
                     "cache/old": (0o644, b"3", None)})
    remove = layer_tar({"data": (0o755, None, None), "data/.wh.drop": (0o644, b"", None),
                        "cache": (0o755, None, None), "cache/.wh..wh..opq": (0o644, b"", None),
                        "cache/new": (0o644, b"4", None)})
    out = str(tmp_path / "layered")
    write_layout(out, "layered:1", [base_tar, add, remove],
                 {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]}})
    store.import_oci_layout(out)
    code, listing = run_in(store, "w", store.get("layered:1"), "sh", "-c",
                           "ls /data /cache | tr '\\n' ' '")
    assert code == 0
    assert listing.split() == [b"/cache:", b"new", b"/data:", b"keep"]


def test_oci_layout_tar_and_docker_archive(store, tmp_path, layouts):
    tar_path = tmp_path / "busybox-oci.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(layouts["busybox:latest"], arcname=".")
    images = store.import_oci_layout(str(tar_path), name="mybox:v1")
    assert [i.name for i in images] == ["mybox:v1"]
    # The same image as `docker save` would write it.
    layout = Path(layouts["busybox:latest"])
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:])
                          .read_text())
    import gzip
    config = (layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_bytes()
    layer = gzip.decompress((layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:])
                            .read_bytes())
    archive = tmp_path / "docker.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("config.json", config), ("layer.tar", layer), ("manifest.json", json.dumps(
                [{"Config": "config.json", "RepoTags": ["saved:2"], "Layers": ["layer.tar"]}])
                .encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            import io
            tar.addfile(info, io.BytesIO(data))
    images = store.import_docker_archive(str(archive))
    assert images[0].name == "saved:2" and images[0].layers == store.get("mybox:v1").layers
    assert {i.name for i in store.list()} == {"mybox:v1", "saved:2"}


def test_corrupt_blobs_and_missing_images_are_clear_errors(store, tmp_path, layouts):
    bad = tmp_path / "bad"
    import shutil
    shutil.copytree(layouts["busybox:latest"], bad)
    blob = next(p for p in (bad / "blobs/sha256").iterdir() if p.stat().st_size > 100_000)
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ImageError) as info:
        store.import_oci_layout(str(bad))
    assert "digest mismatch" in str(info.value)
    with pytest.raises(ImageError) as info:
        store.get("never-pulled")
    assert info.value.reason == "ErrImageNeverPull"


@pytest.mark.parametrize("hostile", [
    {"../escape": (0o644, b"x", None)},
    {"link": (0o777, None, "/tmp"), "link/escape": (0o644, b"x", None)},
])
def test_layers_cannot_write_outside_themselves(store, tmp_path, hostile):
    out = str(tmp_path / "hostile")
    write_layout(out, "hostile:1", [layer_tar(hostile)], {"os": "linux", "config": {}})
    with pytest.raises(ImageError) as info:
        store.import_oci_layout(out)
    assert "'..'" in str(info.value) or "not a directory of the layer" in str(info.value)
    assert not Path("/tmp/escape").exists()


def test_gc_keeps_what_images_use(store, layouts):
    store.import_oci_layout(layouts["kubia:latest"])
    store.import_oci_layout(layouts["busybox:latest"])
    assert store.gc() == (0, 0)
    store.remove("kubia:latest")
    layers, blobs = store.gc()
    assert (layers, blobs) == (1, 3)  # kubia's own layer; its manifest, config, layer blob
    assert store.get("busybox").layers  # the shared base layer stays
