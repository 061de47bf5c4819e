"""The API's front door, tried as a stranger, a user, a joining node and an attacker
would, against a real agent on loopback: HTTPS only; nothing but health, version and the
CA bundle without credentials; a certificate of another CA does not get through the
handshake; tokens from the token file, bootstrap tokens and client certificates each
authenticate who they say; joining hands out exactly what the token's role allows; and
real kubectl and nodectl work with the admin kubeconfig."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from agentproc import AgentProcess, kubectl_binary
from nodeagent import pki
from nodeagent.clusterpki import AgentPki

PUBLIC = ("/healthz", "/livez", "/readyz", "/version", "/cacerts")
PRIVATE = ("/api", "/apis", "/api/v1/namespaces", "/api/v1/namespaces/kube-system/secrets",
           "/raft", "/replica/stream", "/gossip/members", "/openapi/v2", "/metrics",
           "/apis/metrics.k8s.io/v1beta1/nodes", "/nope")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    work = tmp_path_factory.mktemp("secured")
    tokens = work / "tokens.csv"
    tokens.write_text('s3cr3t-admin,carol,1001,"system:masters"\n'
                      "s3cr3t-plain,dave,1002\n"
                      "# a comment\n")
    a = AgentProcess(work / "agent", "secured", "--token-auth-file", str(tokens)).start()
    try:
        yield a
    finally:
        a.close()


def _client_tls(agent: AgentProcess, cert: Path, key: Path) -> ssl.SSLContext:
    return pki.client_context(agent.data_dir / "pki" / "ca.crt", cert, key)


def test_the_api_speaks_only_https_and_keys_are_private(secured: AgentProcess) -> None:
    assert secured.url.startswith("https://127.0.0.1:")
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port is not served
        httpx.get(secured.url.replace("https://", "http://") + "/healthz", timeout=5)
    for path in (secured.data_dir / "pki").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (secured.data_dir / "pki").stat().st_mode & 0o777 == 0o700
    assert secured.kubeconfig.stat().st_mode & 0o777 == 0o600


def test_without_credentials_only_health_version_and_the_ca_answer(secured: AgentProcess) -> None:
    with secured.anonymous() as anon:
        for path in PUBLIC:
            assert anon.get(path).status_code == 200, path
        assert anon.get("/cacerts").content == (secured.data_dir / "pki" / "ca.crt").read_bytes()
        for path in PRIVATE:
            r = anon.get(path)
            assert r.status_code == 401 and r.json()["reason"] == "Unauthorized", (path, r.text)
        for method, path in (("POST", "/api/v1/namespaces/default/configmaps"),
                             ("POST", "/join"), ("POST", "/raft/hello"),
                             ("DELETE", "/api/v1/namespaces/default"), ("POST", "/healthz")):
            assert anon.request(method, path, json={}).status_code == 401, (method, path)
        for bad in ("Bearer nope", "Bearer", "Basic YWRtaW46YWRtaW4=", "Bearer " + "x" * 20000,
                    "bearer abcdef.0123456789abcdef"):
            r = anon.get("/api/v1/namespaces", headers={"Authorization": bad})
            assert r.status_code in (401, 431), (bad, r.status_code)
    # exec over WebSocket: refused with 401 before anything runs
    url = "wss" + secured.url.removeprefix("https") + \
        "/api/v1/namespaces/default/pods/x/exec?command=sh"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(secured.data_dir / "pki" / "ca.crt")
    with pytest.raises(InvalidStatus) as info:
        connect(url, ssl=ctx, subprotocols=["v4.channel.k8s.io"], open_timeout=5)  # type: ignore[list-item]
    assert info.value.response.status_code == 401
    # attach and port-forward (kubectl's SPDY tunnel, a subprotocol with a '/') likewise
    base = "wss" + secured.url.removeprefix("https") + "/api/v1/namespaces/default/pods/x/"
    for sub, protocol in (("attach", "v5.channel.k8s.io"),
                          ("portforward", "SPDY/3.1+portforward.k8s.io")):
        with pytest.raises(InvalidStatus) as info:
            connect(base + sub, ssl=ctx, open_timeout=5,
                    additional_headers={"Sec-WebSocket-Protocol": protocol})
        assert info.value.response.status_code == 401, sub


def test_a_certificate_of_another_ca_fails_the_handshake(secured: AgentProcess,
                                                         tmp_path: Path) -> None:
    other = pki.make_ca()
    forged = pki.issue_client(other, "admin", ("system:masters",))
    pki.save(forged, tmp_path / "f.crt", tmp_path / "f.key")
    with httpx.Client(verify=_client_tls(secured, tmp_path / "f.crt", tmp_path / "f.key"),
                      timeout=5) as c, pytest.raises(httpx.HTTPError):
        c.get(secured.url + "/api/v1/namespaces")
    # The agent's own serving certificate is no client certificate (its usage is serverAuth).
    with httpx.Client(verify=_client_tls(secured, secured.data_dir / "pki" / "server.crt",
                                         secured.data_dir / "pki" / "server.key"),
                      timeout=5) as c, pytest.raises(httpx.HTTPError):
        c.get(secured.url + "/api/v1/namespaces")
    # A client that trusts another CA does not trust this server.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=other.cert_pem.decode())
    with pytest.raises(httpx.HTTPError):
        httpx.get(secured.url + "/healthz", verify=ctx, timeout=5)
    assert secured.proc is not None and secured.proc.poll() is None  # none of it hurt


def test_client_certificates_and_static_tokens_say_who_is_calling(secured: AgentProcess,
                                                                  tmp_path: Path) -> None:
    ca = AgentPki(secured.data_dir).ca()
    alice = pki.issue_client(ca, "alice", ("developers",))
    pki.save(alice, tmp_path / "a.crt", tmp_path / "a.key")
    with httpx.Client(base_url=secured.url, timeout=5,
                      verify=_client_tls(secured, tmp_path / "a.crt", tmp_path / "a.key")) as c:
        assert c.get("/replica/stream").status_code == 403  # the store is no user's to copy
        r = c.get("/api/v1/namespaces/default/secrets")
        assert r.status_code == 403, r.text
        assert r.json()["message"] == ('secrets is forbidden: User "alice" cannot list resource '
                                       '"secrets" in API group "" in the namespace "default"')
    with secured.anonymous() as anon:
        ok = anon.get("/api/v1/namespaces", headers={"Authorization": "Bearer s3cr3t-admin"})
        assert ok.status_code == 200
        r = anon.get("/api/v1/namespaces", headers={"Authorization": "Bearer s3cr3t-plain"})
        assert r.status_code == 403 and 'User "dave"' in r.json()["message"]
        r = anon.post("/join", json={}, headers={"Authorization": "Bearer s3cr3t-admin"})
        assert r.status_code == 403  # the admin is not joining: no token role


def _token(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodeagent", "token", *args, "--socket",
                           str(agent.socket)], capture_output=True, text=True, timeout=30)


def test_a_node_token_joins_a_node_and_nothing_more(secured: AgentProcess,
                                                    tmp_path: Path) -> None:
    from nodeagent.join import JoinError, join, parse_join_token
    made = _token(secured, "create", "--ttl", "10m", "--description", "for the test")
    assert made.returncode == 0, made.stderr
    token = parse_join_token(made.stdout.strip())
    assert token.ca_hash == AgentPki(secured.data_dir).ca_hash()
    listed = _token(secured, "list").stdout
    ident = token.bootstrap.split(".")[0]
    assert ident in listed and "for the test" in listed and token.bootstrap not in listed
    # The bootstrap token alone authenticates, and may do nothing but join.
    with secured.anonymous() as anon:
        bearer = {"Authorization": f"Bearer {token.bootstrap}"}
        r = anon.get("/api/v1/namespaces/kube-system/secrets", headers=bearer)
        assert r.status_code == 403 and f"system:bootstrap:{ident}" in r.text
    joined = AgentPki(tmp_path / "joined")
    keys = trio.run(join, joined, [secured.url], token, "worker-1", ["10.9.8.7"])
    assert keys == []  # this agent does not gossip
    assert not joined.is_signer()  # a node never sees the CA's key
    node = pki.load(joined.cert("node"), joined.key("node")).cert
    assert pki.identity(node) == ("system:node:worker-1", ("system:nodes",))
    # The node's certificate calls the API as the node; it may follow the replica stream,
    # but it is no Raft server to say hello among them.
    with httpx.Client(base_url=secured.url, timeout=5,
                      verify=_client_tls(secured, joined.cert("node"), joined.key("node"))) as c:
        assert c.get("/api/v1/namespaces").status_code == 200
        with c.stream("GET", "/replica/stream") as r:
            assert r.status_code == 200
        r = c.post("/raft/hello", json={"id": 9, "address": "127.0.0.1:1"})
        assert r.status_code == 403 and "only Raft servers" in r.json()["message"]
    # A token pinned to another CA is never sent: the join stops at the pin.
    wrong = parse_join_token(f"NA1-{'0' * 64}-{token.bootstrap}")
    with pytest.raises(JoinError, match="refusing to send it the token"):
        trio.run(join, AgentPki(tmp_path / "pinned"), [secured.url], wrong, "worker-2", [])
    # A CSR that is not a P-256 key's, names that are not names, addresses that are not
    # addresses: each refused by name.
    with secured.anonymous() as anon:
        bearer = {"Authorization": f"Bearer {token.bootstrap}"}
        for body, field in (({"name": "Bad Name!"}, "name"),
                            ({"name": "w", "csr": "junk"}, "csr"),
                            ({"name": "w", "csr": None}, "csr"), ([], "body")):
            r = anon.post("/join", json=body, headers=bearer)
            assert r.status_code == 400 and r.json()["message"].startswith(field), r.text
    # Revoked: it joins no one.
    assert _token(secured, "revoke", ident).returncode == 0
    with pytest.raises(JoinError, match="401"):
        trio.run(join, AgentPki(tmp_path / "late"), [secured.url], token, "worker-3", [])


def test_an_expired_token_and_a_server_token(secured: AgentProcess, tmp_path: Path) -> None:
    from nodeagent.join import JoinError, JoinToken, join, parse_join_token
    ca_hash = AgentPki(secured.data_dir).ca_hash()
    # A token whose Secret says it expired a minute ago (as kubeadm's are kept until cleaned).
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
              "metadata": {"name": "bootstrap-token-old000", "namespace": "kube-system"},
              "data": {k: base64.b64encode(v.encode()).decode() for k, v in {
                  "token-id": "old000", "token-secret": "0123456789abcdef",
                  "expiration": "2020-01-01T00:00:00Z", "usage-bootstrap-authentication": "true",
                  "auth-extra-groups": "system:bootstrappers:nodeagent:nodes"}.items()}}
    with secured.client() as c:
        assert c.post("/api/v1/namespaces/kube-system/secrets", json=secret).status_code == 201
    with pytest.raises(JoinError, match="401"):
        trio.run(join, AgentPki(tmp_path / "x"), [secured.url],
                 JoinToken(ca_hash, "old000.0123456789abcdef"), "w", [])
    made = _token(secured, "create", "--role", "server")
    server = AgentPki(tmp_path / "server")
    trio.run(join, server, [secured.url], parse_join_token(made.stdout.strip()), "s2", [])
    assert server.is_signer() and server.ca_hash() == ca_hash


def test_real_kubectl_and_nodectl_work_with_the_admin_kubeconfig(secured: AgentProcess,
                                                                 tmp_path: Path) -> None:
    kubectl = kubectl_binary()
    env = {**os.environ, "KUBECONFIG": str(secured.kubeconfig), "HOME": str(tmp_path)}
    env.pop("NODECTL_SERVER", None)
    out = subprocess.run([kubectl, "get", "namespaces", "-o", "name"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "namespace/kube-system" in out.stdout.split()
    out = subprocess.run([kubectl, "create", "configmap", "from-kubectl", "--from-literal=a=b",
                          "--dry-run=client", "-o", "yaml"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    nodectl = [sys.executable, "-m", "nodeagent.cli.nodectl"]
    out = subprocess.run([*nodectl, "get", "namespaces"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "kube-system" in out.stdout, out.stderr
    # --server over the kubeconfig keeps its credentials.
    url = secured.url.replace("127.0.0.1", "localhost")
    out = subprocess.run([*nodectl, "--server", url, "get", "ns", "default"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # No kubeconfig: the server says who may not.
    bare = {**os.environ, "HOME": str(tmp_path), "NODEAGENT_DATA_DIR": str(tmp_path / "none")}
    bare.pop("KUBECONFIG", None)
    bare.pop("NODECTL_SERVER", None)
    ca = tmp_path / "kc"
    import yaml
    ca.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {
            "server": secured.url,
            "certificate-authority": f"{secured.data_dir}/pki/ca.crt"}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "nobody"}}]}))
    out = subprocess.run([*nodectl, "--kubeconfig", str(ca), "get", "pods"], env=bare,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "Unauthorized" in out.stderr, out.stderr
    out = subprocess.run([*nodectl, "--kubeconfig", str(tmp_path / "missing"), "get", "pods"],
                         env=bare, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "missing: no such file" in out.stderr, out.stderr


def test_the_audit_log_says_who_did_what_with_what_answer(secured: AgentProcess) -> None:
    """JSON lines, 0600, no bodies: a Secret's value never reaches it."""
    import json
    with secured.client() as admin:
        r = admin.post("/api/v1/namespaces/default/secrets", json={
            "metadata": {"name": "audited"}, "stringData": {"k": "audit-me-not"}})
        assert r.status_code == 201
    with secured.anonymous() as anon:
        assert anon.get("/api/v1/namespaces/default/secrets/audited").status_code == 401
    log = secured.data_dir / "audit.log"
    assert log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    assert "audit-me-not" not in text and "/readyz" not in text
    events = [json.loads(line) for line in text.splitlines()]
    created = [e for e in events if e["verb"] == "create" and
               e.get("objectRef") == {"resource": "secrets", "namespace": "default",
                                      "apiVersion": "v1"}]
    assert created and created[-1]["user"]["username"] == "admin"
    assert created[-1]["responseStatus"]["code"] == 201
    refused = [e for e in events if e["requestURI"].endswith("/secrets/audited")
               and e["responseStatus"]["code"] == 401]
    assert refused and refused[-1]["user"]["username"] == "system:anonymous"


def test_a_noisy_client_gets_429_and_a_node_still_gets_through(secured: AgentProcess,
                                                               tmp_path: Path) -> None:
    from nodeagent.join import join, parse_join_token
    joined = AgentPki(tmp_path / "node")
    trio.run(join, joined, [secured.url], parse_join_token(secured.join_token().read_text()),
             "busy-node", [])
    node = httpx.Client(base_url=secured.url, timeout=5,
                        verify=_client_tls(secured, joined.cert("node"), joined.key("node")))
    codes = []
    with secured.anonymous() as anon, node:
        for _ in range(300):
            r = anon.get("/api/v1/namespaces", headers={"Authorization": "Bearer s3cr3t-plain"})
            codes.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
                assert r.json()["details"]["retryAfterSeconds"] >= 1
        assert codes.count(429) > 50, codes  # dave may do nothing, but is limited first
        assert node.get("/api/v1/nodes").status_code == 200  # its own budget
        assert anon.get("/healthz").status_code == 200  # health is never limited
