"""Pod Security admission on a real agent: a hostPath of / or the host's namespaces are
refused where the default (baseline) holds, with every violation named; a namespace
labelled restricted wants hardened pods; kube-system and a namespace labelled privileged
take them; a privileged container is refused by name everywhere (this runtime cannot
run one as Kubernetes would); and a Deployment whose pods are refused reports it in its
ReplicaSet's events instead of looping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from waiting import until

from agentproc import AgentProcess

LABEL = "pod-security.kubernetes.io/enforce"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    a = AgentProcess(tmp_path_factory.mktemp("psa"), "psa").start()
    try:
        yield a
    finally:
        a.close()


def pod(name: str, **spec) -> dict:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def test_baseline_by_default_and_what_the_labels_allow(agent: AgentProcess) -> None:
    root = pod("root", volumes=[{"name": "root", "hostPath": {"path": "/"}}], hostPID=True)
    with agent.client() as http:
        r = http.post("/api/v1/namespaces/default/pods", json=root)
        assert r.status_code == 403, r.text
        assert r.json()["message"] == ('pods "root" is forbidden: violates PodSecurity '
                                       '"baseline:latest": host namespaces (hostPID=true), '
                                       'hostPath volumes (volume "root")')
        assert http.post("/api/v1/namespaces/kube-system/pods", json=root).status_code == 201
        for ns, level in (("open", "privileged"), ("strict", "restricted")):
            r = http.post("/api/v1/namespaces", json={"metadata": {"name": ns,
                                                                   "labels": {LABEL: level}}})
            assert r.status_code == 201
        assert http.post("/api/v1/namespaces/open/pods", json=root).status_code == 201
        r = http.post("/api/v1/namespaces/strict/pods", json=pod("plain"))
        message = r.json()["message"]
        assert r.status_code == 403 and '"restricted:latest"' in message
        assert "allowPrivilegeEscalation != false" in message and "runAsNonRoot != true" in message
        hardened = pod("hardened", securityContext={
            "runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            containers=[{"name": "c", "image": "busybox", "securityContext": {
                "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}])
        assert http.post("/api/v1/namespaces/strict/pods", json=hardened).status_code == 201


def test_a_privileged_container_is_refused_by_name_everywhere(agent: AgentProcess) -> None:
    p = pod("priv", containers=[{"name": "c", "image": "busybox",
                                 "securityContext": {"privileged": True}}])
    with agent.client() as http:
        r = http.post("/api/v1/namespaces/kube-system/pods", json=p)
        assert r.status_code == 422, r.text
        causes = r.json()["details"]["causes"]
        assert causes[0]["field"] == "spec.containers[0].securityContext.privileged"
        assert "not supported by this runtime" in causes[0]["message"]


def test_a_deployment_whose_pods_are_refused_says_so(agent: AgentProcess) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hostnet"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "h"}},
                       "template": {"metadata": {"labels": {"app": "h"}},
                                    "spec": {"hostNetwork": True, "containers": [
                                        {"name": "c", "image": "busybox"}]}}}}
    with agent.client() as http:
        assert http.post("/apis/apps/v1/namespaces/default/deployments",
                         json=deploy).status_code == 201

        def refused() -> bool:
            events = http.get("/api/v1/namespaces/default/events").json()["items"]
            return any(e["reason"] == "FailedCreate" and "violates PodSecurity" in e["message"]
                       for e in events)
        until(refused, 20, "a FailedCreate event naming Pod Security")
        assert http.get("/api/v1/namespaces/default/pods",
                        params={"labelSelector": "app=h"}).json()["items"] == []
    assert agent.proc is not None and agent.proc.poll() is None
