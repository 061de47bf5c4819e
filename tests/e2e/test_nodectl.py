"""nodectl against a running agent, as a user drives kubectl."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentproc import AgentProcess

SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"


class Nodectl:
    def __init__(self, agent: AgentProcess) -> None:
        self.env = {**os.environ, **agent.nodectl_env()}

    def __call__(self, *args: str, stdin: str | None = None,
                 ok: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", *args], env=self.env,
                           input=stdin, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in p.stderr, p.stderr
        if ok:
            assert p.returncode == 0, f"nodectl {' '.join(args)} failed:\n{p.stderr}"
        else:
            assert p.returncode != 0, f"nodectl {' '.join(args)} should have failed"
        return p


@pytest.fixture(scope="module")
def nodectl(shared_agent: AgentProcess) -> Nodectl:
    return Nodectl(shared_agent)


def test_seed_manifests_apply_and_show_back(nodectl):
    nodectl("create", "namespace", "seeds")
    out = nodectl("-n", "seeds", "apply", "-f", str(SEEDS / "valid")).stdout
    for line in ["pod/posts created", "deployment.apps/posts-depl created",
                 "replicaset.apps/kubia created", "service/kubia created",
                 "endpoints/google created", "ingress.networking.k8s.io/ingress created",
                 "persistentvolume/mongodb created", "persistentvolumeclaim/mongodb created",
                 "deployment.apps/nginx created"]:
        assert line in out.splitlines()
    # Applying the same files again changes nothing.
    again = nodectl("-n", "seeds", "apply", "-f", str(SEEDS / "valid")).stdout.splitlines()
    assert again and all(line.endswith(" unchanged") for line in again), again
    table = nodectl("-n", "seeds", "get", "all").stdout
    assert "pod/kubia-manual" in table and "service/kubia" in table
    assert "deployment.apps/nginx" in table and "replicaset.apps/kubia" in table
    svc = nodectl("-n", "seeds", "get", "svc").stdout.splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    extweb = next(line for line in svc if line.startswith("extweb "))
    assert "NodePort" in extweb and "80:30123/TCP" in extweb
    pods = nodectl("-n", "seeds", "get", "po").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    desc = nodectl("-n", "seeds", "describe", "pod", "kubia-liveness").stdout
    assert "Liveness:" in desc and "http-get http://:http/fail delay=15s timeout=3s" in desc
    desc = nodectl("-n", "seeds", "describe", "svc", "google").stdout
    assert "Endpoints:" in desc and "172.217.174.206:80" in desc
    ing = nodectl("-n", "seeds", "get", "ingress", "ingress", "-o", "yaml").stdout
    assert "apiVersion: networking.k8s.io/v1" in ing and "name: user-api" in ing
    nodectl("delete", "namespace", "seeds")


@pytest.mark.parametrize("path", sorted((SEEDS / "invalid").glob("*.yaml")), ids=lambda p: p.name)
def test_invalid_seed_manifests_name_the_problem(nodectl, path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    p = nodectl("apply", "-f", str(path), ok=False)
    assert expected in p.stderr, p.stderr
    assert p.stdout == ""


def test_apply_configures_and_prunes_fields(nodectl, tmp_path):
    nodectl("create", "namespace", "apply-test")
    m = tmp_path / "cm.yaml"
    m.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  labels: {a: '1', b: '2'}"
                 "\ndata: {x: '1'}\n")
    assert nodectl("-n", "apply-test", "apply", "-f", str(m)).stdout == "configmap/cfg created\n"
    nodectl("-n", "apply-test", "label", "cm", "cfg", "by-hand=yes")
    m.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  labels: {a: '1'}\n"
                 "data: {x: '2'}\n")
    assert nodectl("-n", "apply-test", "apply", "-f", str(m)).stdout == "configmap/cfg configured\n"
    got = nodectl("-n", "apply-test", "get", "cm", "cfg", "-o", "json").stdout
    import json
    obj = json.loads(got)
    assert obj["data"] == {"x": "2"}
    # b was removed from the manifest; the label set by hand is not the manifest's to remove.
    assert obj["metadata"]["labels"] == {"a": "1", "by-hand": "yes"}
    nodectl("delete", "ns", "apply-test")


def test_stdin_multi_document_json_and_yaml(nodectl):
    docs = ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}\n---\n'
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pw: hunter2}\n")
    out = nodectl("apply", "-f", "-", stdin=docs).stdout
    assert out.splitlines() == ["configmap/j created", "secret/s created"]
    assert "aHVudGVyMg==" in nodectl("get", "secret", "s", "-o", "yaml").stdout
    assert nodectl("delete", "-f", "-", stdin=docs).stdout.splitlines() == [
        'configmap "j" deleted', 'secret "s" deleted']


def test_get_output_forms_and_selectors(nodectl):
    nodectl("create", "namespace", "sel")
    for name, labels in [("a", "app=kubia,tier=web"), ("b", "app=kubia,tier=db"),
                         ("c", "app=other")]:
        nodectl("-n", "sel", "create", "-f", "-", stdin=(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"))
        nodectl("-n", "sel", "label", "cm", name, *labels.split(","))
    names = nodectl("-n", "sel", "get", "cm", "-l", "app=kubia,tier in (web,api)", "-o",
                    "name").stdout
    assert names == "configmap/a\n"
    names = nodectl("-n", "sel", "get", "cm", "-l", "!tier", "-o", "name").stdout
    assert "configmap/c" in names and "configmap/a" not in names
    by_field = nodectl("-n", "sel", "get", "cm", "--field-selector", "metadata.name=b",
                       "-o", "name").stdout
    assert by_field == "configmap/b\n"
    wide = nodectl("get", "cm", "-A", "--show-labels").stdout.splitlines()
    assert wide[0].split()[0] == "NAMESPACE" and wide[0].split()[-1] == "LABELS"
    none = nodectl("-n", "sel", "get", "pods")
    assert none.stderr.strip() == "No resources found in sel namespace."
    assert nodectl("-n", "sel", "delete", "cm", "-l", "app=kubia").stdout.count("deleted") == 2
    # Every namespace holds kube-root-ca.crt too (the controller makes it again), as in
    # Kubernetes.
    assert sorted(nodectl("-n", "sel", "delete", "cm", "--all").stdout.splitlines()) == \
        ['configmap "c" deleted', 'configmap "kube-root-ca.crt" deleted']
    nodectl("delete", "ns", "sel")


def test_errors_read_like_kubectl(nodectl):
    p = nodectl("get", "pod", "nope", ok=False)
    assert p.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    p = nodectl("get", "widgets", ok=False)
    assert p.stderr.strip() == 'error: the server doesn\'t have a resource type "widgets"'
    nodectl("create", "namespace", "dup")
    p = nodectl("create", "namespace", "dup", ok=False)
    assert p.stderr.strip() == 'Error from server (AlreadyExists): namespaces "dup" already exists'
    p = nodectl("-n", "dup", "apply", "-f", "-", ok=False, stdin=(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p2}\nspec:\n  containers:\n"
        "  - {name: c, image: x, ports: [{containerPort: 70000}]}\n"))
    assert p.stderr.strip() == ('The Pod "p2" is invalid: spec.containers[0].ports[0].containerPort:'
                                ' Invalid value: 70000: must be between 1 and 65535, inclusive')
    p = nodectl("label", "ns", "dup", "x=1")
    p = nodectl("label", "ns", "dup", "x=2", ok=False)
    assert "'x' already has a value (1), and --overwrite is false" in p.stderr
    nodectl("label", "ns", "dup", "x=2", "--overwrite")
    nodectl("delete", "ns", "dup")
    down = subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", "--server",
                           "http://127.0.0.1:9", "get", "pods"], capture_output=True, text=True)
    assert down.returncode == 1
    assert down.stderr.strip() == ("The connection to the server 127.0.0.1:9 was refused - did "
                                   "you specify the right host or port?")


def test_scale_annotate_version_and_api_resources(nodectl):
    nodectl("create", "namespace", "misc")
    nodectl("-n", "misc", "apply", "-f", str(SEEDS / "valid" / "nginx-deployment.yaml"))
    assert nodectl("-n", "misc", "scale", "deploy", "nginx", "--replicas=5").stdout == \
        "deployment.apps/nginx scaled\n"
    row = nodectl("-n", "misc", "get", "deploy", "nginx").stdout.splitlines()[1].split()
    assert row[:2] == ["nginx", "0/5"]
    assert nodectl("-n", "misc", "annotate", "deploy/nginx", "team=web").stdout == \
        "deployment.apps/nginx annotated\n"
    assert "team: web" in nodectl("-n", "misc", "get", "deploy/nginx", "-o", "yaml").stdout
    nodectl("-n", "misc", "annotate", "deploy/nginx", "team-")
    assert "team: web" not in nodectl("-n", "misc", "get", "deploy/nginx", "-o", "yaml").stdout
    v = nodectl("version").stdout
    assert v.startswith("Client Version: v") and "Server Version: v1." in v
    res = nodectl("api-resources").stdout
    assert any(line.split()[:3] == ["deployments", "deploy", "apps/v1"] for line in res.splitlines())
    nodectl("delete", "ns", "misc")


def test_watch_prints_changes(nodectl, shared_agent):
    nodectl("create", "namespace", "watched")
    proc = subprocess.Popen([sys.executable, "-m", "nodeagent.cli.nodectl", "-n", "watched",
                             "get", "cm", "--watch", "-o", "name"], env=nodectl.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import time
        time.sleep(1.0)
        for n in ("w1", "w2"):
            nodectl("-n", "watched", "create", "-f", "-", stdin=(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\n"))
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        # What the namespace held when the watch began (its CA bundle), then the new ones.
        assert lines == ["configmap/kube-root-ca.crt", "configmap/w1", "configmap/w2"]
    finally:
        proc.kill()
        proc.wait()
    nodectl("delete", "ns", "watched")


def test_get_watch_prints_the_servers_rows(nodectl):
    """get -w asks for Tables, as kubectl does: the list's header, then a row for each
    change, in the server's columns."""
    nodectl("create", "namespace", "watched")
    watch = subprocess.Popen([sys.executable, "-m", "nodeagent.cli.nodectl", "-n", "watched",
                              "get", "cm", "-w"], env=nodectl.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # listed and watching
        nodectl("-n", "watched", "create", "-f", "-", stdin=(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seen}\ndata: {a: '1'}\n"))
        time.sleep(1.5)
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=10)
    assert "Traceback" not in err, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"], out
    assert any(line.split()[:2] == ["seen", "1"] for line in lines[1:]), out
    nodectl("delete", "ns", "watched")
