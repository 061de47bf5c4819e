"""nodectl's pure parts: apply's three-way patch, manifest reading, kubectl's age format."""

from __future__ import annotations

import datetime as dt

from nodeagent.api.tables import age, to_table
from nodeagent.cli.manifests import LAST_APPLIED, apply_patch, last_applied, load, with_last_applied
from nodeagent.cli.printers import render_table


def test_apply_patch_removes_what_the_user_removed_and_keeps_the_rest():
    previous = {"metadata": {"labels": {"app": "a", "old": "x"}}, "spec": {"replicas": 3}}
    desired = {"metadata": {"labels": {"app": "a"}}, "spec": {"replicas": 2, "paused": True}}
    assert apply_patch(previous, desired) == {
        "metadata": {"labels": {"app": "a", "old": None}},
        "spec": {"replicas": 2, "paused": True}}


def test_apply_patch_leaves_what_admission_added_and_restores_what_drifted():
    """A pod applied again unchanged: its containers, to which admission added the token's
    mount and the defaults added a pull policy, are not sent (a list would be replaced
    whole, and a pod's spec may not change); a field someone else changed is set back."""
    manifest = {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}
    live = {"metadata": {"name": "p", "uid": "u"}, "spec": {
        "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "Always",
                        "volumeMounts": [{"name": "kube-api-access-x",
                                          "mountPath": "/var/run/secrets/kubernetes.io"}]}],
        "volumes": [{"name": "kube-api-access-x", "projected": {}}],
        "restartPolicy": "Never", "serviceAccountName": "default"}}
    assert apply_patch(manifest, manifest, live) == {}
    drifted = {**live, "spec": {**live["spec"], "restartPolicy": "Always"}}
    assert apply_patch(manifest, manifest, drifted) == {"spec": {"restartPolicy": "Never"}}
    changed = {**manifest, "spec": {**manifest["spec"], "containers": [
        {"name": "c", "image": "busybox:2"}]}}
    assert apply_patch(manifest, changed, live) == {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}


def test_last_applied_round_trip_excludes_itself():
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    annotated = with_last_applied(obj)
    assert last_applied(annotated) == obj
    again = with_last_applied(annotated)
    assert again["metadata"]["annotations"][LAST_APPLIED] == \
        annotated["metadata"]["annotations"][LAST_APPLIED]


def test_load_reports_every_bad_document_with_its_file(tmp_path):
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n"
                                     "apiVersion: v9\nkind: Pod\nmetadata: {name: q}\n")
    (tmp_path / "b.yml").write_text("kind: [unclosed\n")
    (tmp_path / "c.json").write_text('{"apiVersion": "v1", "kind": "List", "items": ['
                                     '{"apiVersion": "v1", "kind": "ConfigMap", '
                                     '"metadata": {"name": "c"}}]}')
    (tmp_path / "ignored.txt").write_text("not a manifest")
    manifests, errors = load((str(tmp_path),))
    assert [(m.res.kind, m.obj["metadata"]["name"]) for m in manifests] == [
        ("Pod", "p"), ("ConfigMap", "c")]
    assert len(errors) == 2
    assert 'no matches for kind "Pod" in version "v9"' in errors[0]
    assert "b.yml" in errors[1] and "yaml: line" in errors[1]
    _, missing = load((str(tmp_path / "nope.yaml"),))
    assert missing == [f'error: the path "{tmp_path / "nope.yaml"}" does not exist']


def test_age_reads_like_kubectl():
    now = dt.datetime(2026, 1, 10, 12, 0, 0, tzinfo=dt.UTC)

    def ago(**kw: int) -> str:
        return age((now - dt.timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ"), now)
    assert ago(seconds=45) == "45s"
    assert ago(minutes=5, seconds=12) == "5m12s"
    assert ago(minutes=30) == "30m"
    assert ago(hours=3, minutes=4) == "3h4m"
    assert ago(days=2, hours=3) == "2d3h"
    assert ago(days=400) == "400d"


def test_pod_table_has_kubectl_columns():
    """The server's Table (api/tables.py) as nodectl prints it, narrow and wide, with
    namespaces, kinds and labels."""
    pod = {"metadata": {"name": "kubia", "namespace": "web", "creationTimestamp": None,
                        "labels": {"app": "kubia"}},
           "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "node1"},
           "status": {"phase": "Running", "podIP": "10.244.1.5", "containerStatuses": [
               {"ready": True, "restartCount": 2}, {"ready": False, "restartCount": 1}]}}
    t = to_table("Pod", [pod], {})
    lines = render_table(t["columnDefinitions"], t["rows"]).splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split() == ["kubia", "1/2", "Running", "3", "<unknown>"]
    lines = render_table(t["columnDefinitions"], t["rows"], wide=True, with_namespace=True,
                         name_prefix="pod/", show_labels=True).splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"] and lines[0].split()[-1] == "LABELS"
    assert lines[1].split()[:2] == ["web", "pod/kubia"] and "10.244.1.5" in lines[1]
    assert lines[1].split()[-1] == "app=kubia"


def test_yaml_only_values_become_json_or_a_clear_error(tmp_path):
    (tmp_path / "d.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                                     "data: {since: 2024-01-01, 1: one}\n")
    manifests, errors = load((str(tmp_path / "d.yaml"),))
    assert errors == [] and manifests[0].obj["data"] == {"since": "2024-01-01", "1": "one"}
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                                     "data: {x: !!binary aGVsbG8=}\n")
    _, errors = load((str(tmp_path / "b.yaml"),))
    assert len(errors) == 1 and "b.yaml" in errors[0] and "bytes" in errors[0]
