"""Backups of the store: ``nodeagent snapshot save`` and ``restore``, as etcdctl's and
etcdutl's.

A backup file is the MVCC state (every key with its revisions) at one revision, read
after a linearizable barrier on a Raft server (so it holds every write acknowledged
before the request), with a header that says what it is and a SHA-256 of the state, so
a truncated or altered file is refused on restore instead of becoming a cluster's
truth.

Restore writes a new data directory, offline, never over an existing one: for a
single agent its store's snapshot; for Raft servers (``raft_id`` and the voters, as
etcdutl's ``--initial-cluster``) a Raft snapshot at index 1 of term 1 whose member
list is those voters, so servers restored from the same file and started with the
same peers form a new cluster that holds the state.  Resource versions carry on from
the backup's revision.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import msgpack

from nodeagent.fsutil import write_atomic

__all__ = ["Backup", "BackupError", "decode", "encode", "restore"]

MAGIC = b"nodeagent-snapshot 1\n"


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class Backup:
    revision: int
    keys: int
    state: bytes  # MVCC.snapshot()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.state).hexdigest()


def encode(state: bytes) -> bytes:
    snap = msgpack.unpackb(state, raw=False)
    head = {"revision": snap["revision"], "keys": len(snap["kvs"]),
            "sha256": hashlib.sha256(state).hexdigest()}
    return MAGIC + json.dumps(head).encode() + b"\n" + state


def decode(data: bytes) -> Backup:
    if not data.startswith(MAGIC):
        raise BackupError("not a nodeagent snapshot (no 'nodeagent-snapshot 1' header)")
    line, sep, state = data[len(MAGIC):].partition(b"\n")
    try:
        head = json.loads(line) if sep else {}
        revision, keys, digest = int(head["revision"]), int(head["keys"]), str(head["sha256"])
    except (ValueError, TypeError, KeyError) as exc:
        raise BackupError("the snapshot's header is damaged") from exc
    if hashlib.sha256(state).hexdigest() != digest:
        raise BackupError("the snapshot's checksum does not match: the file is truncated or "
                          "altered")
    try:
        snap = msgpack.unpackb(state, raw=False)
        if int(snap["revision"]) != revision or len(snap["kvs"]) != keys:
            raise ValueError
    except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
        raise BackupError("the snapshot's state does not match its header") from exc
    return Backup(revision, keys, state)


def restore(data: bytes, data_dir: str, *, raft_id: int = 0,
            voters: tuple[int, ...] = ()) -> Backup:
    """Make ``data_dir`` (new or empty) hold the backup; BackupError if it cannot."""
    backup = decode(data)
    if os.path.isdir(data_dir) and os.listdir(data_dir):
        raise BackupError(f"{data_dir} is not empty: restore makes a new data directory")
    if raft_id and raft_id not in voters:
        raise BackupError(f"raft id {raft_id} is not among the voters {list(voters)}")
    os.makedirs(data_dir, exist_ok=True)
    if raft_id:
        from nodeagent.raft.messages import SnapshotMeta
        from nodeagent.raft.node import pack_snapshot
        from nodeagent.raft.storage import RaftStorage
        storage = RaftStorage(os.path.join(data_dir, "raft"))
        storage.load()
        storage.save_snapshot(SnapshotMeta(index=1, term=1, voters=tuple(sorted(voters))),
                              pack_snapshot(backup.state), [])
        storage.close()
    else:
        from nodeagent.store.wal import WAL
        wal = WAL(data_dir)
        wal.recover()
        wal.save_snapshot(0, backup.state)
        wal.close()
    write_atomic(Path(data_dir) / "restored-from.json", json.dumps(
        {"revision": backup.revision, "keys": backup.keys, "sha256": backup.sha256}).encode())
    return backup
