"""Unpacking an image layer (a tar from anywhere) without letting it touch the host.

A layer is hostile until proven otherwise.  Found against the first unpacker: a
symlink to a host directory, then a directory entry and a hard link through it,
chmodded a host directory to 0777 and a host file to 04777 -- before the layer
failed its diff_id check, and with a correct diff_id a hard link made a host file
part of the image.  So, in order:

1. **Verify first** (``verify``): the uncompressed stream must hash to the layer's
   diff_id before anything is written.  The same pass walks the tar headers and
   refuses a layer over the caps: entries, total size, and the size of any one
   header record (pax and GNU long-name records are read whole by tarfile, so a
   giant one would be a giant allocation).
2. **Unpack without following links** (``unpack``): every parent directory is
   opened component by component with ``O_NOFOLLOW`` relative to the one before
   (``openat``), and every entry is made, linked, chowned, chmodded and dated
   relative to its parent's descriptor, never by path.  A symlink in the layer is
   written as a symlink and never traversed; a hard link must name an entry of
   this layer, reached the same way, and is linked without following it.  Names
   with ``..`` are refused.  Device nodes are refused (overlayfs whiteouts are
   made by the unpacker itself, as 0/0 character devices).

Errors are LayerError naming the entry; images.py turns them into InvalidImage.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

__all__ = ["MAX_ENTRIES", "MAX_HEADER_BYTES", "MAX_LAYER_BYTES", "LayerError", "decompressed",
           "unpack", "verify"]

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_ENTRIES = 1_000_000
MAX_LAYER_BYTES = 32 * 1024 ** 3  # uncompressed
MAX_HEADER_BYTES = 1024 * 1024  # one pax / GNU long-name record
MAX_NAME_BYTES = 4096
_BLOCK = 512
_HEADER_TYPES = {b"x", b"g", b"L", b"K"}  # records tarfile reads whole into memory


class LayerError(Exception):
    """The layer is refused; the message names the entry and the reason."""


def decompressed(raw: IO[bytes]) -> IO[bytes]:
    """``raw`` itself, or a gzip reader over it (layers may be either)."""
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        import gzip
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def _header_size(block: bytes) -> int:
    field = block[124:136]
    if field[0] & 0x80:  # base-256 (GNU) for sizes over 8 GiB
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError as exc:
        raise LayerError(f"a tar header has an invalid size field {text!r}") from exc


def verify(stream: IO[bytes], diff_id: str, *, max_entries: int = MAX_ENTRIES,
           max_bytes: int = MAX_LAYER_BYTES) -> None:
    """Read the whole uncompressed layer: its SHA-256 must be ``diff_id``, and its headers
    within the caps.  Writes nothing.  Raises LayerError."""
    h = hashlib.sha256()
    total = 0

    def read(n: int) -> bytes:
        nonlocal total
        data = stream.read(n)
        h.update(data)
        total += len(data)
        if total > max_bytes:
            raise LayerError(f"the layer is over {max_bytes} bytes uncompressed")
        return data

    for _ in range(max_entries + 1):
        block = read(_BLOCK)
        if not block or block == b"\0" * _BLOCK:
            break  # the end of the archive: any padding after it is hashed below
        if len(block) < _BLOCK:
            raise LayerError("the layer ends inside a tar header")
        size = _header_size(block)
        if block[156:157] in _HEADER_TYPES and size > MAX_HEADER_BYTES:
            raise LayerError(f"a tar header record of {size} bytes is over the limit "
                             f"({MAX_HEADER_BYTES})")
        data = -(-size // _BLOCK) * _BLOCK  # the entry's data, in whole blocks
        while data:
            chunk = read(min(data, 1 << 20))
            if not chunk:
                raise LayerError("the layer ends inside an entry")
            data -= len(chunk)
    else:
        raise LayerError(f"the layer has more than {max_entries} entries")
    while read(1 << 20):
        pass
    actual = "sha256:" + h.hexdigest()
    if actual != diff_id:
        raise LayerError(f"the layer does not match its diff id {diff_id} (got {actual})")


def _parts(name: str) -> list[str]:
    """The components of an entry's name inside the layer; refuses ``..`` and NUL."""
    if len(name.encode(errors="surrogateescape")) > MAX_NAME_BYTES or "\0" in name:
        raise LayerError(f"entry name {name[:80]!r}... is too long or has a NUL byte")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"entry {name!r} has '..' in its name")
    return parts


@contextmanager
def _open_dir(root_fd: int, parts: list[str], *, create: bool) -> Iterator[int]:
    """A descriptor of the directory ``parts`` under the root, each component opened with
    O_NOFOLLOW relative to the last: a symlink on the way is an error, never a path out.
    Missing directories are made (0755) when ``create``."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LayerError(f"{'/'.join(parts)}: {part!r} is not a directory of "
                                     "the layer (a link is never followed)") from exc
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _remove(dir_fd: int, name: str) -> None:
    """Make room for a new entry: whatever is at ``name`` goes, a directory with its
    contents, and nothing is followed (unlink and rmdir never follow a link).  Without
    recursion: a layer may nest directories two thousand deep."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    # (parent's descriptor, name, own descriptor, names left in it), deepest last
    stack: list[tuple[int, str, int, Iterator[str]]] = []

    def enter(parent: int, entry: str) -> None:
        fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        stack.append((parent, entry, fd, iter(os.listdir(fd))))
    try:
        enter(dir_fd, name)
        while stack:
            parent, entry, fd, names = stack[-1]
            sub = next(names, None)
            if sub is None:
                stack.pop()
                os.close(fd)
                os.rmdir(entry, dir_fd=parent)
            elif stat.S_ISDIR(os.stat(sub, dir_fd=fd, follow_symlinks=False).st_mode):
                enter(fd, sub)
            else:
                os.unlink(sub, dir_fd=fd)
    finally:
        for _parent, _entry, fd, _names in stack:
            os.close(fd)


def _attrs(dir_fd: int, name: str, member: tarfile.TarInfo, fd: int | None = None) -> None:
    """Owner, mode and time of an entry, set on it and never through a link."""
    if fd is not None:
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        os.utime(fd, (member.mtime, member.mtime))
        return
    os.chown(name, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
    if not member.issym():  # Linux has no lchmod; a link's own mode means nothing
        os.chmod(name, member.mode & 0o7777, dir_fd=dir_fd, follow_symlinks=False)
    os.utime(name, (member.mtime, member.mtime), dir_fd=dir_fd, follow_symlinks=False)


def unpack(tar: tarfile.TarFile, root: str, *, whiteouts: bool = True,
           max_entries: int = MAX_ENTRIES) -> None:
    """Unpack every entry of ``tar`` under the existing directory ``root`` as described
    in the module's docstring.  Raises LayerError (or OSError from the disk)."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    dirs: list[tuple[list[str], tarfile.TarInfo]] = []
    try:
        for count, member in enumerate(tar, 1):
            if count > max_entries:
                raise LayerError(f"the layer has more than {max_entries} entries")
            parts = _parts(member.name)
            if not parts:
                continue  # the root itself
            *parent, base = parts
            with _open_dir(root_fd, parent, create=True) as pfd:
                if whiteouts and base == OPAQUE:
                    os.setxattr(pfd, "trusted.overlay.opaque", b"y")
                elif whiteouts and base.startswith(WHITEOUT):
                    hidden = base[len(WHITEOUT):]
                    _remove(pfd, hidden)
                    os.mknod(hidden, 0o600 | stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
                else:
                    _entry(tar, member, root_fd, pfd, base, parts, dirs)
        # Directories last, deepest first: their times and modes would otherwise change
        # as their contents are written (a 0555 directory would refuse its own files).
        for parts, member in reversed(dirs):
            *parent, base = parts
            try:
                with _open_dir(root_fd, parent, create=False) as pfd:
                    if stat.S_ISDIR(os.stat(base, dir_fd=pfd, follow_symlinks=False).st_mode):
                        _attrs(pfd, base, member)
            except (LayerError, FileNotFoundError):
                continue  # a later entry replaced it, or a directory above it
    finally:
        os.close(root_fd)


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo, root_fd: int, pfd: int, base: str,
           parts: list[str], dirs: list[tuple[list[str], tarfile.TarInfo]]) -> None:
    if member.isdir():
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                _remove(pfd, base)
                os.mkdir(base, 0o700, dir_fd=pfd)
        except FileNotFoundError:
            os.mkdir(base, 0o700, dir_fd=pfd)
        dirs.append((parts, member))
        return
    _remove(pfd, base)
    if member.isreg():
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                     dir_fd=pfd)
        try:
            src = tar.extractfile(member)
            assert src is not None
            with open(fd, "wb", closefd=False) as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            _attrs(pfd, base, member, fd)
        finally:
            os.close(fd)
    elif member.issym():
        os.symlink(member.linkname, base, dir_fd=pfd)  # written, never followed here
        _attrs(pfd, base, member)
    elif member.islnk():
        *lparent, lbase = _parts(member.linkname) or [""]
        if not lbase:
            raise LayerError(f"hard link {member.name!r} has no target")
        with _open_dir(root_fd, lparent, create=False) as lfd:
            try:
                os.link(lbase, base, src_dir_fd=lfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError as exc:
                raise LayerError(f"hard link {member.name!r} names {member.linkname!r}, "
                                 "which is not in the layer") from exc
    elif member.isfifo():
        os.mkfifo(base, 0o600, dir_fd=pfd)
        _attrs(pfd, base, member)
    else:
        raise LayerError(f"entry {member.name!r}: device nodes and other special files are "
                         "not allowed in a layer")
