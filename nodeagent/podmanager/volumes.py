"""Pod volumes on the node: emptyDir, hostPath, configMap, secret, downwardAPI and
projected (ServiceAccount tokens among them), and the mounts that put them into
containers.

Each volume of a pod lives under ``<pods dir>/<pod uid>/volumes/<kind>/<name>``
(kubelet's layout), shared by all the pod's containers, so two containers of
one pod see each other's files (the seeds' fortune example).  ``emptyDir``
with ``medium: Memory`` is a tmpfs limited to its sizeLimit.  ``hostPath``
checks its ``type`` as kubelet does.  ConfigMap and Secret volumes are written
the way kubelet's AtomicWriter writes them: the files go into a fresh
timestamped directory, ``..data`` is a symlink to it switched with one
rename, and each visible name is a symlink through ``..data``; a container
reading while the object changes sees the old set or the new set, never a
mix.  Secrets are on a tmpfs when the process may mount one, so they never
touch the disk.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import stat
import time
from collections.abc import Callable
from typing import Any

from nodeagent.objects.pod import local_path_errors, mode_errors
from nodeagent.objects.quantity import parse_quantity
from nodeagent.objects.validation import Path
from nodeagent.podmanager.env import EnvError, downward_file
from runtime import syscalls as sc
from runtime.spec import Mount

__all__ = ["VolumeError", "Volumes"]

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Obj | None]
KINDS = {"emptyDir": "kubernetes.io~empty-dir", "hostPath": "kubernetes.io~host-path",
         "configMap": "kubernetes.io~configmap", "secret": "kubernetes.io~secret",
         "downwardAPI": "kubernetes.io~downward-api", "projected": "kubernetes.io~projected"}
# (pod, serviceAccountToken source) -> the token, or None with the reason
Tokens = Callable[[Obj, Obj], tuple[str | None, str]]


class VolumeError(Exception):
    """The volume cannot be set up (kubelet reports FailedMount)."""


def _size_bytes(limit: str | None) -> int | None:
    return int(parse_quantity(limit).value) if limit else None


def _check_host_path(path: str, kind: str) -> None:
    """hostPath ``type``: create what the *OrCreate types create, check the others."""
    if kind in ("", None):
        return
    if kind == "DirectoryOrCreate":
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if kind == "FileOrCreate":
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
            with open(path, "a"):
                pass
            os.chmod(path, 0o644)
        return
    checks = {"Directory": (stat.S_ISDIR, "a directory"), "File": (stat.S_ISREG, "a file"),
              "Socket": (stat.S_ISSOCK, "a socket file"),
              "CharDevice": (stat.S_ISCHR, "a character device"),
              "BlockDevice": (stat.S_ISBLK, "a block device")}
    if kind not in checks:
        raise VolumeError(f"hostPath type {kind!r} is not supported")
    test, what = checks[kind]
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise VolumeError(f"hostPath type check failed: {path} is not {what}") from exc
    if not test(mode):
        raise VolumeError(f"hostPath type check failed: {path} is not {what}")


def _projected(kind: str, obj: Obj, items: list[Obj] | None) -> dict[str, bytes]:
    """file path (relative) -> content, from a ConfigMap's or Secret's data and items."""
    data: dict[str, bytes] = {}
    if kind == "configMap":
        data.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    else:
        data.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
    if not items:
        return data
    out = {}
    for item in items:
        if item["key"] not in data:
            raise VolumeError(f"configmap references non-existent config key: {item['key']}"
                              if kind == "configMap" else
                              f"references non-existent secret key: {item['key']}")
        out[item["path"]] = data[item["key"]]
    return out


def _checked_files(files: dict[str, bytes], modes: dict[str, int],
                   default_mode: int) -> None:
    """Raises VolumeError for a path that could leave the volume or a mode beyond 0777:
    the API refuses both (the same rules), but a spec planted in the store must not reach
    the disk."""
    for path in files:
        if local_path_errors(path, Path("items").child("path")):
            raise VolumeError(f"items path {path!r} must be a relative path inside the volume")
    for mode in [*modes.values(), default_mode]:
        if mode_errors(mode, Path("mode")):
            raise VolumeError(f"mode {mode!r} must be a number between 0 and 0777")


def _own_entry(target: str, name: str) -> str | None:
    """The entry ``name`` of the volume's own directory if it is one the writer made
    (``..<timestamp>``), else None: a link there is never followed out of the volume."""
    if "/" in name or not name.startswith("..") or name in ("..", "..data", "..data_tmp"):
        return None
    return os.path.join(target, name)


def write_atomically(target: str, files: dict[str, bytes], modes: dict[str, int],
                     default_mode: int) -> bool:
    """kubelet's AtomicWriter; returns False if the content was already there.  Raises
    VolumeError for a path or mode that _checked_files refuses."""
    _checked_files(files, modes, default_mode)
    current = os.path.join(target, "..data")
    old_dir = _own_entry(target, os.readlink(current)) if os.path.islink(current) else None
    if old_dir is not None and os.path.isdir(old_dir) and not os.path.islink(old_dir):
        old = old_dir
        same = set(files) == _walk(old) and all(
            _read(os.path.join(old, p)) == content and
            stat.S_IMODE(os.stat(os.path.join(old, p)).st_mode) == modes.get(p, default_mode)
            for p, content in files.items())
        if same:
            return False
    stamp = "..{}_{}".format(time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime()), time.monotonic_ns())
    fresh = os.path.join(target, stamp)
    os.makedirs(fresh, mode=0o755)
    for path, content in files.items():
        full = os.path.join(fresh, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        # O_EXCL|O_NOFOLLOW: a fresh file in a fresh directory, never something else's.
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as f:
            f.write(content)
            os.fchmod(f.fileno(), modes.get(path, default_mode))
    tmp = os.path.join(target, "..data_tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(stamp, tmp)
    os.rename(tmp, current)  # the switch: one rename
    for top in {p.split("/", 1)[0] for p in files}:
        link = os.path.join(target, top)
        if not os.path.islink(link):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            os.symlink(os.path.join("..data", top), link)
    for name in os.listdir(target):  # names no longer projected
        if not name.startswith("..") and name not in {p.split("/", 1)[0] for p in files}:
            os.unlink(os.path.join(target, name))
    if old_dir is not None and not os.path.islink(old_dir):
        shutil.rmtree(old_dir, ignore_errors=True)
    return True


def _walk(root: str) -> set[str]:
    out = set()
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return out


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _sub_path(volume: str, root: str, sub: str) -> str:
    """``root/sub`` with every link resolved, refused unless it is still inside ``root``:
    a container can plant a link in its own volume (kubelet's subPath CVE-2017-1002101)."""
    if os.path.isabs(sub) or ".." in sub.split("/"):
        raise VolumeError(f"volumeMount {volume!r}: subPath {sub!r} must be a relative path "
                          "without '..'")
    real_root = os.path.realpath(root)
    source = os.path.realpath(os.path.join(root, sub))
    if source != real_root and not source.startswith(real_root + "/"):
        raise VolumeError(f"volumeMount {volume!r}: subPath {sub!r} leads out of the volume")
    if not os.path.exists(source):
        os.makedirs(source, exist_ok=True)
    return source


def read_only_volumes(pod: Obj) -> frozenset[str]:
    """The pod's volumes that containers only ever read (the agent projects them)."""
    return frozenset(v["name"] for v in (pod.get("spec") or {}).get("volumes") or []
                     if "configMap" in v or "secret" in v or "downwardAPI" in v
                     or "projected" in v)


def _downward(pod: Obj, items: list[Obj] | None) -> tuple[dict[str, bytes], dict[str, int]]:
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for item in items or []:
        if item.get("resourceFieldRef"):
            raise VolumeError(f"downwardAPI item {item.get('path')!r}: resourceFieldRef is not "
                              "supported in volumes; use it in env")
        try:
            files[item["path"]] = downward_file(pod, (item.get("fieldRef") or {}).get(
                "fieldPath", "")).encode()
        except EnvError as exc:
            raise VolumeError(f"downwardAPI item {item.get('path')!r}: {exc}") from None
        if item.get("mode") is not None:
            modes[item["path"]] = item["mode"]
    return files, modes


class Volumes:
    def __init__(self, pods_dir: str, lookup: Lookup, tokens: Tokens | None = None) -> None:
        self.pods_dir = pods_dir
        self.lookup = lookup
        self.tokens = tokens  # ServiceAccount tokens, as the pod manager holds them

    def path(self, pod_uid: str, kind: str, name: str) -> str:
        return os.path.join(self.pods_dir, pod_uid, "volumes", KINDS[kind], name)

    def setup(self, pod: Obj) -> dict[str, str]:
        """Make (or refresh) every volume of the pod; returns volume name -> host path."""
        uid, ns = pod["metadata"]["uid"], pod["metadata"]["namespace"]
        out: dict[str, str] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            name = vol["name"]
            if "hostPath" in vol:
                hp = vol["hostPath"]
                _check_host_path(hp["path"], hp.get("type") or "")
                out[name] = hp["path"]
            elif "emptyDir" in vol:
                ed = vol["emptyDir"] or {}
                path = self.path(uid, "emptyDir", name)
                os.makedirs(path, mode=0o777, exist_ok=True)
                if ed.get("medium") == "Memory" and not os.path.ismount(path):
                    size = _size_bytes(ed.get("sizeLimit"))
                    self._tmpfs(path, size)
                out[name] = path
            elif "configMap" in vol or "secret" in vol:
                kind = "configMap" if "configMap" in vol else "secret"
                src = vol[kind] or {}
                obj_name = src.get("name") if kind == "configMap" else src.get("secretName")
                obj = self.lookup("ConfigMap" if kind == "configMap" else "Secret", ns,
                                  obj_name or "")
                path = self.path(uid, kind, name)
                if obj is None and not src.get("optional"):
                    raise VolumeError(f'{kind.lower()} "{obj_name}" not found')
                os.makedirs(path, mode=0o755, exist_ok=True)
                if kind == "secret" and not os.path.ismount(path):
                    with contextlib.suppress(OSError):  # not root: an ordinary directory
                        self._tmpfs(path, None)
                items = src.get("items")
                files = _projected(kind, obj, items) if obj is not None else {}
                modes = {i["path"]: i["mode"] for i in items or [] if i.get("mode") is not None}
                write_atomically(path, files, modes, src.get("defaultMode", 0o644))
                out[name] = path
            elif "projected" in vol or "downwardAPI" in vol:
                kind = "projected" if "projected" in vol else "downwardAPI"
                src = vol[kind] or {}
                files, modes = self._projected(pod, src) if kind == "projected" else \
                    _downward(pod, src.get("items"))
                path = self.path(uid, kind, name)
                os.makedirs(path, mode=0o755, exist_ok=True)
                if kind == "projected" and not os.path.ismount(path):
                    with contextlib.suppress(OSError):  # tokens and secrets: never on disk
                        self._tmpfs(path, None)
                mode = src.get("defaultMode")
                write_atomically(path, files, modes, 0o644 if mode is None else mode)
                out[name] = path
            else:
                kinds = sorted(set(vol) - {"name"})
                raise VolumeError(f"volume {name!r}: {', '.join(kinds) or 'no source'} volumes "
                                  "are not supported")
        return out

    def _projected(self, pod: Obj, src: Obj) -> tuple[dict[str, bytes], dict[str, int]]:
        """The files of a projected volume, from each of its sources."""
        ns = pod["metadata"]["namespace"]
        files: dict[str, bytes] = {}
        modes: dict[str, int] = {}
        for source in src.get("sources") or []:
            if source.get("serviceAccountToken") is not None:
                token_src = source["serviceAccountToken"]
                if self.tokens is None:
                    raise VolumeError("this node cannot get ServiceAccount tokens")
                token, why = self.tokens(pod, token_src)
                if token is None:
                    raise VolumeError(f"failed to fetch token: {why}")
                files[token_src["path"]] = token.encode()
            elif source.get("downwardAPI") is not None:
                more, more_modes = _downward(pod, source["downwardAPI"].get("items"))
                files.update(more)
                modes.update(more_modes)
            else:
                kind = "configMap" if source.get("configMap") is not None else "secret"
                ref = source.get(kind) or {}
                obj = self.lookup("ConfigMap" if kind == "configMap" else "Secret", ns,
                                  ref.get("name") or "")
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise VolumeError(f'{kind.lower()} "{ref.get("name")}" not found')
                files.update(_projected(kind, obj, ref.get("items")))
                modes.update({i["path"]: i["mode"] for i in ref.get("items") or []
                              if i.get("mode") is not None})
        return files, modes

    @staticmethod
    def _tmpfs(path: str, size: int | None) -> None:
        sc.mount("tmpfs", path, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV,
                 f"mode=0777{f',size={size}' if size else ''}")

    def teardown(self, pod_uid: str) -> None:
        """Unmount and remove every volume of the pod (host paths are left alone)."""
        root = os.path.join(self.pods_dir, pod_uid)
        if not os.path.isdir(root):
            return
        for dirpath, dirs, _names in os.walk(root, topdown=False):
            for d in dirs:
                full = os.path.join(dirpath, d)
                if os.path.ismount(full):
                    sc.umount2(full, sc.MNT_DETACH)
        shutil.rmtree(root, ignore_errors=True)

    @staticmethod
    def mounts(container: Obj, paths: dict[str, str],
               read_only: frozenset[str] = frozenset()) -> list[Mount]:
        """The container's volumeMounts as bind mounts of the volumes' host paths.  The
        volumes in ``read_only`` (configMap and secret: the agent writes them, and a
        container able to swap their links could turn its writes outside) are mounted
        read-only whatever the mount asks, as kubelet does."""
        out = []
        for vm in container.get("volumeMounts") or []:
            source = paths.get(vm["name"])
            if source is None:
                raise VolumeError(f"volumeMount {vm['name']!r}: no volume of that name")
            if vm.get("subPath"):
                source = _sub_path(vm["name"], source, vm["subPath"])
            ro = vm.get("readOnly") or vm["name"] in read_only
            options = ("rbind", "ro") if ro else ("rbind",)
            out.append(Mount(vm["mountPath"], "bind", source, options))
        return out
