"""OCI bundle parsing: what the runtime cannot run is a SpecError naming the field."""

from __future__ import annotations

import json

import pytest

from runtime.spec import DEFAULT_CAPABILITIES, SpecError, load_bundle


def bundle(tmp_path, **overrides):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    cfg = {"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"},
           "root": {"path": "rootfs"}}
    for key, value in overrides.items():
        cfg[key] = value
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path)


def test_minimal_bundle_gets_docker_defaults(tmp_path):
    spec = load_bundle(bundle(tmp_path))
    assert spec.args == ("sh",)
    assert spec.rootfs == str(tmp_path / "rootfs")
    assert spec.capabilities == DEFAULT_CAPABILITIES
    assert set(spec.namespaces) == {"mount", "uts", "ipc", "pid", "cgroup"}
    assert "/proc/kcore" in spec.masked_paths and "/proc/sys" in spec.readonly_paths


def test_namespace_paths_are_joined_not_created(tmp_path):
    spec = load_bundle(bundle(tmp_path, linux={"namespaces": [
        {"type": "pid"}, {"type": "network", "path": "/run/netns/pod1"}]}))
    assert spec.namespaces == ("pid",)
    assert spec.join_namespaces == (("network", "/run/netns/pod1"),)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"process": {"cwd": "/"}}, "process.args"),
    ({"process": {"args": ["sh"], "cwd": "relative"}}, "process.cwd"),
    ({"process": {"args": "sh"}}, "process.args"),
    ({"root": {"path": "missing"}}, "root.path"),
    ({"linux": {"namespaces": [{"type": "time-travel"}]}}, "linux.namespaces[0].type"),
    ({"mounts": [{"destination": "relative"}]}, "mounts[0].destination"),
    ({"process": {"args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE"}]}}, "process.rlimits[0]"),
    ({"process": {"args": ["sh"], "capabilities": {"bounding": ["CAP_TELEPATHY"]}}},
     "process.capabilities.bounding[0]"),
    ({"hostname": 7}, "hostname"),
])
def test_bad_bundles_name_the_field(tmp_path, overrides, field):
    with pytest.raises(SpecError) as info:
        load_bundle(bundle(tmp_path, **overrides))
    assert info.value.field == field, str(info.value)


def test_missing_or_garbled_config(tmp_path):
    with pytest.raises(SpecError, match=r"config\.json: Not found"):
        load_bundle(str(tmp_path))
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(SpecError, match=r"config\.json: cannot be read"):
        load_bundle(str(tmp_path))
