"""Durable, private file operations shared by the store's log, Raft's and the agent's
state files.

What the agent keeps (the store, Raft's log, keys, its config) is readable by root
alone, whatever the umask: directories 0700, files 0600, set when they are made
(etcd does the same for its data dir)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "make_private_dir", "private_opener", "write_atomic"]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_opener(path: str, flags: int) -> int:
    """``open(..., opener=private_opener)``: a file it creates is 0600."""
    return os.open(path, flags, PRIVATE_FILE_MODE)


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Make ``path`` (and its missing parents) and leave it 0700, even if it existed."""
    Path(path).mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a new file, a rename) durable, not only their data."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new one,
    never a torn one, and the new one survives power loss once this returns.  The file
    is 0600."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", opener=private_opener) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
