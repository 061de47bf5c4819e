"""A browser cannot drive the API: a WebSocket upgrade (the door to exec) from another
site's Origin and any request naming a foreign Host (DNS rebinding) are refused, and a
body that is not typed JSON or YAML is 415 (a cross-site form cannot send JSON without a
CORS preflight, which this server never grants).  A body with no type at all is read as
JSON, as the apiserver does and the official Python client needs, unless the request
names an Origin, as every browser's cross-site request does."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from agentproc import AgentProcess

EXEC = "/api/v1/namespaces/default/pods/nope/exec?command=sh"


def _ws(agent: AgentProcess, **kw):
    return connect("wss" + agent.url.removeprefix("https") + EXEC, ssl=agent.tls(),
                   subprotocols=["v4.channel.k8s.io"], open_timeout=5, **kw)  # type: ignore[list-item]


def test_a_websocket_from_a_foreign_origin_is_refused(shared_agent: AgentProcess) -> None:
    with pytest.raises(InvalidStatus) as info:
        _ws(shared_agent, origin="https://evil.example")
    assert info.value.response.status_code == 403


def test_a_websocket_from_no_origin_or_its_own_origin_is_served(shared_agent: AgentProcess) -> None:
    """Served: past the origin check, the exec finds no pod "nope", and says so before the
    upgrade, as kube-apiserver does (a 404 naming it, not the 403 of a foreign origin)."""
    host = shared_agent.url.removeprefix("https://")
    for kw in ({}, {"origin": f"https://{host}"}):
        with pytest.raises(InvalidStatus) as info:
            _ws(shared_agent, **kw)
        assert info.value.response.status_code == 404
        assert b'pods \\"nope\\" not found' in info.value.response.body


def test_a_request_for_a_foreign_host_is_refused(shared_agent: AgentProcess) -> None:
    with shared_agent.client() as c:
        r = c.get("/api/v1/namespaces", headers={"host": "evil.example:6443"})
        assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
        with pytest.raises(InvalidStatus):
            _ws(shared_agent, additional_headers={"host": "evil.example"})
        assert c.get("/api/v1/namespaces", headers={"host": "localhost"}).status_code == 200


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_without_a_json_or_yaml_type_is_415(shared_agent: AgentProcess, ctype) -> None:
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}'
    headers = {"content-type": ctype} if ctype else {"origin": "https://evil.example"}
    with shared_agent.client() as c:
        r = c.post("/api/v1/namespaces/default/configmaps", content=body, headers=headers)
        assert r.status_code == 415, r.text
        r = c.request("DELETE", "/api/v1/namespaces/default/configmaps/x", content=b"{}",
                      headers=headers)
        assert r.status_code == 415
        assert c.get("/api/v1/namespaces/default/configmaps/x").status_code == 404


def test_a_body_with_no_type_and_no_origin_is_json(shared_agent: AgentProcess) -> None:
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"untyped"}}'
    with shared_agent.client() as c:
        r = c.post("/api/v1/namespaces/default/configmaps", content=body)
        assert r.status_code == 201, r.text
        assert c.delete("/api/v1/namespaces/default/configmaps/untyped").status_code == 200
