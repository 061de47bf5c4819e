"""RBAC on a real agent, as users and their kubectl meet it: the default roles exist;
bindings grant exactly what their roles say, in the namespace they are in; aggregation
gives admin, edit and view the rules of the roles labelled for them; resourceNames
narrow a rule to named objects; 'kubectl auth can-i' and 'nodectl auth can-i' answer
from the same decisions, and so does a SubjectAccessReview asked by the admin."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from agentproc import AgentProcess, kubectl_binary
from nodeagent import pki
from nodeagent.clusterpki import AgentPki, kubeconfig

RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    a = AgentProcess(tmp_path_factory.mktemp("rbac"), "rbac").start()
    try:
        with a.client() as admin:
            for ns in ("team", "other"):
                assert admin.post("/api/v1/namespaces",
                                  json={"metadata": {"name": ns}}).status_code == 201
        yield a
    finally:
        a.close()


def _user(agent: AgentProcess, tmp: Path, name: str, *groups: str) -> Path:
    """A kubeconfig for a user whose client certificate the cluster's CA signed (as an
    administrator makes one for a colleague)."""
    ca = AgentPki(agent.data_dir).ca()
    leaf = pki.issue_client(ca, name, groups)
    path = tmp / f"{name}.kubeconfig"
    path.write_text(kubeconfig(agent.url, ca.cert_pem, leaf.cert_pem, leaf.key_pem, user=name))
    return path


def _http(agent: AgentProcess, kubeconfig_path: Path) -> httpx.Client:
    from nodeagent.api.kubeconfig import load
    return httpx.Client(base_url=agent.url, timeout=10,
                        verify=load(str(kubeconfig_path)).ssl_context())


def _binding(kind: str, name: str, role_kind: str, role: str, subject: dict) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [subject]}


def _tools(kubeconfig_path: Path, tmp: Path) -> tuple[list[str], list[str], dict[str, str]]:
    kubectl = kubectl_binary()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig_path), "HOME": str(tmp)}
    env.pop("NODECTL_SERVER", None)
    return [kubectl], [sys.executable, "-m", "nodeagent.cli.nodectl"], env


def test_the_default_roles_and_bindings_exist(agent: AgentProcess) -> None:
    with agent.client() as admin:
        names = {r["metadata"]["name"] for r in admin.get(f"{RBAC}/clusterroles").json()["items"]}
        assert {"cluster-admin", "admin", "edit", "view", "system:basic-user",
                "system:discovery"} <= names
        crb = admin.get(f"{RBAC}/clusterrolebindings/cluster-admin").json()
        assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "system:masters"}]


def test_a_role_binding_grants_its_role_in_its_namespace_only(agent: AgentProcess,
                                                             tmp_path: Path) -> None:
    alice = _user(agent, tmp_path, "alice", "devs")
    with agent.client() as admin:
        r = admin.post(f"{RBAC}/namespaces/team/rolebindings", json=_binding(
            "RoleBinding", "devs-edit", "ClusterRole", "edit",
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"}))
        assert r.status_code == 201, r.text
    with _http(agent, alice) as c:
        pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
        assert c.post("/api/v1/namespaces/team/pods", json=pod).status_code == 201
        assert c.get("/api/v1/namespaces/team/secrets").status_code == 200  # edit reads them
        r = c.post("/api/v1/namespaces/other/pods", json=pod)
        assert r.status_code == 403 and 'in the namespace "other"' in r.json()["message"]
        assert c.get("/api/v1/pods").status_code == 403  # all namespaces: cluster scope
        assert c.get("/api/v1/nodes").status_code == 403
        # edit may not grant itself more (roles and bindings are admin's)
        r = c.post(f"{RBAC}/namespaces/team/rolebindings", json=_binding(
            "RoleBinding", "more", "ClusterRole", "admin",
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}))
        assert r.status_code == 403
    kubectl, nodectl, env = _tools(alice, tmp_path)
    for tool in (kubectl, nodectl):
        yes = subprocess.run([*tool, "auth", "can-i", "create", "pods", "-n", "team"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert (yes.returncode, yes.stdout.strip()) == (0, "yes"), (tool, yes.stderr)
        no = subprocess.run([*tool, "auth", "can-i", "create", "pods", "-n", "other"], env=env,
                            capture_output=True, text=True, timeout=60)
        assert no.returncode == 1 and no.stdout.strip().startswith("no"), (tool, no.stderr)
        sub = subprocess.run([*tool, "auth", "can-i", "create", "pods/exec", "-n", "team"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert sub.stdout.strip() == "yes", (tool, sub.stdout, sub.stderr)
    who = subprocess.run([*kubectl, "auth", "whoami"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert who.returncode == 0 and "alice" in who.stdout and "devs" in who.stdout, who.stderr
    listed = subprocess.run([*kubectl, "auth", "can-i", "--list", "-n", "team"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "pods/exec" in listed.stdout, listed.stderr


def test_view_reads_but_not_secrets_and_resource_names_narrow(agent: AgentProcess,
                                                              tmp_path: Path) -> None:
    bob = _user(agent, tmp_path, "bob")
    with agent.client() as admin:
        for obj in (
            _binding("ClusterRoleBinding", "bob-view", "ClusterRole", "view",
                     {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}),
        ):
            assert admin.post(f"{RBAC}/clusterrolebindings", json=obj).status_code == 201
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "one-secret"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"],
                           "resourceNames": ["shared"], "verbs": ["get"]}]}
        assert admin.post(f"{RBAC}/namespaces/other/roles", json=role).status_code == 201
        assert admin.post(f"{RBAC}/namespaces/other/rolebindings", json=_binding(
            "RoleBinding", "bob-one", "Role", "one-secret",
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"})
        ).status_code == 201
        for name in ("shared", "private"):
            assert admin.post("/api/v1/namespaces/other/secrets", json={
                "metadata": {"name": name}, "stringData": {"k": "v"}}).status_code == 201
    with _http(agent, bob) as c:
        assert c.get("/api/v1/pods").status_code == 200  # view, everywhere
        assert c.get("/api/v1/namespaces/team/secrets").status_code == 403
        assert c.get("/api/v1/namespaces/other/secrets/shared").status_code == 200
        assert c.get("/api/v1/namespaces/other/secrets/private").status_code == 403
        assert c.get("/api/v1/namespaces/other/secrets").status_code == 403  # a list has no name
        assert c.delete("/api/v1/namespaces/team/pods/p").status_code == 403


def test_aggregation_and_subject_access_reviews(agent: AgentProcess, tmp_path: Path) -> None:
    carol = _user(agent, tmp_path, "carol")
    with agent.client() as admin:
        assert admin.post(f"{RBAC}/namespaces/team/rolebindings", json=_binding(
            "RoleBinding", "carol-view", "ClusterRole", "view",
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"})
        ).status_code == 201

        def review(spec: dict) -> bool:
            r = admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json={
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": spec})
            assert r.status_code == 201, r.text
            return bool(r.json()["status"]["allowed"])
        nodes = {"user": "carol", "resourceAttributes": {"verb": "list", "resource": "nodes"}}
        assert not review(nodes)
        # A ClusterRole labelled to aggregate into view adds its rules to view.
        extra = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "view-nodes", "labels": {
                     "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
                 "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}
        assert admin.post(f"{RBAC}/clusterroles", json=extra).status_code == 201
        in_team = {"user": "carol", "resourceAttributes": {"namespace": "team", "verb": "list",
                                                           "resource": "nodes"}}
        assert review(in_team)  # through the RoleBinding, in its namespace
        assert not review(nodes)  # but nodes at the cluster scope: no ClusterRoleBinding
        assert review({"groups": ["system:masters"],
                       "resourceAttributes": {"verb": "delete", "resource": "nodes"}})
        bad = admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                         json={"spec": {"resourceAttributes": {"verb": 3}, "user": "x"}})
        assert bad.status_code == 400 and "verb" in bad.json()["message"]
    with _http(agent, carol) as c:  # a user may ask about itself, not about others
        r = c.post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                   json={"spec": {"user": "x", "resourceAttributes": {"verb": "get"}}})
        assert r.status_code == 403
        r = c.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json={
            "spec": {"resourceAttributes": {"namespace": "team", "verb": "list",
                                            "resource": "nodes"}}})
        assert r.status_code == 201 and r.json()["status"]["allowed"] is True
    # Bad RBAC objects are refused by field, never stored.
    with agent.client() as admin:
        r = admin.post(f"{RBAC}/clusterrolebindings", json=_binding(
            "ClusterRoleBinding", "bad", "Role", "x",
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Robot", "name": "r"}))
        assert r.status_code == 422
        fields = {c["field"] for c in r.json()["details"]["causes"]}
        assert {"roleRef.kind", "subjects[0].kind"} <= fields
        crb = admin.get(f"{RBAC}/clusterrolebindings/cluster-admin").json()
        crb["roleRef"]["name"] = "view"
        r = admin.put(f"{RBAC}/clusterrolebindings/cluster-admin", json=crb)
        assert r.status_code == 422 and "roleRef" in r.text
    assert yaml.safe_load(carol.read_text())["users"][0]["name"] == "carol"


def test_pod_metrics_are_read_as_resources_not_as_a_path(agent: AgentProcess,
                                                         tmp_path: Path) -> None:
    """metrics.k8s.io was a path every authenticated user could GET (system:discovery
    allows /apis/*): it is pods and nodes in that group now, which view grants through
    system:aggregated-metrics-reader, and nobody else reads."""
    erin, dave = _user(agent, tmp_path, "erin"), _user(agent, tmp_path, "dave")
    with agent.client() as admin:
        assert admin.post(f"{RBAC}/namespaces/team/rolebindings", json=_binding(
            "RoleBinding", "erin-view", "ClusterRole", "view",
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "erin"})
        ).status_code == 201
        assert admin.get(f"{RBAC}/clusterroles/system:aggregated-metrics-reader"
                         ).status_code == 200
    team = "/apis/metrics.k8s.io/v1beta1/namespaces/team/pods"
    with _http(agent, erin) as c:
        # Allowed: this agent runs no pods, so the answer is 503 rather than metrics.
        assert c.get(team).status_code == 503
        assert c.get("/apis/metrics.k8s.io/v1beta1/namespaces/other/pods").status_code == 403
        assert c.get("/apis/metrics.k8s.io/v1beta1/nodes").status_code == 403
        assert c.get("/apis/metrics.k8s.io/v1beta1").status_code != 403  # discovery
    with _http(agent, dave) as c:
        r = c.get(team)
        assert r.status_code == 403, r.text
        assert 'cannot list resource "pods" in API group "metrics.k8s.io"' in r.json()["message"]
