"""Image layers and OCI manifests from anyone.  Layers: any mix of names (absolute,
with '..', long), types (files, directories, symlinks and hard links anywhere, devices,
fifos) and pax headers unpacks or fails with ImageError, and nothing outside the layer
is ever created, changed or linked.  Manifests: any JSON a registry serves for a
manifest or index fails with ImageError at worst."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
import trio
from hostile_registry import serve_hostile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import needs_root

from runtime.images import ImageError, ImageStore
from runtime.registry import RegistryClient

pytestmark = needs_root("layers keep owners and devices")

# A host directory no layer may touch (made and removed around this module's tests).
OUTSIDE = Path(tempfile.gettempdir()) / "nodeagent-fuzz-outside"


@pytest.fixture(scope="module", autouse=True)
def outside():
    import shutil
    OUTSIDE.mkdir(exist_ok=True)
    yield OUTSIDE
    shutil.rmtree(OUTSIDE, ignore_errors=True)
NAMES = st.one_of(
    st.sampled_from(["a", "a/b", "d", "d/x", "l", "l/x", "../up", "/abs", "./a", "a/../..",
                     "a//b", ".wh.a", "a/.wh..wh..opq", "x" * 300, str(OUTSIDE / "p")]),
    st.text(alphabet="ab/.", min_size=1, max_size=12))
TARGETS = st.one_of(NAMES, st.sampled_from([str(OUTSIDE), str(OUTSIDE / "secret"), "/",
                                            "/etc/passwd", "..", "../../"]))
KINDS = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
ENTRIES = st.lists(st.tuples(NAMES, KINDS, TARGETS, st.integers(0, 0o7777),
                             st.binary(max_size=30), st.booleans()), max_size=12)


def _tar(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, target, mode, data, pax in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = kind, mode, target
            info.uid = info.gid = 12345
            if pax:
                info.pax_headers = {"comment": "c" * 2000}
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _outside() -> dict[str, tuple[int, int, int]]:
    return {str(p): (p.lstat().st_mode, p.lstat().st_nlink, p.lstat().st_uid)
            for p in [OUTSIDE, *OUTSIDE.rglob("*")]}


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(entries=ENTRIES, wrong_digest=st.booleans())
def test_any_layer_unpacks_inside_itself_or_is_refused(tmp_path, entries, wrong_digest) -> None:
    (OUTSIDE / "secret").write_text("host")
    os.chmod(OUTSIDE, 0o700)
    os.chmod(OUTSIDE / "secret", 0o600)
    before = _outside()
    store = ImageStore(str(tmp_path / f"store{os.urandom(4).hex()}"))
    tar = _tar(entries)
    blob = store.put_blob(gzip.compress(tar, mtime=0))
    diff_id = "sha256:" + ("0" * 64 if wrong_digest else hashlib.sha256(tar).hexdigest())
    try:
        root = store.unpack_layer(blob, diff_id)
    except ImageError:
        root = None
    assert _outside() == before
    assert not Path("/up").exists() and not Path("/abs").exists()
    if root is not None:
        for p in Path(root).rglob("*"):
            if p.is_symlink():
                continue  # links are written, never followed: they may point anywhere
            assert os.path.realpath(p).startswith(os.path.realpath(root) + "/"), p
            assert not stat.S_ISBLK(p.lstat().st_mode)


MANIFEST_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 2**65), st.text(max_size=80),
              st.sampled_from(["sha256:" + "a" * 64, "sha256:../../x", "md5:1",
                               "application/vnd.oci.image.index.v1+json"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(
                                ["schemaVersion", "mediaType", "config", "layers", "manifests",
                                 "digest", "size", "platform", "os", "architecture"]),
                                inner, max_size=6)), max_leaves=25)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(manifest=MANIFEST_VALUES)
def test_any_manifest_a_registry_serves_fails_cleanly(tmp_path, manifest) -> None:
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            app, host = await serve_hostile(nursery)
            app.routes["/v2/x/manifests/latest"] = (200, {}, json.dumps(manifest).encode())
            try:
                await RegistryClient(ImageStore(str(tmp_path / "s")), timeout_s=5).pull(
                    f"{host}/x:latest")
            except ImageError:
                pass
            nursery.cancel_scope.cancel()
    trio.run(main)
