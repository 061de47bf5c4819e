"""The Endpoints controller against the real object store: ready and not-ready pods,
named target ports resolved per pod, pods being deleted dropped at once, selectorless
Services left alone, and the proxy's view of the result."""

from __future__ import annotations

from netns.rules import service_ports
from nodeagent.coordinator.endpoints import EndpointsController
from nodeagent.objects.kinds import ENDPOINT_SLICES, ENDPOINTS, PODS, SERVICES
from nodeagent.proxy import service as proxy


async def make_pod(objects, name: str, ip: str, ready: bool, port: int = 8080,
                   labels: dict | None = None) -> None:
    await objects.create(PODS, "default", {
        "metadata": {"name": name, "labels": labels or {"app": "kubia"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "app", "image": "kubia:latest",
                                                      "ports": [{"name": "http",
                                                                 "containerPort": port}]}]}})
    pod = objects.get(PODS, "default", name)
    pod["status"] = {"phase": "Running", "podIP": ip, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    await objects.update(PODS, "default", name, pod, subresource="status")


async def test_ready_and_not_ready_pods_with_named_ports(objects):
    await objects.create(SERVICES, "default", {"metadata": {"name": "kubia"}, "spec": {
        "selector": {"app": "kubia"}, "ports": [{"port": 80, "targetPort": "http"}]}})
    await make_pod(objects, "a", "10.244.1.2", ready=True)
    await make_pod(objects, "b", "10.244.1.3", ready=False)
    await make_pod(objects, "c", "10.244.1.4", ready=True, port=9090)  # same name, other number
    await make_pod(objects, "other", "10.244.1.9", ready=True, labels={"app": "other"})
    ctl = EndpointsController(objects)
    await ctl.sync()
    ep = objects.get(ENDPOINTS, "default", "kubia")
    by_port = {s["ports"][0]["port"]: s for s in ep["subsets"]}
    assert [a["ip"] for a in by_port[8080]["addresses"]] == ["10.244.1.2"]
    assert [a["ip"] for a in by_port[8080]["notReadyAddresses"]] == ["10.244.1.3"]
    assert [a["ip"] for a in by_port[9090]["addresses"]] == ["10.244.1.4"]
    assert by_port[8080]["addresses"][0]["targetRef"]["name"] == "a"
    # The proxy programs only the ready backends.
    (port,) = service_ports([objects.get(SERVICES, "default", "kubia")], {("default", "kubia"): ep})
    assert [(str(ip), p) for ip, p in port.endpoints] == [("10.244.1.2", 8080), ("10.244.1.4", 9090)]
    rv = ep["metadata"]["resourceVersion"]
    await ctl.sync()
    assert objects.get(ENDPOINTS, "default", "kubia")["metadata"]["resourceVersion"] == rv  # no churn


async def test_a_pod_being_deleted_leaves_the_endpoints_at_once(objects):
    await objects.create(SERVICES, "default", {"metadata": {"name": "kubia"}, "spec": {
        "selector": {"app": "kubia"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    await make_pod(objects, "a", "10.244.1.2", ready=True)
    await make_pod(objects, "b", "10.244.1.3", ready=True)
    ctl = EndpointsController(objects)
    await ctl.sync()
    await objects.delete(PODS, "default", "a")  # bound to a node: graceful, still there
    assert objects.get(PODS, "default", "a")["metadata"]["deletionTimestamp"]
    await ctl.sync()
    ips = [a["ip"] for s in objects.get(ENDPOINTS, "default", "kubia")["subsets"] for a in s["addresses"]]
    assert ips == ["10.244.1.3"]


async def test_selectorless_services_keep_their_endpoints_and_gone_services_lose_theirs(objects):
    await objects.create(SERVICES, "default", {"metadata": {"name": "external"}, "spec": {
        "ports": [{"port": 80}]}})
    await objects.create(ENDPOINTS, "default", {"metadata": {"name": "external"}, "subsets": [
        {"addresses": [{"ip": "11.11.11.11"}], "ports": [{"port": 80}]}]})
    await objects.create(SERVICES, "default", {"metadata": {"name": "kubia"}, "spec": {
        "selector": {"app": "kubia"}, "ports": [{"port": 80}]}})
    ctl = EndpointsController(objects)
    await ctl.sync()
    assert objects.get(ENDPOINTS, "default", "external")["subsets"][0]["addresses"] == [{"ip": "11.11.11.11"}]
    assert "subsets" not in objects.get(ENDPOINTS, "default", "kubia")  # no pods yet: empty
    await objects.delete(SERVICES, "default", "kubia")
    await objects.delete(SERVICES, "default", "external")
    await ctl.sync()
    names = [e["metadata"]["name"] for e in objects.list(ENDPOINTS, "default")["items"]]
    assert names == ["external"]  # the user's stays; the controller's went with its Service


def slices_of(objects, service: str) -> list[dict]:
    return sorted((s for s in objects.list(ENDPOINT_SLICES, "default")["items"]
                   if s["metadata"]["labels"].get("kubernetes.io/service-name") == service),
                  key=lambda s: s["metadata"]["name"])


async def test_endpoint_slices_hold_conditions_and_split_at_100(objects):
    """The same pods as EndpointSlices: ready, not ready and terminating endpoints with their
    conditions, owned by the Service, 100 a slice, stable across passes; the proxy's view
    of them is the ready ones."""
    await objects.create(SERVICES, "default", {"metadata": {"name": "kubia"}, "spec": {
        "selector": {"app": "kubia"}, "ports": [{"name": "http", "port": 80,
                                                 "targetPort": 8080}]}})
    await make_pod(objects, "a", "10.244.1.2", ready=True)
    await make_pod(objects, "b", "10.244.1.3", ready=False)
    await make_pod(objects, "c", "10.244.1.4", ready=True)
    ctl = EndpointsController(objects)
    await ctl.sync()
    await objects.delete(PODS, "default", "c")  # graceful: terminating
    await ctl.sync()
    [sl] = slices_of(objects, "kubia")
    svc = objects.get(SERVICES, "default", "kubia")
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslice-controller.k8s.io"
    assert sl["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    assert sl["addressType"] == "IPv4" and sl["ports"] == [
        {"name": "http", "port": 8080, "protocol": "TCP"}]
    conditions = {e["addresses"][0]: e["conditions"] for e in sl["endpoints"]}
    assert conditions == {
        "10.244.1.2": {"ready": True, "serving": True, "terminating": False},
        "10.244.1.3": {"ready": False, "serving": False, "terminating": False},
        "10.244.1.4": {"ready": False, "serving": True, "terminating": True}}
    assert proxy.endpoints_of([sl]) == {("default", "kubia"): {"subsets": [{
        "addresses": [{"ip": "10.244.1.2"}], "ports": [
            {"name": "http", "port": 8080, "protocol": "TCP"}]}]}}
    rv = sl["metadata"]["resourceVersion"]
    await ctl.sync()
    assert slices_of(objects, "kubia")[0]["metadata"]["resourceVersion"] == rv  # no churn
    for i in range(150):
        await make_pod(objects, f"p{i}", f"10.244.2.{i + 1}", ready=True)
    await ctl.sync()
    sizes = sorted(len(s["endpoints"]) for s in slices_of(objects, "kubia"))
    assert sizes == [53, 100]
    for i in range(150):
        await objects.delete(PODS, "default", f"p{i}", grace_period_s=0)
    await ctl.sync()
    assert len(slices_of(objects, "kubia")) == 1  # the second slice is gone


async def test_selectorless_endpoints_are_mirrored_and_gone_services_lose_slices(objects):
    await objects.create(SERVICES, "default", {"metadata": {"name": "external"}, "spec": {
        "ports": [{"port": 80}]}})
    await objects.create(ENDPOINTS, "default", {"metadata": {"name": "external"}, "subsets": [
        {"addresses": [{"ip": "11.11.11.11"}], "notReadyAddresses": [{"ip": "11.11.11.12"}],
         "ports": [{"port": 80}]}]})
    ctl = EndpointsController(objects)
    await ctl.sync()
    [sl] = slices_of(objects, "external")
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslicemirroring-controller.k8s.io"
    assert [(e["addresses"], e["conditions"]["ready"]) for e in sl["endpoints"]] == [
        (["11.11.11.11"], True), (["11.11.11.12"], False)]
    await objects.delete(SERVICES, "default", "external")
    await ctl.sync()
    assert slices_of(objects, "external") == []
