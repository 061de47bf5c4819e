"""pods/proxy, services/proxy and nodes/proxy through one agent, to an HTTP server in a
network namespace the test makes (the pod's address is on a veth from here), and what
an attacker who may write pods, Endpoints or Nodes would try: the API's own host, the
metadata service, an address that is no pod's."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from waiting import needs_root, until

from agentproc import AgentProcess

pytestmark = needs_root("a network namespace with a veth to reach the pod's address")

from pyroute2 import IPRoute, NetNS, netns  # noqa: E402

HOST_IP, POD_IP = "10.254.77.1", "10.254.77.2"
NS = "/api/v1/namespaces/default"

# python -c ECHO PORT: answers every request with what it got, as JSON; /redirect... with
# a redirect to /landed.
ECHO = """
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/landed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        out = json.dumps({"method": self.command, "path": self.path, "body": body,
                          "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def pod_host() -> Iterator[str]:
    """A namespace at POD_IP, reached from here over a veth, serving ECHO on 8080."""
    name = f"natest-pxy-{uuid.uuid4().hex[:6]}"
    host_if, peer_if = f"napx{uuid.uuid4().hex[:6]}", "eth0"
    netns.create(name)
    server = None
    try:
        with IPRoute() as ip:
            ip.link("add", ifname=host_if, kind="veth", peer={"ifname": "napxpeer"})
            idx = ip.link_lookup(ifname=host_if)[0]
            ip.addr("add", index=idx, address=HOST_IP, prefixlen=30)
            ip.link("set", index=idx, state="up")
            ip.link("set", index=ip.link_lookup(ifname="napxpeer")[0], net_ns_fd=name)
        with NetNS(name) as ns:
            peer = ns.link_lookup(ifname="napxpeer")[0]
            ns.link("set", index=peer, ifname=peer_if)
            ns.addr("add", index=peer, address=POD_IP, prefixlen=30)
            ns.link("set", index=peer, state="up")
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        route = subprocess.run(["ip", "route", "get", POD_IP], capture_output=True,
                               text=True).stdout
        assert f"dev {host_if}" in route, f"{POD_IP} would not leave through our veth: {route}"
        server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", ECHO,
                                   "8080"])
        until(lambda: httpx.get(f"http://{POD_IP}:8080/", timeout=1).status_code == 200,
              10, "the echo server in the namespace")
        yield name
    finally:
        if server is not None:
            server.kill()
            server.wait()
        netns.remove(name)  # takes the veth pair with it


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, pod_host: str) -> Iterator[AgentProcess]:
    a = AgentProcess(tmp_path_factory.mktemp("proxy"), "px").start()
    try:
        with a.client() as admin:
            make_pod(admin, "web", POD_IP)
        yield a
    finally:
        a.close()


def make_pod(admin: httpx.Client, name: str, ip: str) -> None:
    r = admin.post(f"{NS}/pods", json={"metadata": {"name": name}, "spec": {"containers": [
        {"name": "c", "image": "echo:1", "ports": [{"containerPort": 8080}]}]}})
    assert r.status_code == 201, r.text
    pod = r.json()
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
    r = admin.put(f"{NS}/pods/{name}/status", json=pod)
    assert r.status_code == 200, r.text


def echoed(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_pods_proxy_carries_method_path_query_and_body(agent: AgentProcess) -> None:
    with agent.client() as admin:
        got = echoed(admin.get(f"{NS}/pods/web/proxy/some/path%2Fx", params={"q": "1 2"}))
        assert got["method"] == "GET" and got["path"] == "/some/path%2Fx?q=1+2"
        assert "authorization" not in got["headers"], "the caller's credentials went upstream"
        got = echoed(admin.post(f"{NS}/pods/http:web:8080/proxy/", content=b"hello",
                                headers={"X-Mine": "kept"}))
        assert (got["method"], got["path"], got["body"]) == ("POST", "/", "hello")
        assert got["headers"]["x-mine"] == "kept"
        r = admin.get(f"{NS}/pods/web/proxy/redirect")
        assert r.status_code == 302
        assert r.headers["location"] == f"{NS}/pods/web/proxy/landed"


def test_kubectl_get_raw_through_a_pods_proxy(agent: AgentProcess) -> None:
    done = agent.kubectl("get", "--raw", f"{NS}/pods/web/proxy/from-kubectl")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"] == "/from-kubectl"


def test_a_services_proxy_goes_to_an_endpoint_that_is_a_pod(agent: AgentProcess) -> None:
    with agent.client() as admin:
        r = admin.post(f"{NS}/services", json={"metadata": {"name": "echo"}, "spec": {
            "ports": [{"port": 80, "targetPort": 8080, "name": "web"}]}})
        assert r.status_code == 201, r.text
        r = admin.post(f"{NS}/endpoints", json={"metadata": {"name": "echo"}, "subsets": [{
            "addresses": [{"ip": POD_IP, "targetRef": {"kind": "Pod", "name": "web",
                                                       "namespace": "default"}}],
            "ports": [{"name": "web", "port": 8080}]}]})
        assert r.status_code == 201, r.text
        assert echoed(admin.get(f"{NS}/services/echo:web/proxy/a"))["path"] == "/a"
        assert echoed(admin.get(f"{NS}/services/echo:80/proxy/b"))["path"] == "/b"
        r = admin.get(f"{NS}/services/echo:81/proxy/")
        assert r.status_code == 503 and "no service port 81" in r.text, r.text
        # No port named: the Service's unnamed one, which it has not.
        r = admin.get(f"{NS}/services/echo/proxy/")
        assert r.status_code == 503 and "no endpoints available" in r.text, r.text


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "0.0.0.0", "::1",
                                     "224.0.0.1"])
def test_a_pod_may_not_point_the_proxy_at_the_host_or_the_metadata_service(
        agent: AgentProcess, address: str) -> None:
    name = f"evil-{uuid.uuid4().hex[:6]}"
    with agent.client() as admin:
        make_pod(admin, name, address)
        r = admin.get(f"{NS}/pods/{name}/proxy/healthz")
        assert r.status_code == 400 and "address not allowed" in r.text, r.text


def test_endpoints_may_not_point_the_proxy_at_what_is_no_pods_address(
        agent: AgentProcess) -> None:
    with agent.client() as admin:
        admin.post(f"{NS}/services", json={"metadata": {"name": "liar"}, "spec": {
            "ports": [{"port": 80}]}})
        for subset in (
                {"addresses": [{"ip": HOST_IP, "targetRef": {"kind": "Pod", "name": "web"}}]},
                {"addresses": [{"ip": POD_IP}]},  # no targetRef
                {"addresses": [{"ip": POD_IP, "targetRef": {"kind": "Node", "name": "web"}}]},
                {"addresses": [{"ip": "127.0.0.1", "targetRef": {"kind": "Pod",
                                                                 "name": "web"}}]}):
            body = {"metadata": {"name": "liar"}, "subsets": [
                {**subset, "ports": [{"port": 8080}]}]}
            current = admin.get(f"{NS}/endpoints/liar")
            r = admin.put(f"{NS}/endpoints/liar", json=body) if current.status_code == 200 \
                else admin.post(f"{NS}/endpoints", json=body)
            assert r.status_code in (200, 201), r.text
            r = admin.get(f"{NS}/services/liar/proxy/")
            assert r.status_code == 503 and "no endpoints available" in r.text, (subset, r.text)


def test_a_nodes_proxy_reaches_its_address_only(agent: AgentProcess) -> None:
    with agent.client() as admin:
        for name, address in (("lab-n1", POD_IP), ("lab-lo", "127.0.0.1")):
            r = admin.post("/api/v1/nodes", json={"metadata": {"name": name}})
            assert r.status_code == 201, r.text
            node = r.json()
            node["status"] = {"addresses": [{"type": "InternalIP", "address": address}],
                              "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}
            assert admin.put(f"/api/v1/nodes/{name}/status", json=node).status_code == 200
        # Another port of the node's: plain HTTP, as the apiserver does.
        assert echoed(admin.get("/api/v1/nodes/lab-n1:8080/proxy/metrics"))["path"] == \
            "/metrics"
        # The agent's port: TLS as this server, which the echo server does not speak.
        r = admin.get("/api/v1/nodes/lab-n1/proxy/healthz")
        assert r.status_code == 503 and "error trying to reach" in r.text, r.text
        r = admin.get("/api/v1/nodes/lab-lo:8080/proxy/")
        assert r.status_code == 400 and "no address that may be proxied" in r.text, r.text


def test_bad_names_and_unreachable_upstreams_are_clear_errors(agent: AgentProcess) -> None:
    with agent.client() as admin:
        for path, code, says in (
                (f"{NS}/pods/ftp:web:21/proxy/", 400, "scheme http or https"),
                (f"{NS}/pods/a:b:c:d/proxy/", 400, "expected [scheme:]name[:port]"),
                (f"{NS}/pods/web:http/proxy/", 400, "invalid port"),
                (f"{NS}/pods/web:9/proxy/", 503, "error trying to reach"),
                (f"{NS}/pods/nosuch/proxy/", 404, 'pods "nosuch" not found'),
                (f"{NS}/configmaps/x/proxy/", 404, "could not find"),
                ("/api/v1/namespaces/default/proxy/", 404, "could not find")):
            r = admin.get(path)
            assert r.status_code == code and says in r.json()["message"], (path, r.text)
    with agent.anonymous() as anon:
        assert anon.get(f"{NS}/pods/web/proxy/").status_code == 401


def test_discovery_lists_the_proxy_subresources(agent: AgentProcess) -> None:
    with agent.client() as admin:
        names = {r["name"] for r in admin.get("/api/v1").json()["resources"]}
    assert {"pods/proxy", "services/proxy", "nodes/proxy"} <= names
