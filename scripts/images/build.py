#!/usr/bin/env python3
"""Build the project's images as OCI image layouts, from Debian's busybox-static.

    scripts/images/build.py OUT_DIR

Writes OUT_DIR/busybox (busybox:latest: the static busybox and a link per
applet) and OUT_DIR/kubia (kubia:latest: busybox plus an HTTP server on port
8080 that answers "You've hit <hostname>", like the seeds' kubia app).  Layers
are reproducible (sorted entries, zero mtimes, root ownership), gzip-compressed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from busybox_bundle import build as build_bundle

# Like the seeds' kubia (a node app): each request logged, the answer names the host.
KUBIA_CGI = """#!/bin/sh
echo "Received request from $REMOTE_ADDR" >&2
echo "Content-Type: text/plain"
echo
echo "You've hit $(hostname)"
"""


def layer_tar(files: dict[str, tuple[int, bytes | None, str | None]]) -> bytes:
    """path -> (mode, content or None for a directory, symlink target) as a tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            mode, content, link = files[path]
            info = tarfile.TarInfo(path)
            info.mtime = 0
            info.uid = info.gid = 0
            info.mode = mode
            if link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
            elif content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def tree_files(root: str) -> dict[str, tuple[int, bytes | None, str | None]]:
    files: dict[str, tuple[int, bytes | None, str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            files[rel] = (os.stat(dirpath).st_mode & 0o7777, None, None)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            relf = os.path.normpath(os.path.join(rel, name))
            if os.path.islink(full):
                files[relf] = (0o777, None, os.readlink(full))
            else:
                with open(full, "rb") as f:
                    files[relf] = (os.stat(full).st_mode & 0o7777, f.read(), None)
    return files


def write_layout(out: str, name: str, layers: list[bytes], config: dict) -> None:
    blobs = Path(out, "blobs", "sha256")
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return "sha256:" + h
    layer_descs, diff_ids = [], []
    for tar in layers:
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        gz = gzip.compress(tar, mtime=0)
        layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": put(gz), "size": len(gz)})
    config = {**config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cfg = json.dumps(config, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg),
                   "size": len(cfg)},
        "layers": layer_descs}, sort_keys=True).encode()
    mdigest = put(manifest)
    Path(out, "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    Path(out, "index.json").write_text(json.dumps({
        "schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
            "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": name},
            "platform": {"architecture": "amd64", "os": "linux"}}]}))


def build(out: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        build_bundle(tmp)
        base = layer_tar(tree_files(os.path.join(tmp, "rootfs")))
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    busybox = os.path.join(out, "busybox")
    write_layout(busybox, "busybox:latest", [base], {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": env, "Cmd": ["sh"], "WorkingDir": "/"}})
    app = layer_tar({"www": (0o755, None, None), "www/cgi-bin": (0o755, None, None),
                     "www/cgi-bin/index.cgi": (0o755, KUBIA_CGI.encode(), None)})
    kubia = os.path.join(out, "kubia")
    write_layout(kubia, "kubia:latest", [base, app], {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": env, "Cmd": ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"],
                   "WorkingDir": "/", "ExposedPorts": {"8080/tcp": {}}}})
    return {"busybox:latest": busybox, "kubia:latest": kubia}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for ref, path in build(sys.argv[1]).items():
        print(f"{ref}\t{path}")
