"""Image layers cannot reach the host: the digest is checked before anything is written,
no link is ever followed while unpacking, hard links stay inside the layer, device nodes
and oversized headers are refused.  Each layer here is an attack that once worked: a
symlink to a host directory, then a directory entry and hard links through it, changed a
host directory to 0777 and a host file to 04777 (even with a wrong diff_id), and a
correct diff_id made a host file part of the image."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from waiting import needs_root

from runtime.images import ImageError, ImageStore

pytestmark = needs_root("layers keep owners and whiteouts")


def entry(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, data: bytes = b"",
          link: str = "", **extra: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
    for k, v in extra.items():
        setattr(info, k, v)
    return info, data


def layer(*entries: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A host directory and file a layer must never touch."""
    d = tmp_path / "host-dir"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    (d / "secret").write_text("host data")
    os.chmod(d / "secret", 0o600)
    return d


def unpack(tmp_path: Path, tar: bytes, diff_id: str | None = None) -> tuple[ImageStore, str]:
    store = ImageStore(str(tmp_path / "store"))
    gz = gzip.compress(tar, mtime=0)
    blob = store.put_blob(gz)
    diff = diff_id or "sha256:" + hashlib.sha256(tar).hexdigest()
    return store, store.unpack_layer(blob, diff)


def untouched(victim: Path) -> None:
    assert stat.S_IMODE(victim.stat().st_mode) == 0o700
    secret = victim / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.stat().st_nlink == 1 and secret.read_text() == "host data"
    assert sorted(p.name for p in victim.iterdir()) == ["secret"]


def attack(victim: Path) -> bytes:
    return layer(
        entry("d", tarfile.SYMTYPE, link=str(victim), mode=0o777),
        entry("d", tarfile.DIRTYPE, mode=0o777),
        entry("d/secret", tarfile.LNKTYPE, link="d/secret", mode=0o4777),
        entry("f", tarfile.SYMTYPE, link=str(victim / "secret")),
        entry("g", tarfile.LNKTYPE, link="f", mode=0o4777),
        entry("d/new", data=b"planted", mode=0o4777),
    )


def test_a_layer_with_a_wrong_diff_id_writes_nothing(tmp_path: Path, victim: Path) -> None:
    with pytest.raises(ImageError, match="does not match its diff id"):
        unpack(tmp_path, attack(victim), "sha256:" + "0" * 64)
    untouched(victim)
    assert os.listdir(tmp_path / "store" / "layers") == []


def test_links_in_a_layer_are_never_followed_out_of_it(tmp_path: Path, victim: Path) -> None:
    try:
        _store, root = unpack(tmp_path, attack(victim))
    except ImageError as exc:
        assert "not in the layer" in str(exc) or "not a directory of the layer" in str(exc)
    else:
        # Whatever was unpacked stays in the layer: g is a link to the link f.
        assert os.path.islink(os.path.join(root, "f"))
    untouched(victim)


def test_a_hard_link_to_a_host_file_through_a_symlinked_directory_is_refused(
        tmp_path: Path, victim: Path) -> None:
    tar = layer(entry("d", tarfile.SYMTYPE, link=str(victim)),
                entry("stolen", tarfile.LNKTYPE, link="d/secret"))
    with pytest.raises(ImageError, match="not a directory of the layer"):
        unpack(tmp_path, tar)
    untouched(victim)


def test_writing_through_a_symlinked_directory_is_refused(tmp_path: Path, victim: Path) -> None:
    tar = layer(entry("d", tarfile.SYMTYPE, link=str(victim)),
                entry("d/planted", data=b"x", mode=0o4755),
                entry("d/secret", data=b"overwritten"))
    with pytest.raises(ImageError, match="not a directory of the layer"):
        unpack(tmp_path, tar)
    untouched(victim)


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "/../escape"])
def test_names_that_climb_out_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ImageError, match=r"'\.\.'"):
        unpack(tmp_path, layer(entry(name, data=b"x")))
    assert not (tmp_path / "escape").exists() and not Path("/escape").exists()


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_device_nodes_are_refused(tmp_path: Path, kind: bytes) -> None:
    with pytest.raises(ImageError, match="device nodes"):
        unpack(tmp_path, layer(entry("dev/sda", kind, devmajor=8, devminor=0)))


def test_an_oversized_header_record_is_refused_before_it_is_read(tmp_path: Path) -> None:
    tar = layer(entry("f", data=b"x", pax_headers={"comment": "c" * (2 << 20)}))
    with pytest.raises(ImageError, match="header record"):
        unpack(tmp_path, tar)


def test_an_ordinary_layer_keeps_modes_owners_links_and_whiteouts(tmp_path: Path) -> None:
    tar = layer(entry("bin", tarfile.DIRTYPE, mode=0o755),
                entry("bin/su", data=b"#!", mode=0o4755, uid=0, gid=0),
                entry("bin/sh", tarfile.SYMTYPE, link="/bin/busybox"),
                entry("bin/ash", tarfile.LNKTYPE, link="bin/su"),
                entry("home", tarfile.DIRTYPE, mode=0o555),
                entry("home/app", data=b"app", mode=0o640, uid=1000, gid=1000),
                entry("etc/.wh.old", data=b""),
                entry("var/.wh..wh..opq", data=b""),
                entry("run/fifo", tarfile.FIFOTYPE, mode=0o600))
    _, root = unpack(tmp_path, tar)
    r = Path(root)
    assert stat.S_IMODE((r / "bin" / "su").stat().st_mode) == 0o4755
    assert os.readlink(r / "bin" / "sh") == "/bin/busybox"
    assert (r / "bin" / "ash").stat().st_ino == (r / "bin" / "su").stat().st_ino
    assert stat.S_IMODE((r / "home").stat().st_mode) == 0o555
    assert (r / "home" / "app").stat().st_uid == 1000
    assert stat.S_ISCHR((r / "etc" / "old").lstat().st_mode)
    assert os.getxattr(r / "var", "trusted.overlay.opaque") == b"y"
    assert stat.S_ISFIFO((r / "run" / "fifo").lstat().st_mode)


def test_a_deep_directory_tree_replaced_by_a_file_unpacks_without_recursion(tmp_path: Path) -> None:
    """A layer may nest directories 1,500 deep and then replace the top one with a file:
    removing the tree once raised RecursionError out of the unpacker."""
    deep, name = [], "a"
    for _ in range(1500):
        deep.append(entry(name, tarfile.DIRTYPE, mode=0o755))
        name += "/a"
    _, root = unpack(tmp_path, layer(*deep, entry("a", data=b"file now")))
    assert (Path(root) / "a").read_bytes() == b"file now"
