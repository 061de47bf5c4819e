"""Real Kubernetes clients against one agent: the kubectl binary pinned in the test
dependencies and the official Python client, doing what a person's day does to
objects (the pods need no node here; the whole day on a lab node is tests/e2e)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any

import pytest
from kubernetes import client as k8s
from waiting import until

from agentproc import AgentProcess, kubectl_binary

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
def agent(shared_agent: AgentProcess) -> AgentProcess:
    return shared_agent


@pytest.fixture(scope="module")
def api(k8s_api: k8s.ApiClient) -> k8s.ApiClient:
    return k8s_api


def kubectl(agent: AgentProcess, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    done = agent.kubectl(*args, stdin=stdin)
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


def manifest(name: str, image: str, *, extra_env: bool = False) -> str:
    env = '\n        - {name: B, value: "2"}' if extra_env else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 0
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
        ports:
        - containerPort: 8080
        env:
        - {{name: A, value: "1"}}{env}
      - name: sidecar
        image: busybox:1
"""


def test_kubectl_apply_create_replace_and_diff(agent: AgentProcess) -> None:
    """These fetched OpenAPI first and failed with "failed to download openapi"."""
    out = kubectl(agent, "apply", "-f", "-", stdin=manifest("applied", "kubia:v1"))
    assert "deployment.apps/applied created" in out.stdout
    assert "warning" not in out.stderr.lower(), out.stderr
    # A second apply sends a three-way strategic patch ($setElementOrder and all).
    out = kubectl(agent, "apply", "-f", "-", stdin=manifest("applied", "kubia:v2",
                                                            extra_env=True))
    assert "configured" in out.stdout and "warning" not in out.stderr.lower(), out.stderr
    main, sidecar = containers(agent, "applied")
    assert main["image"] == "kubia:v2" and [e["name"] for e in main["env"]] == ["A", "B"]
    assert sidecar["name"] == "sidecar"
    diff = kubectl(agent, "diff", "-f", "-", stdin=manifest("applied", "kubia:v3"),
                   check=False)
    assert diff.returncode == 1 and "+        image: kubia:v3" in diff.stdout, diff.stderr
    assert containers(agent, "applied")[0]["image"] == "kubia:v2"  # diff changed nothing
    kubectl(agent, "create", "-f", "-", stdin=manifest("created", "kubia:v1"))
    kubectl(agent, "replace", "-f", "-", stdin=manifest("created", "kubia:v9"))
    assert containers(agent, "created")[0]["image"] == "kubia:v9"


def test_server_side_validation_names_the_unknown_field(agent: AgentProcess) -> None:
    bad = manifest("strict", "kubia:v1").replace("        image:", "        imagee: x\n"
                                                 "        image:", 1)
    out = kubectl(agent, "apply", "--validate=strict", "-f", "-", stdin=bad, check=False)
    assert out.returncode != 0 and "imagee" in out.stderr, out.stderr


def test_kubectl_explain(agent: AgentProcess) -> None:
    out = kubectl(agent, "explain", "deployment.spec.template.spec.containers")
    assert "KIND:       Deployment" in out.stdout and "FIELD: containers" in out.stdout
    assert "image\t<string>" in out.stdout or "image" in out.stdout
    out = kubectl(agent, "explain", "pods", "--recursive")
    assert "containerPort" in out.stdout
    # Fields are described, and Kubernetes' fields the server keeps without acting on
    # them are named as such.
    out = kubectl(agent, "explain", "pod.spec.restartPolicy")
    assert "Always, OnFailure or Never" in out.stdout, out.stdout
    out = kubectl(agent, "explain", "deployment.spec.strategy")
    assert "RollingUpdate" in out.stdout and "<no description>" not in out.stdout.split(
        "FIELDS:")[0], out.stdout
    out = kubectl(agent, "explain", "pod.spec.topologySpreadConstraints")
    assert "does not act on" in out.stdout, out.stdout
    out = kubectl(agent, "explain", "pods")  # the kind itself is described
    assert "A group of containers" in out.stdout, out.stdout
    out = kubectl(agent, "explain", "pod.spec.volumes.hostPath")  # and the rarer fields
    assert "DirectoryOrCreate" in out.stdout and "<no description>" not in out.stdout, \
        out.stdout
    # The OpenAPI v2 form: client-go's OpenAPISchema() reads it as protobuf.
    out = kubectl(agent, "explain", "pods.spec.restartPolicy", "--output=plaintext-openapiv2")
    assert "FIELD:    restartPolicy <string>" in out.stdout, out.stdout
    assert "Always, OnFailure or Never" in out.stdout, out.stdout
    out = kubectl(agent, "explain", "deployments", "--recursive",
                  "--output=plaintext-openapiv2")
    assert "VERSION:  apps/v1" in out.stdout and "maxSurge" in out.stdout, out.stdout


def test_openapi_documents_carry_etag_and_gzip(agent: AgentProcess) -> None:
    with agent.client() as admin:
        root = admin.get("/openapi/v3")
        assert root.status_code == 200
        url = root.json()["paths"]["apis/apps/v1"]["serverRelativeURL"]
        doc = admin.get(url, headers={"Accept-Encoding": "gzip"})
        assert doc.status_code == 200 and doc.headers["content-encoding"] == "gzip"
        assert "immutable" in doc.headers["cache-control"]
        schemas = doc.json()["components"]["schemas"]
        containers_prop = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
        assert containers_prop["x-kubernetes-patch-merge-key"] == "name"
        again = admin.get(url, headers={"If-None-Match": doc.headers["etag"]})
        assert again.status_code == 304 and not again.content
        v2 = admin.get("/openapi/v2")
        assert v2.status_code == 200 and "io.k8s.api.apps.v1.Deployment" in v2.json()[
            "definitions"]
        proto = admin.get("/openapi/v2", headers={
            "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
        assert proto.headers["content-type"] == \
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        assert proto.headers["etag"] == v2.headers["etag"] and "Accept" in proto.headers["vary"]
        refused = admin.get("/openapi/v2", headers={"Accept": "application/yaml"})
        assert refused.status_code == 406 and "protobuf" in refused.json()["message"]
    with agent.anonymous() as anon:
        assert anon.get("/openapi/v2").status_code == 401


def test_kubectl_get_prints_the_servers_columns(agent: AgentProcess) -> None:
    """kubectl asks for Tables; without them it printed only NAME and AGE."""
    make_deployment(agent, "tables")
    out = kubectl(agent, "get", "deployments", "-o", "wide").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                              "IMAGES", "SELECTOR"]
    row = next(line.split() for line in out if line.startswith("tables "))
    assert row[1:4] == ["0/0", "0", "0"] and row[5:] == ["kubia,sidecar", "kubia:v1,busybox:1",
                                                          "app=kubia"]
    with agent.client() as admin:
        r = admin.get("/api/v1/namespaces", headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
        table = r.json()
        assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
        assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
        default = next(row for row in table["rows"] if row["cells"][0] == "default")
        assert default["cells"][1] == "Active"
        assert default["object"]["kind"] == "PartialObjectMetadata"
    shown = kubectl(agent, "get", "namespaces", "default", "--show-labels").stdout
    assert shown.split()[:4] == ["NAME", "STATUS", "AGE", "LABELS"]


def test_kubectl_get_watch_prints_rows(agent: AgentProcess) -> None:
    proc = subprocess.Popen(
        [kubectl_binary(), "get",
         "configmaps", "-w", "--request-timeout=5s"],
        env={**os.environ, "KUBECONFIG": str(agent.kubeconfig), "HOME": str(agent.workdir)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        header = proc.stdout.readline().split()
        assert header == ["NAME", "DATA", "AGE"]
        with agent.client() as admin:
            assert admin.post("/api/v1/namespaces/default/configmaps", json={
                "metadata": {"name": "watched"}, "data": {"a": "1", "b": "2"}}
            ).status_code == 201
        for _ in range(10):
            line = proc.stdout.readline().split()
            if line and line[0] == "watched":
                assert line[1] == "2"
                break
        else:
            raise AssertionError("no row for the new ConfigMap")
    finally:
        proc.kill()
        proc.communicate()


def test_kubectl_scale_and_the_python_clients_scale(agent: AgentProcess,
                                                     api: k8s.ApiClient) -> None:
    make_deployment(agent, "scaled")
    out = kubectl(agent, "scale", "deployment/scaled", "--replicas=3")
    assert "deployment.apps/scaled scaled" in out.stdout
    apps = k8s.AppsV1Api(api)
    scale = apps.read_namespaced_deployment_scale("scaled", "default")
    assert scale.spec is not None and scale.status is not None
    assert scale.spec.replicas == 3 and scale.status.selector == "app=kubia"
    apps.patch_namespaced_deployment_scale("scaled", "default", {"spec": {"replicas": 1}})
    assert apps.read_namespaced_deployment("scaled", "default").spec.replicas == 1
    # the rest of the object is untouched, and a stale precondition is a conflict
    assert [c["name"] for c in containers(agent, "scaled")] == ["kubia", "sidecar"]
    stale = kubectl(agent, "scale", "deployment/scaled", "--replicas=2",
                    "--resource-version=1", check=False)
    assert stale.returncode != 0 and "resource version" in stale.stderr, stale.stderr
    with agent.client() as admin:
        r = admin.put("/apis/apps/v1/namespaces/default/deployments/scaled/scale", json={
            "kind": "Scale", "metadata": {"resourceVersion": "1"}, "spec": {"replicas": 5}})
        assert r.status_code == 409
        assert admin.get("/apis/apps/v1/namespaces/default/deployments/scaled").json()[
            "spec"]["replicas"] == 1
        r = admin.put("/apis/apps/v1/namespaces/default/deployments/scaled/scale",
                      json={"kind": "Scale", "spec": {"replicas": -1}})
        assert r.status_code == 422 and "spec.replicas" in r.json()["message"]
        r = admin.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt/scale")
        assert r.status_code == 404
        found = admin.get("/apis/apps/v1").json()["resources"]
        row = next(x for x in found if x["name"] == "deployments/scale")
        assert (row["group"], row["version"], row["kind"]) == ("autoscaling", "v1", "Scale")


def test_kubectl_describe_shows_the_objects_events(agent: AgentProcess) -> None:
    make_deployment(agent, "described")
    with agent.client() as admin:
        uid = admin.get("/apis/apps/v1/namespaces/default/deployments/described").json()[
            "metadata"]["uid"]
        r = admin.post("/api/v1/namespaces/default/events", json={
            "metadata": {"name": "described.1"}, "type": "Normal",
            "reason": "ScalingReplicaSet", "message": "Scaled up replica set described-1 to 1",
            "source": {"component": "deployment-controller"}, "count": 1,
            "involvedObject": {"kind": "Deployment", "namespace": "default",
                               "name": "described", "uid": uid, "apiVersion": "apps/v1"}})
        assert r.status_code == 201, r.text
    out = kubectl(agent, "describe", "deployment", "described").stdout
    assert "ScalingReplicaSet" in out and "Events:  <none>" not in out
    assert "Scaled up replica set described-1 to 1" in out


def test_kubectls_typed_create_commands_send_protobuf(agent: AgentProcess) -> None:
    """kubectl create <kind> sends protobuf bodies and reads protobuf answers (it names
    the object it was answered with): they failed with 415 before."""
    kubectl(agent, "create", "namespace", "typed")
    steps = [
        (["create", "deployment", "web", "--image=kubia:v1", "--replicas=0", "--port=8080"],
         "deployment.apps/web created"),
        (["create", "configmap", "settings", "--from-literal=a=1", "--from-literal=b=2"],
         "configmap/settings created"),
        (["create", "secret", "generic", "creds", "--from-literal=password=hunter2"],
         "secret/creds created"),
        (["create", "service", "clusterip", "web", "--tcp=80:8080"], "service/web created"),
        (["create", "serviceaccount", "robot"], "serviceaccount/robot created"),
        (["create", "role", "reader", "--verb=get,list", "--resource=pods"],
         "role.rbac.authorization.k8s.io/reader created"),
        (["create", "rolebinding", "robot-reads", "--role=reader",
          "--serviceaccount=typed:robot"],
         "rolebinding.rbac.authorization.k8s.io/robot-reads created"),
        (["expose", "deployment", "web", "--name=web2", "--port=80", "--target-port=8080"],
         "service/web2 exposed"),
    ]
    for args, said in steps:
        out = kubectl(agent, "-n", "typed", *args)
        assert said in out.stdout, (args, out.stdout, out.stderr)
    with agent.client() as admin:
        base = "/api/v1/namespaces/typed"
        assert admin.get(f"{base}/configmaps/settings").json()["data"] == {"a": "1", "b": "2"}
        assert admin.get(f"{base}/secrets/creds").json()["data"] == {
            "password": "aHVudGVyMg=="}
        port = admin.get(f"{base}/services/web").json()["spec"]["ports"][0]
        assert (port["port"], port["targetPort"]) == (80, 8080)
        web = admin.get("/apis/apps/v1/namespaces/typed/deployments/web").json()
        assert web["spec"]["replicas"] == 0  # an explicit zero, not the default 1
        assert web["spec"]["template"]["spec"]["containers"][0]["ports"] == [
            {"containerPort": 8080, "protocol": "TCP"}]
    out = kubectl(agent, "-n", "typed", "delete", "configmap", "settings")
    assert 'configmap "settings" deleted' in out.stdout


def test_protobuf_answers_and_delete_options(agent: AgentProcess) -> None:
    from nodeagent.api import protobuf as pb
    with agent.client() as admin:
        assert admin.post("/api/v1/namespaces/default/configmaps", json={
            "metadata": {"name": "pb", "labels": {"x": "y"}}, "data": {"k": "v"}}
        ).status_code == 201
        accept = {"Accept": "application/vnd.kubernetes.protobuf, */*"}
        one = admin.get("/api/v1/namespaces/default/configmaps/pb", headers=accept)
        assert one.headers["content-type"] == pb.MEDIA_TYPE
        got = pb.decode(one.content)
        assert got["data"] == {"k": "v"} and got["metadata"]["labels"] == {"x": "y"}
        listed = admin.get("/api/v1/namespaces/default/configmaps", headers=accept)
        assert listed.headers["content-type"] == pb.MEDIA_TYPE
        options = pb._envelope("v1", "DeleteOptions", bytes([0x08, 0x00]))  # grace 0
        gone = admin.request("DELETE", "/api/v1/namespaces/default/configmaps/pb",
                             content=options, headers={"Content-Type": pb.MEDIA_TYPE})
        assert gone.status_code == 200, gone.text
        bad = admin.post("/api/v1/namespaces/default/configmaps", content=b"k8s\x00\xff",
                         headers={"Content-Type": pb.MEDIA_TYPE})
        assert bad.status_code == 400 and "protobuf body" in bad.json()["message"]


def test_typed_watches_are_protobuf_streams(agent: AgentProcess) -> None:
    """client-go's typed clients watch in protobuf (kubectl run -i waits for its pod so):
    length-prefixed WatchEvents whose objects are protobuf bodies, the WatchList's
    closing bookmark among them.  Real kubectl reads the stream and, once an event says
    the pod runs, goes on to attach."""
    from nodeagent.api import protobuf as pb
    with agent.client() as admin:
        assert admin.post("/api/v1/namespaces/default/configmaps", json={
            "metadata": {"name": "pbwatch"}, "data": {"k": "v"}}).status_code == 201
        r = admin.get("/api/v1/namespaces/default/configmaps", params={
            "watch": "true", "timeoutSeconds": "1", "fieldSelector": "metadata.name=pbwatch",
            "sendInitialEvents": "true", "allowWatchBookmarks": "true",
            "resourceVersionMatch": "NotOlderThan"},
            headers={"Accept": "application/vnd.kubernetes.protobuf, application/json"})
    assert r.headers["content-type"] == "application/vnd.kubernetes.protobuf;stream=watch"
    events, data = [], r.content
    while data:
        size = int.from_bytes(data[:4], "big")
        fields = {n: v for n, _, v in pb._fields(data[4:4 + size], "event")}
        (raw,) = [v for n, _, v in pb._fields(fields[2], "object") if n == 1]
        events.append((fields[1].decode(), pb.decode(raw)))
        data = data[4 + size:]
    assert [(t, o["kind"], o["metadata"].get("name")) for t, o in events] == [
        ("ADDED", "ConfigMap", "pbwatch"), ("BOOKMARK", "ConfigMap", None)]
    assert events[0][1]["data"] == {"k": "v"}
    assert events[1][1]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}

    def runs() -> None:  # what a node would report, once kubectl watches
        time.sleep(2)
        with agent.client() as admin:
            r = admin.patch("/api/v1/namespaces/default/pods/pbrun/status", content=json.dumps(
                {"status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True"}], "containerStatuses": [
                    {"name": "pbrun", "image": "busybox:1", "imageID": "", "ready": True,
                     "restartCount": 0, "state": {"running": {}}}]}}),
                headers={"Content-Type": "application/merge-patch+json"})
            assert r.status_code == 200, r.text
    thread = threading.Thread(target=runs)
    thread.start()
    done = kubectl(agent, "run", "pbrun", "--image=busybox:1", "-i", "--restart=Never",
                   "--pod-running-timeout=20s", "-v=8", "--", "true", stdin="", check=False)
    thread.join()
    assert "Content-Type: application/vnd.kubernetes.protobuf;stream=watch" in done.stderr
    assert "pods/pbrun/attach" in done.stderr, done.stderr[-2000:]  # the event was read
    assert "timed out waiting" not in done.stderr


def test_version_has_every_field_and_no_skew_warning(agent: AgentProcess) -> None:
    out = kubectl(agent, "version", "-o", "json")
    server = json.loads(out.stdout)["serverVersion"]
    for field in ("major", "minor", "gitVersion", "gitCommit", "gitTreeState", "buildDate",
                  "goVersion", "compiler", "platform", "emulationMajor", "emulationMinor",
                  "minCompatibilityMajor", "minCompatibilityMinor"):
        assert server.get(field), field
    assert "WARNING" not in out.stderr and "skew" not in out.stderr, out.stderr


def test_defaults_match_a_real_clusters(agent: AgentProcess, api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    pod = core.create_namespaced_pod("default", k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="defaults"),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="busybox:1")])))
    spec: Any = pod.spec
    assert spec is not None and spec.security_context is not None
    assert spec.scheduler_name == "default-scheduler"
    assert spec.dns_policy == "ClusterFirst" and spec.restart_policy == "Always"
    c = spec.containers[0]
    assert (c.termination_message_path, c.termination_message_policy,
            c.image_pull_policy) == ("/dev/termination-log", "File", "IfNotPresent")
    # What admission adds: priority, preemption policy, the default NoExecute tolerations
    # (for this agent's unreachable_toleration_s), and resources: {} on the container.
    assert (spec.priority, spec.preemption_policy) == (0, "PreemptLowerPriority")
    assert sorted((t.key, t.effect, t.operator) for t in spec.tolerations or []) == [
        ("node.kubernetes.io/not-ready", "NoExecute", "Exists"),
        ("node.kubernetes.io/unreachable", "NoExecute", "Exists")]
    with agent.client() as admin:
        raw = admin.get("/api/v1/namespaces/default/pods/defaults").json()
        assert raw["spec"]["containers"][0]["resources"] == {}
        # Zero counts are left out of a status, as Kubernetes' omitempty does; a
        # ReplicaSet's replicas is the one kept.
        make_deployment(agent, "zeros")
        def conditions() -> dict[str, Any]:
            got = admin.get("/apis/apps/v1/namespaces/default/deployments/zeros").json()
            return got if (got.get("status") or {}).get("conditions") else {}
        dep = until(conditions, 10, "a status")
        assert not [k for k, v in dep["status"].items() if v == 0], dep["status"]
        # A template's containers show resources: {} too, as a real cluster's do.
        assert [c.get("resources") for c in dep["spec"]["template"]["spec"]["containers"]] \
            == [{}, {}]
        rs = until(lambda: [r for r in admin.get("/apis/apps/v1/namespaces/default/"
                                                 "replicasets").json()["items"]
                            if r["metadata"]["name"].startswith("zeros-") and r.get("status")],
                   10, "the ReplicaSet's status")[0]
        assert rs["status"].get("replicas") == 0 and "readyReplicas" not in rs["status"]
    svc = core.create_namespaced_service("default", k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name="defaults"),
        spec=k8s.V1ServiceSpec(ports=[k8s.V1ServicePort(port=80)])))
    assert svc.spec is not None
    assert svc.spec.ip_families == ["IPv4"] and svc.spec.ip_family_policy == "SingleStack"
    assert svc.spec.session_affinity == "None"
    assert svc.spec.internal_traffic_policy == "Cluster"
    bad = kubectl(agent, "create", "-f", "-", check=False, stdin=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "v6"},
        "spec": {"ipFamilies": ["IPv6"], "ports": [{"port": 80}]}}))
    assert bad.returncode != 0 and "spec.ipFamilies[0]" in bad.stderr, bad.stderr


KUBIA_RC = """apiVersion: v1
kind: ReplicationController
metadata:
  name: kubia
spec:
  replicas: 3
  selector:
    app: kubia-rc
  template:
    metadata:
      labels:
        app: kubia-rc
    spec:
      containers:
      - name: kubia
        image: luksa/kubia
        ports:
        - containerPort: 8080
"""


def test_the_seeds_replication_controller(agent: AgentProcess) -> None:
    """kubia-rc.yaml as the seeds write it: created, its pods made and owned, scaled by
    kubectl scale rc, listed with kubectl's columns, deleted with its pods."""


    def pods() -> list[dict[str, Any]]:
        with agent.client() as admin:
            return [p for p in admin.get("/api/v1/namespaces/default/pods", params={
                "labelSelector": "app=kubia-rc"}).json()["items"]
                if not p["metadata"].get("deletionTimestamp")]
    kubectl(agent, "create", "-f", "-", stdin=KUBIA_RC)
    until(lambda: len(pods()) == 3, timeout_s=20, what="three pods of the RC")
    owner = pods()[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["apiVersion"], owner["controller"]) == (
        "ReplicationController", "v1", True)
    until(lambda: kubectl(agent, "get", "rc", "kubia").stdout.split()[6:9] == ["3", "3", "0"],
          timeout_s=20, what="status replicas 3")
    header = kubectl(agent, "get", "rc", "kubia").stdout.split()[:5]
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    out = kubectl(agent, "scale", "rc", "kubia", "--replicas=1")
    assert "replicationcontroller/kubia scaled" in out.stdout
    until(lambda: len(pods()) == 1, timeout_s=20, what="scaled down to one pod")
    with agent.client() as admin:
        rc = admin.get("/api/v1/namespaces/default/replicationcontrollers/kubia").json()
        assert rc["metadata"]["labels"] == {"app": "kubia-rc"}  # defaulted from the template
    kubectl(agent, "delete", "rc", "kubia")
    until(lambda: not pods(), timeout_s=30, what="the RC's pods collected")


def test_field_validation_strict_warn_and_ignore(agent: AgentProcess) -> None:
    typo = manifest("fv-warn", "kubia:v1").replace("        image:", "        imagee: x\n"
                                                   "        image:", 1)
    out = kubectl(agent, "apply", "--validate=warn", "-f", "-", stdin=typo)
    assert "created" in out.stdout
    assert 'unknown field "spec.template.spec.containers[0].imagee"' in out.stderr, out.stderr
    out = kubectl(agent, "apply", "--validate=false", "-f", "-",
                  stdin=typo.replace("fv-warn", "fv-ignore"))
    assert "created" in out.stdout and "unknown field" not in out.stderr, out.stderr
    assert "imagee" not in json.dumps(containers(agent, "fv-ignore"))
    # A field Kubernetes has but this server does not act on is kept, and said so.
    spread = manifest("fv-spread", "kubia:v1").replace(
        "      containers:", "      topologySpreadConstraints:\n      - maxSkew: 1\n"
        "        topologyKey: zone\n        whenUnsatisfiable: DoNotSchedule\n"
        "      containers:", 1)
    out = kubectl(agent, "apply", "-f", "-", stdin=spread)
    assert "created" in out.stdout
    assert "spec.template.spec.topologySpreadConstraints: kept, but this server does not " \
        "act on it" in out.stderr, out.stderr
    got = kubectl(agent, "get", "deployment", "fv-spread", "-o",
                  "jsonpath={.spec.template.spec.topologySpreadConstraints[0].topologyKey}")
    assert got.stdout == "zone"
    with agent.client() as admin:
        r = admin.post("/api/v1/namespaces/default/configmaps",
                       params={"fieldValidation": "Loose"}, json={"metadata": {"name": "x"}})
        assert r.status_code == 400 and "fieldValidation" in r.json()["message"]


def test_eviction_and_every_subresource_in_discovery(agent: AgentProcess,
                                                     api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespaced_pod("default", k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="evicted"),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="busybox:1")])))
    core.create_namespaced_pod_eviction("evicted", "default", k8s.V1Eviction(
        metadata=k8s.V1ObjectMeta(name="evicted"),
        delete_options=k8s.V1DeleteOptions(grace_period_seconds=0)))
    until(lambda: core.list_namespaced_pod(
        "default", field_selector="metadata.name=evicted").items == [], timeout_s=20,
        what="the evicted pod gone")
    with agent.client() as admin:
        names = {r["name"]: r for r in admin.get("/api/v1").json()["resources"]}
        for sub in ("pods/eviction", "pods/exec", "pods/log", "pods/binding", "pods/status",
                    "pods/attach", "pods/portforward", "pods/ephemeralcontainers",
                    "serviceaccounts/token", "namespaces/finalize",
                    "replicationcontrollers/scale"):
            assert sub in names, sub
        assert (names["pods/eviction"]["group"], names["pods/eviction"]["kind"]) == (
            "policy", "Eviction")


def test_aggregated_discovery(agent: AgentProcess) -> None:
    """kubectl asks /api and /apis for apidiscovery.k8s.io/v2 first: one answer for all."""
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
              "application/json")
    with agent.client() as admin:
        r = admin.get("/apis", headers={"Accept": accept})
        assert r.headers["content-type"].startswith(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
        apps = next(g for g in r.json()["items"] if g["metadata"]["name"] == "apps")
        deployments = next(x for x in apps["versions"][0]["resources"]
                           if x["resource"] == "deployments")
        assert deployments["scope"] == "Namespaced" and deployments["shortNames"] == ["deploy"]
        assert {"subresource": "scale", "responseKind": {
            "group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"]} in deployments["subresources"]
        core = admin.get("/api", headers={"Accept": accept}).json()
        assert core["items"][0]["versions"][0]["version"] == "v1"
        assert admin.get("/apis").json()["kind"] == "APIGroupList"  # plain when not asked
    rows = kubectl(agent, "api-resources").stdout.splitlines()
    assert any(line.split()[:5] == ["replicationcontrollers", "rc", "v1", "true",
                                    "ReplicationController"] for line in rows), rows[:5]


def test_thousands_of_unknown_fields_get_a_bounded_set_of_warnings(agent: AgentProcess) -> None:
    """Found by trying it: 5,000 unknown fields under Warn made 5,000 Warning headers, a
    header block httpx (and kubectl) refuse to read."""
    body = {"metadata": {"name": "many-unknown"}, **{f"bogus{i}": 1 for i in range(5000)}}
    with agent.client() as admin:
        r = admin.post("/api/v1/namespaces/default/configmaps", json=body)
        assert r.status_code == 201, r.text
        warnings = r.headers.get_list("warning")
        assert len(warnings) == 33 and "4968 more warnings left out" in warnings[-1]
        assert all(len(w) < 1100 for w in warnings)


def test_ephemeral_containers_are_added_never_changed(agent: AgentProcess,
                                                      api: k8s.ApiClient) -> None:
    """pods/ephemeralcontainers, as kubectl debug and the Python client use it: added by a
    strategic patch, then kept as they are; the pod's own update cannot touch them."""
    core = k8s.CoreV1Api(api)
    core.create_namespaced_pod("default", k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="debugged"),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="app", image="busybox:1")])))
    debugger = {"name": "dbg", "image": "busybox:1", "command": ["sleep", "1"],
                "targetContainerName": "app"}
    pod = core.patch_namespaced_pod_ephemeralcontainers(
        "debugged", "default", {"spec": {"ephemeralContainers": [debugger]}})
    [added] = pod.spec.ephemeral_containers  # type: ignore[union-attr,misc]
    assert (added.name, added.target_container_name, added.image_pull_policy) == (
        "dbg", "app", "IfNotPresent")
    with agent.client() as admin:
        url = "/api/v1/namespaces/default/pods/debugged/ephemeralcontainers"
        merge = {"Content-Type": "application/merge-patch+json"}
        for change, says in (
                ([{**debugger, "image": "busybox:2"}], 'existing ephemeral containers "dbg" '
                                                       "may not be changed"),
                ([], 'existing ephemeral containers "dbg" may not be removed'),
                ([debugger, {"name": "p", "image": "b:1", "ports": [{"containerPort": 1}]}],
                 "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an "
                 "Ephemeral Container"),
                ([debugger, {"name": "t", "image": "b:1", "targetContainerName": "nope"}],
                 'spec.ephemeralContainers[1].targetContainerName: Not found: "nope"'),
                ([debugger, {"name": "app", "image": "b:1"}],
                 'spec.ephemeralContainers[1].name: Duplicate value: "app"')):
            r = admin.patch(url, content=json.dumps({"spec": {"ephemeralContainers": change}}),
                            headers=merge)
            assert r.status_code == 422 and says in r.json()["message"], (change, r.text)
        # The pod's own update: ephemeral containers are not its to change.
        r = admin.patch("/api/v1/namespaces/default/pods/debugged", headers=merge,
                        content=json.dumps({"spec": {"ephemeralContainers": None}}))
        assert r.status_code == 422 and "pod updates may not change" in r.text, r.text
        got = admin.get(url).json()
        assert [c["name"] for c in got["spec"]["ephemeralContainers"]] == ["dbg"]
        # The streaming subresources are WebSocket upgrades only.
        for sub in ("exec", "attach", "portforward"):
            r = admin.post(f"/api/v1/namespaces/default/pods/debugged/{sub}")
            assert r.status_code == 400 and "Upgrade request required" in r.text, (sub, r.text)


def test_kubectl_debug_is_held_to_the_namespaces_pod_security(agent: AgentProcess) -> None:
    """kubectl debug's default profile (general) adds SYS_PTRACE, which the baseline level
    (this project's default) refuses, naming it; --profile=baseline is admitted."""
    with agent.client() as admin:
        r = admin.post("/api/v1/namespaces/default/pods", json={
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "traced"},
            "spec": {"containers": [{"name": "app", "image": "busybox:1"}]}})
        assert r.status_code == 201, r.text
    refused = kubectl(agent, "debug", "traced", "--image=busybox:1", "--target=app", "--",
                      "true", check=False)
    assert refused.returncode != 0 and "SYS_PTRACE" in refused.stderr, refused.stderr
    done = kubectl(agent, "debug", "traced", "--image=busybox:1", "--target=app",
                   "--profile=baseline", "--", "true")
    assert "Defaulting debug container name to debugger-" in done.stdout + done.stderr
    got = kubectl(agent, "get", "pod", "traced", "-o", "json")
    [debugger] = json.loads(got.stdout)["spec"]["ephemeralContainers"]
    assert debugger["targetContainerName"] == "app" and debugger["command"] == ["true"]


def ssa_manifest(replicas: int, env: list[dict[str, str]]) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "ssa"}},
                 "template": {"metadata": {"labels": {"app": "ssa"}}, "spec": {"containers": [
                     {"name": "web", "image": "kubia:v1", "env": env}]}}}})


def managers(agent: AgentProcess, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    got = json.loads(kubectl(agent, "get", "deployment", name, "-o", "json",
                             "--show-managed-fields").stdout)
    return {(e["manager"], e["operation"]): e for e in got["metadata"]["managedFields"]}


def test_server_side_apply_conflicts_force_and_removal(agent: AgentProcess) -> None:
    """kubectl apply --server-side: the applier owns its fields; another manager's change
    of one is a 409 naming it, --force-conflicts takes it; a field the applier drops from
    its configuration is removed; an update's manager owns what it changed."""
    a, b = {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
    done = kubectl(agent, "apply", "--server-side", "-f", "-", stdin=ssa_manifest(1, [a, b]))
    assert "deployment.apps/ssa serverside-applied" in done.stdout, done.stdout
    owned = managers(agent, "ssa")[("kubectl", "Apply")]["fieldsV1"]
    assert "f:replicas" in owned["f:spec"]
    web = owned["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert set(web["f:env"]) == {'k:{"name":"A"}', 'k:{"name":"B"}'}
    # Another manager wanting another replica count: a conflict naming field and owner.
    refused = kubectl(agent, "apply", "--server-side", "--field-manager=ops", "-f", "-",
                      stdin=ssa_manifest(3, [a, b]), check=False)
    assert refused.returncode != 0, refused.stdout
    assert 'conflict with "kubectl" using apps/v1: .spec.replicas' in refused.stderr, \
        refused.stderr
    kubectl(agent, "apply", "--server-side", "--field-manager=ops", "--force-conflicts",
            "-f", "-", stdin=ssa_manifest(3, [a, b]))
    both = managers(agent, "ssa")
    assert "f:replicas" in both[("ops", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in both[("kubectl", "Apply")]["fieldsV1"]["f:spec"]
    # The first applier drops B: still ops's (it applied B too), so it stays.
    kubectl(agent, "apply", "--server-side", "-f", "-", stdin=ssa_manifest(3, [a]))
    env = containers(agent, "ssa")[0]["env"]
    assert [e["name"] for e in env] == ["A", "B"], env
    # Both drop it: gone.
    kubectl(agent, "apply", "--server-side", "--field-manager=ops", "-f", "-",
            stdin=ssa_manifest(3, [a]))
    assert [e["name"] for e in containers(agent, "ssa")[0]["env"]] == ["A"]
    # An update's manager (kubectl label: kubectl-label) owns the field it set.
    kubectl(agent, "label", "deployment", "ssa", "team=blue")
    labels = managers(agent, "ssa")[("kubectl-label", "Update")]["fieldsV1"]
    assert labels == {"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}, labels


def test_server_side_apply_refuses_what_is_no_configuration(agent: AgentProcess) -> None:
    with agent.client() as admin:
        url = "/apis/apps/v1/namespaces/default/deployments/ssa-bad"
        apply = {"Content-Type": "application/apply-patch+yaml"}
        for query, body, code, says in (
                ("", ssa_manifest(1, []), 422, "fieldManager: Required value"),
                ("?fieldManager=x", "kind: Deployment\nmetadata: {name: ssa-bad}\n", 400,
                 "apiVersion must be set"),
                ("?fieldManager=x", ssa_manifest(1, []).replace('"ssa"', '"ssa-bad"', 1)
                 .replace('"replicas"', '"$patch": "replace", "replicas"'), 400,
                 "patch directives"),
                ("?fieldManager=x&force=maybe", ssa_manifest(1, []), 400, "force must be"),
                ("?fieldManager=" + "m" * 129, ssa_manifest(1, []), 422, "at most 128")):
            r = admin.patch(url + query, content=body, headers=apply)
            assert r.status_code == code and says in r.text, (query, r.text)


def test_managed_fields_a_client_sends_are_checked_and_bounded(agent: AgentProcess) -> None:
    """What an attacker with write access could put in managedFields or fieldManager:
    malformed, oversized or unbounded in number, each a 422 naming it, the object intact."""
    with agent.client() as admin:
        url = "/apis/apps/v1/namespaces/default/deployments/ssa-hostile"
        apply = {"Content-Type": "application/apply-patch+yaml"}
        body = ssa_manifest(1, []).replace('"ssa"', '"ssa-hostile"', 1)
        assert admin.patch(url + "?fieldManager=m", content=body, headers=apply
                           ).status_code == 201
        for bad, says in (
                ([{"manager": "x", "operation": "Update", "fieldsV1": {"f:a": "b"}}],
                 "fieldsV1 is a tree of objects"),
                ([{"manager": "x", "operation": "Hack", "fieldsV1": {}}],
                 "an operation of Apply or Update"),
                ([{"manager": "x", "operation": "Update", "fieldsV1": {"q:a": {}}}],
                 "is not f:, k:, v: or i:"),
                ([{"manager": "x", "operation": "Update",
                   "fieldsV1": {f"f:{i}": {} for i in range(5_001)}}],
                 "fieldsV1 of more than 5000 fields")):
            for _ in range(10):  # the deployment controller writes its status meanwhile
                obj = admin.get(url).json()
                obj["metadata"]["managedFields"] = bad
                r = admin.put(url, json=obj)
                if r.status_code != 409:
                    break
            assert r.status_code == 422 and says in r.json()["message"], (says, r.text[:300])
        r = admin.patch(url, params={"fieldManager": "a\nb"}, content=body, headers=apply)
        assert r.status_code == 422 and "fieldManager" in r.text
        # Appliers without end: refused past the cap, never a larger and larger object.
        last = None
        for i in range(70):
            labelled = json.loads(body)
            labelled["metadata"]["labels"] = {f"m{i}": "v"}
            last = admin.patch(url + f"?fieldManager=m{i}", content=json.dumps(labelled),
                               headers=apply)
            if last.status_code != 200:
                break
        assert last is not None and last.status_code == 422
        assert "more than 64 field managers" in last.json()["message"]
        assert len(admin.get(url).json()["metadata"]["managedFields"]) <= 64


def test_endpoint_slices_are_validated(agent: AgentProcess) -> None:
    with agent.client() as admin:
        url = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
        base = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "bad"}, "addressType": "IPv4"}
        for extra, says in (
                ({"endpoints": [{"addresses": ["10.0.0.1"]}] * 1001},
                 "endpoints: Too many: 1001: must have at most 1000 items"),
                ({"endpoints": [{"addresses": ["::1"]}]},
                 'endpoints[0].addresses[0]: Invalid value: "::1"'),
                ({"endpoints": [{"addresses": []}]},
                 "must have at least 1 and at most 100 addresses"),
                ({"addressType": "Bogus", "endpoints": []},
                 'addressType: Unsupported value: "Bogus"'),
                ({"endpoints": [], "ports": [{"name": "a", "port": 70000}]},
                 "ports[0].port: Invalid value: 70000")):
            r = admin.post(url, json={**base, **extra})
            assert r.status_code == 422 and says in r.json()["message"], (says, r.text[:300])


def test_kubernetes_fields_this_server_does_not_act_on_are_kept(agent: AgentProcess,
                                                                  api: k8s.ApiClient) -> None:
    """A valid manifest is never refused or cut: the fields of Kubernetes' that the models
    lack are stored and served as sent, each named in a Warning."""
    extra = {
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                       "whenUnsatisfiable": "ScheduleAnyway"}],
        "dnsConfig": {"nameservers": ["10.0.0.10"], "options": [{"name": "ndots",
                                                                 "value": "2"}]},
        "readinessGates": [{"conditionType": "example.com/ready"}],
        "os": {"name": "linux"},
    }
    container = {"name": "c", "image": "busybox:1",
                 "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}]}
    sidecar = {"name": "log", "image": "busybox:1", "restartPolicy": "Always"}
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kept"},
        "spec": {"containers": [container], "initContainers": [sidecar], **extra}}
    with agent.client() as admin:
        r = admin.post("/api/v1/namespaces/default/pods", json=body,
                       params={"fieldValidation": "Strict"})
        assert r.status_code == 201, r.text
        warnings = r.headers.get_list("warning")
        for name in ("spec.topologySpreadConstraints", "spec.dnsConfig",
                     "spec.containers[0].resizePolicy", "spec.initContainers[0].restartPolicy"):
            assert any(name in w and "kept" in w for w in warnings), (name, warnings)
        spec = r.json()["spec"]
        for key, value in extra.items():
            assert spec[key] == value, key
        assert spec["containers"][0]["resizePolicy"] == container["resizePolicy"]
        assert spec["initContainers"][0]["restartPolicy"] == "Always"
        # A strategic merge patch of something else leaves them as they were.
        r = admin.patch("/api/v1/namespaces/default/pods/kept",
                        json={"metadata": {"labels": {"a": "b"}}},
                        headers={"Content-Type": "application/strategic-merge-patch+json"})
        assert r.status_code == 200 and r.json()["spec"]["dnsConfig"] == extra["dnsConfig"]
    pod: Any = k8s.CoreV1Api(api).read_namespaced_pod("kept", "default")
    assert pod.spec.topology_spread_constraints[0].topology_key == "zone"
    assert pod.spec.os.name == "linux"
    # A typo is still what Strict refuses.
    with agent.client() as admin:
        body["metadata"]["name"] = "typo"
        body["spec"]["dnsConfg"] = {}
        r = admin.post("/api/v1/namespaces/default/pods", json=body,
                       params={"fieldValidation": "Strict"})
        assert r.status_code == 400, r.text
        assert 'unknown field "spec.dnsConfg"' in r.json()["message"]


def test_kept_fields_under_attack(agent: AgentProcess) -> None:
    """A kept field is no way around the caps: deeply nested, oversized or of the wrong
    shape, it is refused with a clear error and nothing is stored."""
    url = "/api/v1/namespaces/default/pods"

    def pod(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}], **spec}}
    deep = json.dumps(pod("deep", dnsConfig="NEST")).replace(
        '"NEST"', '{"a":' * 2000 + "{}" + "}" * 2000)
    with agent.client() as admin:
        for name, body, codes in (
                ("deep", deep, (400,)),
                ("huge", pod("huge", dnsConfig={"searches": ["x" * 4_000_000]}), (413,)),
                ("shape", pod("shape", readinessGates="all"), (400,)),
                ("forged", pod("forged", os={"name": "linux"}, **{"os ": {}}), (400,))):
            r = admin.post(url, content=body if isinstance(body, str) else json.dumps(body),
                           headers={"Content-Type": "application/json"},
                           params={"fieldValidation": "Strict"})
            assert r.status_code in codes, (name, r.status_code, r.text[:200])
            assert r.json()["kind"] == "Status"
            assert admin.get(f"{url}/{name}").status_code == 404
