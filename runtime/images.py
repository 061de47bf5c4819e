"""The image store: content-addressed blobs, unpacked layers, overlay rootfs per container.

Layout under ``ROOT``::

    blobs/sha256/<hex>          manifests, configs and layer tarballs, by digest
    layers/<hex of diff id>/    a layer unpacked, whiteouts in overlayfs form
    refs.json                   image name -> manifest digest
    containers/<id>/{upper,work,merged}   a container's writable layer and mount

Images come in as an OCI image layout (directory or tar) or a docker-archive
tar (``docker save``); registry pulls (runtime/registry.py) land in the same
blobs.  Every blob is checked against its digest before it is used.  Layers
are unpacked once and shared read-only between containers: a container's
rootfs is an overlay of the image's layers with its own upper directory.
Whiteouts (``.wh.NAME``, ``.wh..wh..opq``) become overlayfs whiteouts (a 0/0
character device, the ``trusted.overlay.opaque`` xattr).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from runtime import syscalls as sc
from runtime.layers import LayerError, decompressed, unpack, verify

__all__ = ["Image", "ImageError", "ImageStore", "descriptor", "is_index",
           "manifest_descriptors"]

MEDIA_INDEX = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MEDIA_MANIFEST = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


class ImageError(Exception):
    """An image cannot be used; ``reason`` is what a pod status shows (ErrImagePull, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class Image:
    name: str
    digest: str  # of the manifest
    config: dict[str, Any]
    layers: tuple[str, ...]  # diff ids (sha256:...), bottom first

    @property
    def entrypoint(self) -> list[str]:
        return list((self.config.get("config") or {}).get("Entrypoint") or [])

    @property
    def cmd(self) -> list[str]:
        return list((self.config.get("config") or {}).get("Cmd") or [])

    @property
    def env(self) -> list[str]:
        return list((self.config.get("config") or {}).get("Env") or [])

    @property
    def working_dir(self) -> str:
        return (self.config.get("config") or {}).get("WorkingDir") or "/"

    @property
    def user(self) -> str:
        return (self.config.get("config") or {}).get("User") or ""


def normalize_name(name: str) -> str:
    """``busybox`` -> ``busybox:latest``; a digest or tag stays."""
    last = name.rsplit("/", 1)[-1]
    if "@" in name or ":" in last:
        return name
    return name + ":latest"


def is_index(doc: dict[str, Any]) -> bool:
    return doc.get("mediaType") in MEDIA_INDEX or "manifests" in doc


def descriptor(value: Any, what: str, reason: str) -> dict[str, Any]:
    """An OCI descriptor as read from outside: an object whose digest is a sha256 digest
    and whose size, if given, a byte count.  Raises ImageError(reason) naming ``what``."""
    if not isinstance(value, dict) or not isinstance(value.get("digest"), str):
        raise ImageError(reason, f"{what}: not a descriptor with a digest")
    _hex(value["digest"])
    size = value.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(reason, f"{what}: size {size!r} is not a byte count")
    return value


def manifest_descriptors(manifest: Any, reason: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(config, layers) descriptors of an image manifest; ImageError(reason) for anything
    else."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise ImageError(reason, "the manifest has no config or layers")
    return (descriptor(manifest.get("config"), "config", reason),
            [descriptor(d, f"layer {i}", reason) for i, d in enumerate(manifest["layers"])])


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise ImageError("InvalidImage", f"unsupported or malformed digest {digest!r}")
    return hexpart


class ImageStore:
    def __init__(self, root: str) -> None:
        self.root = root
        for d in ("blobs/sha256", "layers", "containers"):
            os.makedirs(os.path.join(root, d), exist_ok=True)

    # --- blobs ----------------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.root, "blobs", "sha256", _hex(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        actual = sha256_of(data)
        if digest is not None and actual != digest:
            raise ImageError("ErrImagePull", f"digest mismatch: expected {digest}, got {actual}")
        path = self.blob_path(actual)
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return actual

    def put_blob_stream(self, src: IO[bytes], digest: str) -> str:
        """Copy a stream into the store, verifying it against ``digest`` as it goes."""
        path = self.blob_path(digest)
        if os.path.exists(path):
            return digest
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
            if "sha256:" + h.hexdigest() != digest:
                raise ImageError("ErrImagePull", f"digest mismatch for {digest}: got "
                                 f"sha256:{h.hexdigest()}")
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return digest

    def read_blob(self, digest: str) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise ImageError("ErrImagePull", f"blob {digest} is missing") from exc
        return data

    def read_json_blob(self, digest: str) -> dict[str, Any]:
        try:
            value = json.loads(self.read_blob(digest))
        except ValueError as exc:
            raise ImageError("InvalidImage", f"blob {digest} is not JSON") from exc
        if not isinstance(value, dict):
            raise ImageError("InvalidImage", f"blob {digest} is not a JSON object")
        return value

    # --- references -----------------------------------------------------------------------

    def _refs(self) -> dict[str, str]:
        try:
            with open(os.path.join(self.root, "refs.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _save_refs(self, refs: dict[str, str]) -> None:
        path = os.path.join(self.root, "refs.json")
        with open(path + ".tmp", "w") as f:
            json.dump(refs, f, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)

    def tag(self, name: str, manifest_digest: str) -> Image:
        image = self.image_from_manifest(name, manifest_digest)
        refs = self._refs()
        refs[normalize_name(name)] = manifest_digest
        self._save_refs(refs)
        return image

    def list(self) -> list[Image]:
        return [self.image_from_manifest(n, d) for n, d in sorted(self._refs().items())]

    def get(self, name: str) -> Image:
        digest = self._refs().get(normalize_name(name))
        if digest is None:
            raise ImageError("ErrImageNeverPull", f'image "{name}" is not present')
        return self.image_from_manifest(normalize_name(name), digest)

    def remove(self, name: str) -> None:
        refs = self._refs()
        if refs.pop(normalize_name(name), None) is None:
            raise ImageError("NotFound", f'image "{name}" is not present')
        self._save_refs(refs)

    def image_from_manifest(self, name: str, digest: str) -> Image:
        manifest = self.read_json_blob(digest)
        if is_index(manifest):
            digest = self.pick_platform(manifest)
            manifest = self.read_json_blob(digest)
        config_desc, layers = manifest_descriptors(manifest, "InvalidImage")
        config_digest = config_desc["digest"]
        layer_digests = [layer["digest"] for layer in layers]
        config = self.read_json_blob(config_digest)
        rootfs = config.get("rootfs")
        diff_ids = (rootfs.get("diff_ids") if isinstance(rootfs, dict) else None) or []
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
            raise ImageError("InvalidImage", f"image {name}: rootfs.diff_ids is not a list of "
                             "digests")
        for d in diff_ids:
            _hex(d)
        if len(diff_ids) != len(layer_digests):
            raise ImageError("InvalidImage", f"image {name}: {len(layer_digests)} layers but "
                             f"{len(diff_ids)} diff_ids")
        for layer_digest, diff_id in zip(layer_digests, diff_ids, strict=True):
            self.unpack_layer(layer_digest, diff_id)
        return Image(name, digest, config, tuple(diff_ids))

    @staticmethod
    def pick_platform(index: dict[str, Any], os_name: str = "linux",
                      arch: str | None = None) -> str:
        import platform as _platform
        arch = arch or {"x86_64": "amd64", "aarch64": "arm64"}.get(_platform.machine(), "amd64")
        manifests = index.get("manifests") or []
        if not isinstance(manifests, list):
            raise ImageError("ErrImagePull", "the index's manifests is not a list")
        manifests = [descriptor(m, "index manifest", "ErrImagePull") for m in manifests]
        for m in manifests:
            p = m.get("platform") if isinstance(m.get("platform"), dict) else {}
            if p.get("os") == os_name and p.get("architecture") == arch:
                return str(m["digest"])
        if len(manifests) == 1 and not manifests[0].get("platform"):
            return str(manifests[0]["digest"])
        raise ImageError("ErrImagePull", f"no image for {os_name}/{arch} in the index")

    # --- layers ---------------------------------------------------------------------------

    def layer_dir(self, diff_id: str) -> str:
        return os.path.join(self.root, "layers", _hex(diff_id))

    def unpack_layer(self, blob_digest: str, diff_id: str) -> str:
        """Unpack a layer blob once; the uncompressed tar must hash to ``diff_id``."""
        target = self.layer_dir(diff_id)
        if os.path.isdir(target):
            return target
        tmp = tempfile.mkdtemp(dir=os.path.join(self.root, "layers"), prefix=".unpack-")
        try:
            # The digest first, with nothing written; then unpack (runtime/layers.py).
            with open(self.blob_path(blob_digest), "rb") as raw:
                verify(decompressed(raw), diff_id)
            with open(self.blob_path(blob_digest), "rb") as raw, \
                    tarfile.open(fileobj=decompressed(raw), mode="r|") as tar:
                unpack(tar, tmp)
            os.chmod(tmp, 0o755)
            os.rename(tmp, target)
        except FileNotFoundError as exc:
            raise ImageError("ErrImagePull", f"layer blob {blob_digest} is missing") from exc
        except LayerError as exc:
            raise ImageError("InvalidImage", f"layer {blob_digest}: {exc}") from exc
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ImageError("InvalidImage", f"layer {blob_digest}: {exc}") from exc
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    # --- import ---------------------------------------------------------------------------

    def import_oci_layout(self, path: str, name: str | None = None) -> builtins.list[Image]:
        """An OCI image layout (directory or tar): every image its index.json names."""
        if os.path.isfile(path):
            with tempfile.TemporaryDirectory(dir=self.root) as d:
                try:
                    with tarfile.open(path) as tar:
                        unpack(tar, d, whiteouts=False)
                except (LayerError, tarfile.TarError, OSError) as exc:
                    raise ImageError("InvalidImage", f"{path}: {exc}") from exc
                return self.import_oci_layout(d, name)
        try:
            with open(os.path.join(path, "index.json")) as f:
                index = json.load(f)
        except (OSError, ValueError) as exc:
            raise ImageError("InvalidImage", f"{path}: no readable index.json ({exc})") from exc
        blobs = os.path.join(path, "blobs", "sha256")
        for hexname in os.listdir(blobs) if os.path.isdir(blobs) else []:
            with open(os.path.join(blobs, hexname), "rb") as f:
                self.put_blob_stream(f, "sha256:" + hexname)
        images = []
        for m in index.get("manifests") or []:
            ref = (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
            image_name = name or ref
            if not image_name:
                raise ImageError("InvalidImage", f"{path}: image has no name; give one")
            if ref and ":" not in ref.rsplit("/", 1)[-1] and not name:
                image_name = ref
            images.append(self.tag(image_name, m["digest"]))
        return images

    def import_docker_archive(self, path: str, name: str | None = None) -> builtins.list[Image]:
        """A ``docker save`` tar: manifest.json, config JSON, layer tars."""
        images = []
        try:
            with tarfile.open(path) as tar:
                members = {m.name: m for m in tar.getmembers()}

                def read(member: str) -> bytes:
                    f = tar.extractfile(members[member])
                    if f is None:
                        raise ImageError("InvalidImage", f"{path}: {member} is not a file")
                    return f.read()
                manifest = json.loads(read("manifest.json"))
                for entry in manifest:
                    config_data = read(entry["Config"])
                    config_digest = self.put_blob(config_data)
                    layers = []
                    for layer in entry["Layers"]:
                        data = read(layer)
                        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": self.put_blob(data), "size": len(data)})
                    oci_manifest = json.dumps({
                        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST[0],
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": config_digest, "size": len(config_data)},
                        "layers": layers}).encode()
                    digest = self.put_blob(oci_manifest)
                    for tag in ([name] if name else entry.get("RepoTags") or []):
                        images.append(self.tag(tag, digest))
        except (KeyError, ValueError, tarfile.TarError) as exc:
            raise ImageError("InvalidImage", f"{path}: not a docker archive ({exc})") from exc
        return images

    # --- container rootfs -----------------------------------------------------------------

    def mount_rootfs(self, container_id: str, image: Image) -> str:
        """Overlay of the image's layers + a per-container upper dir; returns the mount point."""
        base = os.path.join(self.root, "containers", container_id)
        upper, work, merged = (os.path.join(base, d) for d in ("upper", "work", "merged"))
        for d in (upper, work, merged):
            os.makedirs(d, exist_ok=True)
        if os.path.ismount(merged):
            return merged
        lower = ":".join(self.layer_dir(d) for d in reversed(image.layers))  # top first
        try:
            sc.mount("overlay", merged, "overlay", 0,
                     f"lowerdir={lower},upperdir={upper},workdir={work}")
        except OSError as exc:
            raise ImageError("CreateContainerError", f"rootfs for {container_id}: {exc}") from exc
        return merged

    def remove_rootfs(self, container_id: str) -> None:
        base = os.path.join(self.root, "containers", container_id)
        merged = os.path.join(base, "merged")
        if os.path.ismount(merged):
            sc.umount2(merged, sc.MNT_DETACH)
        shutil.rmtree(base, ignore_errors=True)

    def gc(self) -> tuple[int, int]:
        """Remove layers and blobs no tagged image uses; returns (layers, blobs) removed."""
        keep_blobs: set[str] = set()
        keep_layers: set[str] = set()
        for name, digest in self._refs().items():
            keep_blobs.add(_hex(digest))
            manifest = self.read_json_blob(digest)
            if "manifests" in manifest:
                for m in manifest["manifests"]:
                    keep_blobs.add(_hex(m["digest"]))
                with contextlib.suppress(ImageError):
                    manifest = self.read_json_blob(self.pick_platform(manifest))
            keep_blobs.add(_hex(manifest["config"]["digest"]))
            keep_blobs.update(_hex(layer["digest"]) for layer in manifest["layers"])
            image = self.image_from_manifest(name, digest)
            keep_layers.update(_hex(d) for d in image.layers)
        removed_layers = removed_blobs = 0
        layers_dir = os.path.join(self.root, "layers")
        for entry in os.listdir(layers_dir):
            if entry not in keep_layers:
                shutil.rmtree(os.path.join(layers_dir, entry), ignore_errors=True)
                removed_layers += 1
        blobs_dir = os.path.join(self.root, "blobs", "sha256")
        for entry in os.listdir(blobs_dir):
            if entry not in keep_blobs:
                os.unlink(os.path.join(blobs_dir, entry))
                removed_blobs += 1
        return removed_layers, removed_blobs
