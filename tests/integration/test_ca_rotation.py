"""The cluster's CA replaced with both CAs trusted in between, on two Raft servers and a
node that joined with a token -- and certificate renewal under load: while every server
re-issues its certificates, a client making request after request (new connections among
them) sees no failure."""

from __future__ import annotations

import base64
import functools
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from test_raft_node import free_ports
from waiting import until

from agentproc import AgentProcess, cluster_ca
from nodeagent import pki
from nodeagent.api.kubeconfig import load
from nodeagent.carotation import SIGNED, TRUSTED
from nodeagent.clusterpki import AgentPki


def _ctx(kubeconfig_text: str, path: Path) -> ssl.SSLContext:
    path.write_text(kubeconfig_text)
    path.chmod(0o600)
    ctx = load(str(path)).ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    return ctx


def _hashes(pem: bytes) -> list[str]:
    from cryptography import x509
    return [pki.ca_hash(c) for c in x509.load_pem_x509_certificates(pem)]


def _trusts(agent: AgentProcess, hashes: list[str]) -> bool:
    """The agent trusts exactly these CAs, the signing one first."""
    return _hashes((agent.data_dir / "pki" / "ca.crt").read_bytes()) == hashes


def rotate(server: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodeagent", "certs", "rotate-ca", *args,
                           "--socket", str(server.socket)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict]:
    ports = free_ports(2)
    servers = {}
    for i in (1, 2):
        other = 3 - i
        servers[i] = AgentProcess(tmp_path / f"s{i}", f"s{i}", "--no-fsync", "--raft-id", str(i),
                                  "--raft-listen", f"127.0.0.1:{ports[i - 1]}", "--raft-peers",
                                  f"{other}=127.0.0.1:{ports[other - 1]}", "--raft-tick-ms", "20",
                                  ca=cluster_ca(tmp_path))
    procs = list(servers.values())
    try:
        for s in procs:
            s.start()
        admin = httpx.Client(verify=servers[1].tls(), timeout=10)
        until(lambda: admin.get(f"{servers[1].url}/api/v1/namespaces/kube-system/configmaps/"
                                "kube-root-ca.crt").status_code == 200, 30, "the coordinator")
        node = AgentProcess(tmp_path / "n", "node-c", "--no-fsync", "--servers",
                            f"{servers[1].url},{servers[2].url}", "--join-token-file",
                            str(servers[1].join_token()))
        procs.append(node)
        node.start()
        yield {"servers": servers, "node": node, "admin": admin}
        admin.close()
    finally:
        for p in procs:
            p.close()


def test_the_ca_is_replaced_with_both_trusted_in_between(cluster: dict, tmp_path: Path) -> None:
    s1, s2 = cluster["servers"][1], cluster["servers"][2]
    node, admin = cluster["node"], cluster["admin"]
    old = _hashes((s1.data_dir / "pki" / "ca.crt").read_bytes())
    assert len(old) == 1
    # The node's Node (its agent runs no pods here, so the admin makes it), and one that
    # never answers: the rotation stops after its first step while that one lags.
    for name in ("node-c", "ghost"):
        assert admin.post(f"{s1.url}/api/v1/nodes", json={"metadata": {"name": name}}
                          ).status_code == 201

    def annotation(name: str, key: str) -> str:
        node_obj = admin.get(f"{s1.url}/api/v1/nodes/{name}").json()
        return (node_obj["metadata"].get("annotations") or {}).get(key, "")
    until(lambda: annotation("node-c", SIGNED) == old[0], 20, "node-c saying its CA")
    until(lambda: admin.get(f"{s1.url}/api/v1/namespaces/default/serviceaccounts/default"
                            ).status_code == 200, 20, "the default ServiceAccount")
    old_token = admin.post(f"{s1.url}/api/v1/namespaces/default/serviceaccounts/default/token",
                           json={"spec": {}}).json()["status"]["token"]
    old_admin = s1.kubeconfig.read_text()

    # 1. Every server and the node trust both; the old CA still signs.
    first = rotate(s1, "--timeout", "3")
    assert first.returncode == 2 and "phase: trusting" in first.stdout, first.stdout + first.stderr
    assert "ghost" in first.stdout
    both = _hashes((s1.data_dir / "pki" / "ca.crt").read_bytes())
    assert both[0] == old[0] and len(both) == 2
    new = both[1]
    for agent in (s2, node):
        until(functools.partial(_trusts, agent, both), 20, f"{agent.name} trusting both CAs")
    until(lambda: annotation("node-c", TRUSTED) == ",".join(both), 20, "node-c saying so")
    ca_data = yaml.safe_load(s1.kubeconfig.read_text())["clusters"][0]["cluster"][
        "certificate-authority-data"]
    assert _hashes(base64.b64decode(ca_data)) == both  # the kubeconfig trusts both too
    trusting_admin = s1.kubeconfig.read_text()  # the kubeconfig an operator hands out now

    # 2. The switch, under load: a client trusting both (as kube-root-ca.crt tells it)
    #    makes request after request, a new connection for every other one.
    load_ctx = _ctx(trusting_admin, tmp_path / "trusting.kubeconfig")
    failures: list[str] = []
    done = threading.Event()
    counts = {"ok": 0}

    def hammer() -> None:
        with httpx.Client(verify=load_ctx, timeout=10) as keep:
            i = 0
            while not done.is_set():
                i += 1
                for s in (s1, s2):
                    try:
                        if i % 2:
                            r = keep.get(f"{s.url}/api/v1/namespaces/default/configmaps")
                        else:
                            with httpx.Client(verify=load_ctx, timeout=10) as fresh:
                                r = fresh.get(f"{s.url}/api/v1/namespaces/default/configmaps")
                        if r.status_code != 200:
                            failures.append(f"{s.name}: HTTP {r.status_code}")
                        else:
                            counts["ok"] += 1
                    except httpx.HTTPError as exc:
                        failures.append(f"{s.name}: {exc!r}")
    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        time.sleep(1)
        assert admin.delete(f"{s1.url}/api/v1/nodes/ghost").status_code == 200
        second = rotate(s1)
        time.sleep(1)
    finally:
        done.set()
        thread.join(30)
    assert second.returncode == 0 and "phase: switched" in second.stdout, \
        second.stdout + second.stderr
    assert not failures, failures[:5]
    assert counts["ok"] > 20, counts
    for agent in (s1, s2):
        assert _hashes((agent.data_dir / "pki" / "ca.crt").read_bytes()) == [new, old[0]]
        for leaf in ("server", "node", "raft"):
            assert AgentPki(agent.data_dir).leaf_ca_hash(leaf) == new, (agent.name, leaf)
    until(lambda: annotation("node-c", SIGNED) == new, 30, "node-c renewed by the new CA")
    new_admin = s1.kubeconfig.read_text()
    assert new_admin != trusting_admin
    # In between, the old admin certificate and the old token still work (both trusted).
    with httpx.Client(verify=_ctx(trusting_admin, tmp_path / "old.kubeconfig"),
                      timeout=10) as c:
        assert c.get(f"{s2.url}/api/v1/nodes").status_code == 200
    with s1.anonymous() as c:  # the token alone, no client certificate
        assert c.get("/api", headers={"Authorization": f"Bearer {old_token}"}
                     ).status_code == 200

    # 3. Finish: the old CA is trusted nowhere; the new credentials go on working.
    finished = rotate(s1, "--finish")
    assert finished.returncode == 0 and "phase: finished" in finished.stdout, \
        finished.stdout + finished.stderr
    assert not (s1.data_dir / "pki" / "ca-old.key").exists()
    for agent in (s1, s2, node):
        until(functools.partial(_trusts, agent, [new]), 30,
              f"{agent.name} trusting only the new CA")
    fresh_ctx = _ctx(new_admin, tmp_path / "new.kubeconfig")
    with httpx.Client(verify=fresh_ctx, timeout=10) as c:
        for s in (s1, s2):
            assert c.get(f"{s.url}/api/v1/nodes").status_code == 200
        # The node's copy still follows the servers, and its own API is of the new CA.
        assert c.post(f"{s1.url}/api/v1/namespaces/default/configmaps",
                      json={"metadata": {"name": "after"}}).status_code == 201
        until(lambda: c.get(f"{node.url}/api/v1/namespaces/default/configmaps/after"
                            ).status_code == 200, 20, "the node's copy following")
    # The old admin certificate is refused now (its CA is trusted nowhere).
    old_ctx = _ctx(old_admin, tmp_path / "oldest.kubeconfig")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{s1.url}/api/v1/nodes", verify=old_ctx, timeout=10)
    with s1.anonymous() as c:  # the token alone, no client certificate
        r = c.get("/api", headers={"Authorization": f"Bearer {old_token}"})
        assert r.status_code == 401  # signed with the old CA's key, which is gone


def _hostile_steps(server: AgentProcess) -> list[tuple[bytes, str]]:
    """CA steps an attacker would try: nested deep, a "CA" without BasicConstraints, a
    bundle with an Ed25519 CA and keys that are not its."""
    import datetime as dt
    import json

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")])
    now = dt.datetime.now(dt.UTC)

    def cert(key: object, public: object, ca: bool | None) -> str:
        b = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
             .public_key(public).serial_number(7).not_valid_before(now)  # type: ignore[arg-type]
             .not_valid_after(now + dt.timedelta(days=1)))
        if ca is not None:
            b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        return b.sign(key, algorithm).public_bytes(  # type: ignore[arg-type]
            serialization.Encoding.PEM).decode()
    ec_key, ed_key = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    ec_pem = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    ours = (server.data_dir / "pki" / "ca.crt").read_text()
    return [
        (b"[" * 30_000 + b"]" * 30_000, "a CA step"),
        (json.dumps({"bundle": cert(ec_key, ec_key.public_key(), None), "key": ec_pem}).encode(),
         "is not a CA"),
        (json.dumps({"bundle": ours + cert(ed_key, ed_key.public_key(), True), "key": ec_pem,
                     "nextKey": ec_pem}).encode(), "key: not the key"),
    ]


def test_a_rotation_step_is_refused_from_anyone_but_a_server(cluster: dict) -> None:
    s1, node = cluster["servers"][1], cluster["node"]
    body = {"bundle": "x", "key": "y"}
    r = cluster["admin"].post(f"{s1.url}/ca-rotation", json=body)
    assert r.status_code == 400  # the admin may (a superuser), but the step is nonsense
    # Hostile steps, even from the admin: a 400 naming what is wrong, never a 500.
    for hostile, says in _hostile_steps(s1):
        r = cluster["admin"].post(f"{s1.url}/ca-rotation", content=hostile,
                                  headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and says in r.json()["message"], (says, r.text[:300])
    node_ctx = pki.client_context(node.data_dir / "pki" / "ca.crt",
                                  node.data_dir / "pki" / "node.crt",
                                  node.data_dir / "pki" / "node.key")
    with httpx.Client(verify=node_ctx, timeout=10) as c:
        r = c.post(f"{s1.url}/ca-rotation", json=body)
        assert r.status_code == 403 and "only Raft servers" in r.text
        # A node renews only itself: the identity comes from its certificate.
        from nodeagent.join import csr_for
        _key, csr = csr_for("s1")
        r = c.post(f"{s1.url}/renew", json={"csr": csr})
        assert r.status_code == 200
        from cryptography import x509
        cert = x509.load_pem_x509_certificate(r.json()["node"].encode())
        assert pki.identity(cert) == ("system:node:node-c", ("system:nodes",))
    with s1.anonymous() as c:
        assert c.post("/renew", json={"csr": csr}).status_code == 401
