"""Pod volumes on a real filesystem: emptyDir (and on tmpfs with its size limit), hostPath
type checks, configMap and secret files written and updated atomically, the mounts a
container gets, and teardown that leaves nothing mounted."""

from __future__ import annotations

import base64
import os
import socket
import stat

import pytest
from waiting import needs_root

from nodeagent.podmanager.volumes import VolumeError, Volumes, write_atomically

ROOT = os.geteuid() == 0
OBJECTS: dict = {}


def lookup(kind: str, ns: str, name: str):
    return OBJECTS.get((kind, ns, name))


def pod(*volumes: dict, uid: str = "uid-1") -> dict:
    return {"metadata": {"uid": uid, "namespace": "default", "name": "p"},
            "spec": {"volumes": list(volumes)}}


@pytest.fixture
def vols(tmp_path):
    v = Volumes(str(tmp_path / "pods"), lookup)
    yield v
    v.teardown("uid-1")
    assert not os.path.exists(tmp_path / "pods" / "uid-1")


def test_empty_dir_is_one_directory_for_all_containers(vols):
    paths = vols.setup(pod({"name": "html", "emptyDir": {}}))
    mounts_a = Volumes.mounts({"volumeMounts": [{"name": "html", "mountPath": "/var/htdocs"}]}, paths)
    mounts_b = Volumes.mounts({"volumeMounts": [{"name": "html", "mountPath": "/usr/share/nginx/html",
                                                 "readOnly": True}]}, paths)
    assert mounts_a[0].source == mounts_b[0].source == paths["html"]
    assert mounts_b[0].options == ("rbind", "ro")
    with pytest.raises(VolumeError, match="no volume of that name"):
        Volumes.mounts({"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, paths)
    with pytest.raises(VolumeError, match="must be a relative path"):
        Volumes.mounts({"volumeMounts": [{"name": "html", "mountPath": "/x", "subPath": "../etc"}]},
                       paths)


@needs_root("mounting a tmpfs")
def test_memory_empty_dir_is_a_sized_tmpfs_and_teardown_unmounts(vols):
    paths = vols.setup(pod({"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}))
    assert os.path.ismount(paths["cache"])
    st = os.statvfs(paths["cache"])
    assert st.f_blocks * st.f_frsize == 8 * 1024 * 1024
    vols.setup(pod({"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}))
    vols.teardown("uid-1")
    assert not os.path.exists(paths["cache"])


def test_host_path_types(vols, tmp_path):
    made = tmp_path / "made"
    vols.setup(pod({"name": "d", "hostPath": {"path": str(made), "type": "DirectoryOrCreate"}}))
    assert made.is_dir()
    vols.setup(pod({"name": "f", "hostPath": {"path": str(made / "f.txt"), "type": "FileOrCreate"}}))
    assert (made / "f.txt").is_file()
    with pytest.raises(VolumeError, match=f"hostPath type check failed: {made} is not a file"):
        vols.setup(pod({"name": "x", "hostPath": {"path": str(made), "type": "File"}}))
    with pytest.raises(VolumeError, match="is not a directory"):
        vols.setup(pod({"name": "x", "hostPath": {"path": str(tmp_path / "absent"),
                                                  "type": "Directory"}}))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s.sock"))
    try:
        vols.setup(pod({"name": "s", "hostPath": {"path": str(tmp_path / "s.sock"), "type": "Socket"}}))
    finally:
        sock.close()
    with pytest.raises(VolumeError, match="not supported"):
        vols.setup(pod({"name": "v", "gcePersistentDisk": {"pdName": "x"}}))


def test_config_map_files_items_modes_and_atomic_update(vols):
    OBJECTS[("ConfigMap", "default", "fortune-config")] = {"data": {"sleep-interval": "25",
                                                                     "nginx.conf": "server {}"}}
    vol = {"name": "config", "configMap": {"name": "fortune-config", "defaultMode": 0o600, "items": [
        {"key": "sleep-interval", "path": "interval"},
        {"key": "nginx.conf", "path": "conf/nginx.conf", "mode": 0o644}]}}
    path = vols.setup(pod(vol))["config"]
    assert open(os.path.join(path, "interval")).read() == "25"
    assert open(os.path.join(path, "conf/nginx.conf")).read() == "server {}"
    assert os.path.islink(os.path.join(path, "interval"))  # through ..data, as kubelet
    assert stat.S_IMODE(os.stat(os.path.join(path, "interval")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(path, "conf/nginx.conf")).st_mode) == 0o644
    first = os.readlink(os.path.join(path, "..data"))
    OBJECTS[("ConfigMap", "default", "fortune-config")] = {"data": {"sleep-interval": "5",
                                                                     "nginx.conf": "server {}"}}
    vols.setup(pod(vol))
    assert open(os.path.join(path, "interval")).read() == "5"
    assert os.readlink(os.path.join(path, "..data")) != first
    assert not os.path.exists(os.path.join(path, first))  # the old generation is gone
    # Unchanged content: no new generation.
    now = os.readlink(os.path.join(path, "..data"))
    vols.setup(pod(vol))
    assert os.readlink(os.path.join(path, "..data")) == now
    with pytest.raises(VolumeError, match="non-existent config key: nope"):
        vols.setup(pod({"name": "c", "configMap": {"name": "fortune-config", "items": [
            {"key": "nope", "path": "x"}]}}))
    with pytest.raises(VolumeError, match='configmap "missing" not found'):
        vols.setup(pod({"name": "m", "configMap": {"name": "missing"}}))
    empty = vols.setup(pod({"name": "o", "configMap": {"name": "missing", "optional": True}}))["o"]
    assert [n for n in os.listdir(empty) if not n.startswith("..")] == []


def test_secret_files_decoded_and_on_tmpfs_when_root(vols):
    OBJECTS[("Secret", "default", "tls")] = {"data": {"https.key": base64.b64encode(b"KEY").decode()}}
    path = vols.setup(pod({"name": "certs", "secret": {"secretName": "tls"}}))["certs"]
    assert open(os.path.join(path, "https.key"), "rb").read() == b"KEY"
    assert os.path.ismount(path) == ROOT


def test_removed_keys_disappear(tmp_path):
    target = tmp_path / "v"
    target.mkdir()
    write_atomically(str(target), {"a": b"1", "b": b"2"}, {}, 0o644)
    write_atomically(str(target), {"a": b"1"}, {}, 0o644)
    assert sorted(n for n in os.listdir(target) if not n.startswith("..")) == ["a"]


@pytest.mark.parametrize("items", [
    [{"key": "a", "path": "../../../escaped"}],
    [{"key": "a", "path": "/tmp/absolute-escape"}],
    [{"key": "a", "path": "ok", "mode": 0o4755}],
    [{"key": "a", "path": "..data/x"}],
])
def test_config_map_files_never_leave_the_volume_even_from_a_planted_spec(vols, tmp_path, items):
    OBJECTS[("ConfigMap", "default", "cm")] = {"data": {"a": "payload"}}
    with pytest.raises(VolumeError, match=r"relative path inside|mode"):
        vols.setup(pod({"name": "cfg", "configMap": {"name": "cm", "items": items}}))
    volume = os.path.join("pods", "uid-1", "volumes")
    assert {p for p in _tree(tmp_path) if not p.startswith(volume)} <= {"pods", "pods/uid-1"}
    assert not os.path.exists("/tmp/absolute-escape")


def test_a_swapped_data_link_is_never_followed_out_of_the_volume(vols, tmp_path):
    OBJECTS[("ConfigMap", "default", "cm")] = {"data": {"a": "1"}}
    paths = vols.setup(pod({"name": "cfg", "configMap": {"name": "cm"}}))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("mine")
    link = os.path.join(paths["cfg"], "..data")
    os.unlink(link)
    os.symlink(str(victim), link)  # what a container could do to a writable volume
    OBJECTS[("ConfigMap", "default", "cm")] = {"data": {"a": "2"}}
    vols.setup(pod({"name": "cfg", "configMap": {"name": "cm"}}))
    assert (victim / "keep").read_text() == "mine"
    with open(os.path.join(paths["cfg"], "a")) as f:
        assert f.read() == "2"


def test_projected_volumes_are_mounted_read_only_and_sub_paths_stay_inside(vols, tmp_path):
    OBJECTS[("ConfigMap", "default", "cm")] = {"data": {"a": "1"}}
    spec = pod({"name": "cfg", "configMap": {"name": "cm"}}, {"name": "scratch", "emptyDir": {}})
    paths = vols.setup(spec)
    from nodeagent.podmanager.volumes import read_only_volumes
    (m,) = Volumes.mounts({"volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}, paths,
                          read_only_volumes(spec))
    assert "ro" in m.options
    os.symlink("/", os.path.join(paths["scratch"], "host"))  # planted by a container
    with pytest.raises(VolumeError, match="out of the volume"):
        Volumes.mounts({"volumeMounts": [{"name": "scratch", "mountPath": "/x",
                                          "subPath": "host"}]}, paths)


def _tree(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, dirs, names in os.walk(root)
            for n in dirs + names}
