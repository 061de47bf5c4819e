"""The replica stream between agents takes only what the API itself would write: known
keys, objects that decode and validate, named as their key says.  A planted Service (its
clusterIP an nftables fragment), a value that is not JSON, a key outside the registry
all get a 4xx naming the problem, and nothing is stored."""

from __future__ import annotations

import json

import pytest

from agentproc import AgentProcess
from nodeagent.store.mvcc import Compare, Op, OpKind, Txn
from nodeagent.store.wire import MEDIA_TYPE, decode_result

SVC_KEY = "/registry/services/default/planted"


def _service(cluster_ip: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "planted", "namespace": "default"},
                       "spec": {"clusterIP": cluster_ip, "ports": [{"port": 80}],
                                "selector": {"a": "b"}}}).encode()


def _post(agent: AgentProcess, txn: Txn | bytes):
    body = txn if isinstance(txn, bytes) else txn.encode()
    with agent.client() as c:
        return c.post("/replica/txn", content=body, headers={"content-type": MEDIA_TYPE})


@pytest.mark.parametrize("txn,code,words", [
    (Txn((), (Op(OpKind.PUT, SVC_KEY, _service("10.96.0.9 . tcp . 80 } } table ip evil {")),)),
     422, "clusterIP"),
    (Txn((), (Op(OpKind.PUT, "/registry/pods/default/p", b"\xff not json"),)), 400, "not a JSON"),
    (Txn((), (Op(OpKind.PUT, "/etc/passwd", b"{}"),)), 400, "not an object's"),
    (Txn((), (Op(OpKind.PUT, "/registry/services/default/other", _service("10.96.0.9")),)), 400,
     "do not match"),
    (Txn((), (Op(OpKind.DELETE_PREFIX, "/registry/"),)), 400, "delete_prefix"),
    (Txn((Compare("/nowhere", "mod", "=", 0),), ()), 400, "not an object's"),
    (b"\xc1garbage", 400, "malformed"),
])
def test_the_replica_stream_refuses_what_the_api_would_not_write(agent: AgentProcess, txn, code,
                                                                 words) -> None:
    r = _post(agent, txn)
    assert r.status_code == code, r.text
    assert words in r.json()["message"]
    with agent.client() as c:
        assert c.get("/api/v1/namespaces/default/services/planted").status_code == 404
        assert c.get("/api/v1/namespaces/default/pods/p").status_code == 404


def test_the_replica_stream_takes_a_well_formed_write(agent: AgentProcess) -> None:
    r = _post(agent, Txn((Compare(SVC_KEY, "create", "=", 0),),
                         (Op(OpKind.PUT, SVC_KEY, _service("10.96.0.9")),)))
    assert r.status_code == 200 and decode_result(r.content).succeeded
    with agent.client() as c:
        assert c.get("/api/v1/namespaces/default/services/planted").json()["spec"]["clusterIP"] \
            == "10.96.0.9"
