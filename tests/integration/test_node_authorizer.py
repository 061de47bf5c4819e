"""A node's own credential, used as a compromised node would use it, against a real
server: it reads the Secrets and ConfigMaps its own pods name and no others; it changes
its own Node and its own pods' status and nothing else -- through the API or through a
raw transaction on the replica stream; and the copy of the store it is fed holds no
Secret at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import pytest
import trio

from agentproc import AgentProcess
from nodeagent import pki
from nodeagent.clusterpki import AgentPki
from nodeagent.join import join, parse_join_token
from nodeagent.store.mvcc import Op, OpKind, Txn
from nodeagent.store.wire import MEDIA_TYPE


def _pod(name: str, node: str, secret: str, configmap: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{
                "name": "c", "image": "busybox",
                "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": secret,
                                                                     "key": "k"}}}]}],
                "volumes": [{"name": "v", "configMap": {"name": configmap}}]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("nodeauth")
    server = AgentProcess(work / "server", "server").start()
    try:
        nodes: dict[str, Any] = {}
        for name in ("node-a", "node-b"):
            token = parse_join_token(server.join_token().read_text())
            agent_pki = AgentPki(work / name)
            trio.run(join, agent_pki, [server.url], token, name, [])
            ctx = pki.client_context(agent_pki.ca_cert, agent_pki.cert("node"),
                                     agent_pki.key("node"))
            nodes[name] = httpx.Client(base_url=server.url, verify=ctx, timeout=10)
            nodes[f"{name}-tls"] = ctx
        with server.client() as admin:
            for name in ("node-a", "node-b"):
                r = admin.post("/api/v1/nodes", json={"metadata": {"name": name}})
                assert r.status_code == 201, r.text
            for obj, path in (
                ({"metadata": {"name": "a-secret"}, "stringData": {"k": "a"}}, "secrets"),
                ({"metadata": {"name": "b-secret"}, "stringData": {"k": "b"}}, "secrets"),
                ({"metadata": {"name": "lonely"}, "stringData": {"k": "l"}}, "secrets"),
                ({"metadata": {"name": "a-config"}, "data": {"k": "a"}}, "configmaps"),
                ({"metadata": {"name": "b-config"}, "data": {"k": "b"}}, "configmaps"),
                (_pod("pod-a", "node-a", "a-secret", "a-config"), "pods"),
                (_pod("pod-b", "node-b", "b-secret", "b-config"), "pods"),
            ):
                r = admin.post(f"/api/v1/namespaces/default/{path}", json=obj)
                assert r.status_code == 201, r.text
        yield {"server": server, **nodes}
        for c in nodes.values():
            if isinstance(c, httpx.Client):
                c.close()
    finally:
        server.close()


def test_a_node_reads_only_what_its_pods_name(cluster: dict) -> None:
    a = cluster["node-a"]
    assert a.get("/api/v1/namespaces/default/secrets/a-secret").status_code == 200
    assert a.get("/api/v1/namespaces/default/configmaps/a-config").status_code == 200
    for path in ("secrets/b-secret", "secrets/lonely", "configmaps/b-config"):
        r = a.get(f"/api/v1/namespaces/default/{path}")
        assert r.status_code == 403, (path, r.text)
        assert "no relationship found between node 'node-a' and this object" in r.text
    assert a.get("/api/v1/namespaces/default/secrets").status_code == 403
    assert a.get("/api/v1/secrets?watch=true").status_code == 403
    # What every node needs: nodes, pods, services, endpoints.
    for path in ("/api/v1/nodes", "/api/v1/pods", "/api/v1/services", "/api/v1/endpoints"):
        assert a.get(path).status_code == 200, path
    assert a.get("/apis/rbac.authorization.k8s.io/v1/clusterroles").status_code == 403


def test_a_node_changes_only_its_own_node_and_pods(cluster: dict) -> None:
    a = cluster["node-a"]
    merge = {"Content-Type": "application/merge-patch+json"}
    assert a.patch("/api/v1/nodes/node-a/status", headers=merge, content=json.dumps(
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})).status_code == 200
    r = a.patch("/api/v1/nodes/node-b", headers=merge,
                content=json.dumps({"spec": {"unschedulable": True}}))
    assert r.status_code == 403 and "only change its own Node" in r.text
    status = {"status": {"phase": "Running"}}
    assert a.patch("/api/v1/namespaces/default/pods/pod-a/status", headers=merge,
                   content=json.dumps(status)).status_code == 200
    r = a.patch("/api/v1/namespaces/default/pods/pod-b/status", headers=merge,
                content=json.dumps(status))
    assert r.status_code == 403 and "pods bound to it" in r.text
    assert a.delete("/api/v1/namespaces/default/pods/pod-b").status_code == 403
    assert a.post("/api/v1/namespaces/default/configmaps",
                  json={"metadata": {"name": "mine"}}).status_code == 403
    assert a.post("/api/v1/namespaces/default/pods", json=_pod("sneaky", "node-b", "b-secret",
                                                                "b-config")).status_code == 403


def _txn(client: httpx.Client, *ops: Op) -> httpx.Response:
    return client.post("/replica/txn", content=Txn((), ops).encode(),
                       headers={"Content-Type": MEDIA_TYPE})


def test_raw_transactions_from_a_node_are_held_to_the_same(cluster: dict) -> None:
    a, admin = cluster["node-a"], cluster["server"].client()
    with admin:
        own = admin.get("/api/v1/nodes/node-a").json()
        other = admin.get("/api/v1/nodes/node-b").json()
        pod_a = admin.get("/api/v1/namespaces/default/pods/pod-a").json()
        pod_b = admin.get("/api/v1/namespaces/default/pods/pod-b").json()
    other["spec"] = {"unschedulable": True}
    spec_changed = json.loads(json.dumps(pod_a))
    spec_changed["spec"]["containers"][0]["image"] = "evil"
    stolen = json.loads(json.dumps(pod_a))
    stolen["spec"]["nodeName"] = "node-b"
    relabelled = json.loads(json.dumps(pod_a))
    relabelled["metadata"]["labels"] = {"app": "kubia"}
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "x", "namespace": "default"}}
    for op, why in (
        (Op(OpKind.PUT, "/registry/nodes/node-b", json.dumps(other).encode()), "own Node"),
        (Op(OpKind.DELETE, "/registry/nodes/node-a"), "own Node"),
        (Op(OpKind.PUT, "/registry/pods/default/pod-b", json.dumps(pod_b).encode()),
         "not bound"),
        (Op(OpKind.PUT, "/registry/pods/default/pod-a", json.dumps(spec_changed).encode()),
         "status"),
        (Op(OpKind.PUT, "/registry/pods/default/pod-a", json.dumps(stolen).encode()), "status"),
        (Op(OpKind.PUT, "/registry/pods/default/pod-a", json.dumps(relabelled).encode()),
         "status"),
        (Op(OpKind.PUT, "/registry/configmaps/default/x", json.dumps(cm).encode()),
         "a node writes only"),
        (Op(OpKind.DELETE, "/registry/secrets/default/lonely"), "a node writes only"),
    ):
        r = _txn(a, op)
        assert r.status_code == 403 and why in r.json()["message"], (op.key, r.text)
    own["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert _txn(a, Op(OpKind.PUT, "/registry/nodes/node-a", json.dumps(own).encode())
                ).status_code == 200


def _snapshot_keys(client: httpx.Client) -> list[str]:
    """The keys of the state the replica stream sends first."""
    with client.stream("GET", "/replica/stream", params={"revision": "0"}) as r:
        assert r.status_code == 200
        unpacker = msgpack.Unpacker(raw=False)
        for chunk in r.iter_raw():
            unpacker.feed(chunk)
            first = next(iter(unpacker), None)
            if first is not None:
                assert first["t"] == "snap"
                return [row[0] for row in msgpack.unpackb(first["state"], raw=False)["kvs"]]
    raise AssertionError("the stream ended before the state came")


def test_the_copy_a_node_is_fed_holds_no_secret(cluster: dict) -> None:
    keys = _snapshot_keys(cluster["node-a"])
    assert "/registry/pods/default/pod-a" in keys
    assert not [k for k in keys if k.startswith("/registry/secrets/")]
    with cluster["server"].client() as admin:  # the admin's (a server's) has them all
        assert "/registry/secrets/default/lonely" in _snapshot_keys(admin)


def test_a_nodes_pod_manager_gets_its_pods_secrets_from_a_server(cluster: dict,
                                                                 tmp_path_factory) -> None:
    from nodeagent.podmanager.secrets import RemoteSecrets
    server = cluster["server"]
    with server.client() as admin:
        pod_a = admin.get("/api/v1/namespaces/default/pods/pod-a").json()
        pod_b = admin.get("/api/v1/namespaces/default/pods/pod-b").json()
    ctx = cluster["node-a-tls"]  # node-a's own TLS (its certificate)

    async def main() -> None:
        source = RemoteSecrets(lambda: server.url, lambda: ctx, ttl_s=0)
        assert await source.prefetch(pod_a)
        got = source.get("default", "a-secret")
        assert got is not None and got["data"]["k"] == "YQ=="
        await source.prefetch(pod_b)  # another node's pod: the server says no
        assert source.get("default", "b-secret") is None
        assert not await source.prefetch(pod_a)  # asked again, unchanged
    trio.run(main)


def test_a_node_copy_follows_writes_it_is_not_sent(cluster: dict, tmp_path_factory) -> None:
    """Secrets written on the server move the node's copy's revision on (a "rev"
    message), so a read barrier on the node does not wait for a later write."""
    import time
    server = cluster["server"]
    node = AgentProcess(tmp_path_factory.mktemp("copy"), "node-c", "--servers", server.url,
                        "--join-token-file", str(server.join_token())).start()
    try:
        with server.client() as admin:
            for i in range(3):
                assert admin.post("/api/v1/namespaces/default/secrets", json={
                    "metadata": {"name": f"late-{i}"}, "stringData": {"k": "v"}}
                ).status_code == 201
        ca = pki.client_context(node.data_dir / "pki" / "ca.crt", node.data_dir / "pki" /
                                "node.crt", node.data_dir / "pki" / "node.key")
        with httpx.Client(base_url=node.url, verify=ca, timeout=10) as c:
            started = time.monotonic()
            assert c.get("/api/v1/namespaces/default/pods/pod-a").status_code == 200
            assert time.monotonic() - started < 3  # the barrier did not time out (5 s)
            assert c.get("/api/v1/namespaces/default/secrets").status_code == 403
        # Even the admin gets no empty list from a copy without Secrets: where to ask.
        with server.client() as admin:
            r = admin.get(f"{node.url}/api/v1/namespaces/default/secrets")
            assert r.status_code == 503 and server.url in r.json()["message"], r.text
    finally:
        node.close()
