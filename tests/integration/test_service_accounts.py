"""ServiceAccounts against a real agent: every namespace gets its ``default`` account and
the cluster's CA bundle; pods get the token volume mounted; TokenRequest signs bound
tokens that authenticate as the account, which RBAC then decides for; a token stops
working once its pod or its account is deleted or it expires; a node asks only for its
own pods' tokens.  The ``kubernetes`` Service leads to the API server."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
import trio
from waiting import until

from agentproc import AgentProcess
from nodeagent import pki
from nodeagent.api.satokens import key_id, signing_key
from nodeagent.clusterpki import AgentPki
from nodeagent.join import join, parse_join_token

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _pod(name: str, node: str = "", **spec: object) -> dict:
    return {"metadata": {"name": name},
            "spec": {**({"nodeName": node} if node else {}),
                     "containers": [{"name": "c", "image": "busybox"}], **spec}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    agent = AgentProcess(tmp_path_factory.mktemp("sa") / "server", "server").start()
    try:
        yield agent
    finally:
        agent.close()


@pytest.fixture(scope="module")
def admin(server: AgentProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _token(admin: httpx.Client, ns: str, sa: str, **spec: object) -> httpx.Response:
    return admin.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                      json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                            "spec": spec})


def _as(server: AgentProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url,
                        verify=ssl.create_default_context(cafile=server.data_dir / "pki" / "ca.crt"),
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_every_namespace_gets_a_default_account_and_the_ca_bundle(admin: httpx.Client,
                                                                 server: AgentProcess) -> None:
    assert admin.post("/api/v1/namespaces", json={"metadata": {"name": "team"}}).status_code == 201
    until(lambda: admin.get("/api/v1/namespaces/team/serviceaccounts/default").status_code == 200,
          10, "the default ServiceAccount of a new namespace")
    until(lambda: admin.get("/api/v1/namespaces/team/configmaps/kube-root-ca.crt"
                            ).status_code == 200, 10, "kube-root-ca.crt in a new namespace")
    ca = admin.get("/api/v1/namespaces/team/configmaps/kube-root-ca.crt").json()["data"]["ca.crt"]
    assert ca == (server.data_dir / "pki" / "ca.crt").read_text()
    names = [i["metadata"]["name"] for i in admin.get("/api/v1/serviceaccounts").json()["items"]]
    assert names.count("default") >= 4  # default, kube-system, kube-public, team, ...


def test_the_kubernetes_service_leads_to_the_api_server(admin: httpx.Client,
                                                        server: AgentProcess) -> None:
    until(lambda: admin.get("/api/v1/namespaces/default/endpoints/kubernetes").status_code == 200,
          10, "the kubernetes Endpoints")
    svc = admin.get("/api/v1/namespaces/default/services/kubernetes").json()
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443
    port = int(server.url.rsplit(":", 1)[1])
    assert svc["spec"]["ports"][0]["targetPort"] == port
    ep = admin.get("/api/v1/namespaces/default/endpoints/kubernetes").json()
    assert ep["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]
    assert ep["subsets"][0]["ports"][0]["port"] == port


def test_a_pod_gets_its_token_volume_and_a_missing_account_is_refused(
        admin: httpx.Client) -> None:
    r = admin.post("/api/v1/namespaces/default/pods", json=_pod("mounted"))
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    assert spec["serviceAccountName"] == "default"
    vol = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert len(vol) == 1
    sources = vol[0]["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert {"name": vol[0]["name"], "readOnly": True, "mountPath": MOUNT} in \
        spec["containers"][0]["volumeMounts"]
    r = admin.post("/api/v1/namespaces/default/pods",
                   json=_pod("opted-out", automountServiceAccountToken=False))
    assert r.status_code == 201 and not r.json()["spec"].get("volumes")
    r = admin.post("/api/v1/namespaces/default/pods", json=_pod("ghost", serviceAccountName="nope"))
    assert r.status_code == 403
    assert 'serviceaccount "nope" not found' in r.json()["message"]


def test_a_token_authenticates_as_its_account_and_rbac_decides(admin: httpx.Client,
                                                               server: AgentProcess) -> None:
    assert admin.post("/api/v1/namespaces/default/serviceaccounts",
                      json={"metadata": {"name": "reader"}}).status_code == 201
    assert admin.post("/api/v1/namespaces/default/pods",
                      json=_pod("reader-pod", serviceAccountName="reader")).status_code == 201
    uid = admin.get("/api/v1/namespaces/default/pods/reader-pod").json()["metadata"]["uid"]
    r = _token(admin, "default", "reader", expirationSeconds=600,
               boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "reader-pod",
                               "uid": uid})
    assert r.status_code == 201, r.text
    token = r.json()["status"]["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:default:reader"
    assert claims["kubernetes.io"]["pod"] == {"name": "reader-pod", "uid": uid}
    assert claims["exp"] - claims["iat"] == 600
    with _as(server, token) as sa:
        who = sa.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                      json={"apiVersion": "authentication.k8s.io/v1",
                            "kind": "SelfSubjectReview"}).json()["status"]["userInfo"]
        assert who["username"] == "system:serviceaccount:default:reader"
        assert "system:serviceaccounts:default" in who["groups"]
        assert who["extra"]["authentication.kubernetes.io/pod-name"] == ["reader-pod"]
        assert sa.get("/api/v1/namespaces/default/pods").status_code == 403
        assert admin.post("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
                          json={"metadata": {"name": "reader-view"},
                                "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                            "kind": "ClusterRole", "name": "view"},
                                "subjects": [{"kind": "ServiceAccount", "name": "reader",
                                              "namespace": "default"}]}).status_code == 201
        until(lambda: sa.get("/api/v1/namespaces/default/pods").status_code == 200, 10,
              "the RoleBinding to take effect")
        assert sa.get("/api/v1/namespaces/kube-system/pods").status_code == 403
        assert sa.get("/api/v1/namespaces/default/secrets").status_code == 403
        # Its pod deleted: the token is dead at once.
        assert admin.delete("/api/v1/namespaces/default/pods/reader-pod",
                            params={"gracePeriodSeconds": 0}).status_code == 200
        until(lambda: sa.get("/api/v1/namespaces/default/pods").status_code == 401, 10,
              "the token to die with its pod")


def test_a_token_dies_with_its_account_and_a_forged_or_expired_one_is_refused(
        admin: httpx.Client, server: AgentProcess) -> None:
    assert admin.post("/api/v1/namespaces/default/serviceaccounts",
                      json={"metadata": {"name": "doomed"}}).status_code == 201
    token = _token(admin, "default", "doomed").json()["status"]["token"]
    with _as(server, token) as sa:
        assert sa.get("/version").status_code == 200
        assert sa.get("/api").status_code == 200  # discovery, as any authenticated user
        assert admin.delete("/api/v1/namespaces/default/serviceaccounts/doomed").status_code == 200
        assert sa.get("/api").status_code == 401
        # Made again under the same name: a new uid, and the old token stays dead.
        assert admin.post("/api/v1/namespaces/default/serviceaccounts",
                          json={"metadata": {"name": "doomed"}}).status_code == 201
        assert sa.get("/api").status_code == 401
    fresh = _token(admin, "default", "doomed").json()["status"]["token"]
    header, payload, signature = fresh.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    with _as(server, fresh) as sa:
        assert sa.get("/api").status_code == 200
    # Signed with the server's own key (from its data dir), but an hour old.
    key = signing_key(AgentPki(server.data_dir).ca().key)
    now = int(time.time())
    expired = jwt.encode({**claims, "iat": now - 3600, "nbf": now - 3600, "exp": now - 1}, key,
                         algorithm="ES256", headers={"kid": key_id(key.public_key())})
    other_key = pki.make_ca().key
    foreign = jwt.encode(claims, other_key, algorithm="ES256")
    unsigned = jwt.encode(claims, "", algorithm="none")
    forged = ".".join([header, base64.urlsafe_b64encode(json.dumps(
        {**claims, "sub": "system:serviceaccount:kube-system:default"}).encode())
        .rstrip(b"=").decode(), signature])
    hs256 = jwt.encode(claims, "secret", algorithm="HS256")
    for bad in (forged, expired, foreign, unsigned, hs256, fresh[:-4] + "AAAA"):
        with _as(server, bad) as c:
            assert c.get("/api").status_code == 401


def test_token_request_checks_its_fields(admin: httpx.Client) -> None:
    for spec, field in (({"expirationSeconds": 60}, "spec.expirationSeconds"),
                        ({"expirationSeconds": "long"}, "spec.expirationSeconds"),
                        ({"audiences": "api"}, "spec.audiences"),
                        ({"boundObjectRef": {"kind": "Node", "name": "x"}},
                         "spec.boundObjectRef.kind")):
        r = _token(admin, "default", "default", **spec)
        assert r.status_code == 422 and field in r.json()["message"], r.text
    assert _token(admin, "default", "nobody").status_code == 404
    r = _token(admin, "default", "default",
               boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "no-such-pod"})
    assert r.status_code == 404
    long = _token(admin, "default", "default", expirationSeconds=10**9).json()
    assert long["spec"]["expirationSeconds"] == 48 * 3600
    exp = dt.datetime.fromisoformat(long["status"]["expirationTimestamp"].replace("Z", "+00:00"))
    assert exp - dt.datetime.now(dt.UTC) < dt.timedelta(hours=48, minutes=1)
    # Another audience: not a token for this API.
    other = _token(admin, "default", "default", audiences=["vault"]).json()["status"]["token"]
    assert httpx.get(f"{admin.base_url}/api", headers={"Authorization": f"Bearer {other}"},
                     verify=False).status_code == 401


def test_a_node_asks_only_for_its_own_pods_tokens(admin: httpx.Client, server: AgentProcess,
                                                  tmp_path_factory: pytest.TempPathFactory
                                                  ) -> None:
    work = tmp_path_factory.mktemp("sa-node")
    agent_pki = AgentPki(work / "node-a")
    trio.run(join, agent_pki, [server.url], parse_join_token(server.join_token().read_text()),
             "node-a", [])
    ctx = pki.client_context(agent_pki.ca_cert, agent_pki.cert("node"), agent_pki.key("node"))
    for name, node in (("on-a", "node-a"), ("on-b", "node-b")):
        assert admin.post("/api/v1/namespaces/default/pods", json=_pod(name, node)
                          ).status_code == 201
    with httpx.Client(base_url=server.url, verify=ctx, timeout=10) as node_a:
        def ask(pod: str | None) -> httpx.Response:
            ref = {"kind": "Pod", "apiVersion": "v1", "name": pod} if pod else None
            return _token(node_a, "default", "default",
                          **({"boundObjectRef": ref} if ref else {}))
        assert ask("on-a").status_code == 201
        assert ask("on-b").status_code == 403
        assert ask(None).status_code == 403
        assert _token(node_a, "kube-system", "default").status_code == 403


def test_kubectl_create_token(server: AgentProcess) -> None:
    """Real kubectl, which sends its TokenRequest as protobuf."""
    p = server.kubectl("create", "token", "default", "--duration", "20m", "--audience", "vault")
    assert p.returncode == 0, p.stderr
    claims = jwt.decode(p.stdout.strip(), options={"verify_signature": False})
    assert claims["aud"] == ["vault"] and claims["exp"] - claims["iat"] == 1200
    assert claims["sub"] == "system:serviceaccount:default:default"
    p = server.kubectl("create", "token", "nobody")
    assert p.returncode != 0 and 'serviceaccounts "nobody" not found' in p.stderr, p.stderr
