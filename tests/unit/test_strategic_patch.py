"""Golden cases for strategic merge patch.

Each case is taken from Kubernetes' documented semantics: the task "Update API Objects
in Place Using kubectl patch" (containers merged by name, tolerations replaced,
``$retainKeys`` on a Deployment's strategy) and the strategic-merge-patch design
notes (``$patch``, ``$setElementOrder``, ``$deleteFromPrimitiveList``, ``null``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nodeagent.api.strategicpatch import PatchError, strategic_merge_patch
from nodeagent.objects.apps import Deployment
from nodeagent.objects.cluster import Node
from nodeagent.objects.pod import Pod
from nodeagent.objects.service import Service


def patch_demo() -> dict[str, Any]:
    """The docs' patch-demo Deployment."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "patch-demo"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{"name": "patch-demo-ctr", "image": "nginx"}],
                    "tolerations": [{"effect": "NoSchedule", "key": "dedicated",
                                     "value": "test-team"}]}}}}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def test_a_container_patched_in_is_merged_by_name_before_the_others() -> None:
    out = strategic_merge_patch(patch_demo(), {"spec": {"template": {"spec": {
        "containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}}, Deployment)
    assert pod_spec(out)["containers"] == [
        {"name": "patch-demo-ctr-2", "image": "redis"},
        {"name": "patch-demo-ctr", "image": "nginx"}]
    # tolerations untouched, and the input not changed
    assert pod_spec(out)["tolerations"][0]["key"] == "dedicated"


def test_tolerations_have_no_strategy_and_are_replaced() -> None:
    out = strategic_merge_patch(patch_demo(), {"spec": {"template": {"spec": {
        "tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}},
        Deployment)
    assert pod_spec(out)["tolerations"] == [
        {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]
    assert pod_spec(out)["containers"] == [{"name": "patch-demo-ctr", "image": "nginx"}]


def test_retain_keys_clears_the_fields_not_named() -> None:
    merged = strategic_merge_patch(patch_demo(), {"spec": {"strategy": {"type": "Recreate"}}},
                                   Deployment)
    # Without the directive the old rollingUpdate stays (which validation then refuses).
    assert merged["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%"
    out = strategic_merge_patch(patch_demo(), {"spec": {"strategy": {
        "$retainKeys": ["type"], "type": "Recreate"}}}, Deployment)
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_name_every_field_the_patch_sets() -> None:
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(patch_demo(), {"spec": {"strategy": {
            "$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}}, Deployment)
    assert err.value.status == 400 and "rollingUpdate" in str(err.value)


def two_containers() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [
            {"name": "a", "image": "busybox:1",
             "ports": [{"containerPort": 80, "protocol": "TCP"},
                       {"containerPort": 443, "protocol": "TCP"}],
             "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
             "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
            {"name": "b", "image": "busybox:1"}],
        "volumes": [{"name": "v", "emptyDir": {}}]}}


def test_one_container_patched_by_name_keeps_the_other_and_its_own_lists() -> None:
    """The data loss the issue reports: a merge patch would drop container b and a's ports
    and env."""
    before = two_containers()
    kept = copy.deepcopy(before)
    out = strategic_merge_patch(before, {"spec": {"containers": [
        {"name": "a", "image": "busybox:2"}]}}, Pod)
    a, b = out["spec"]["containers"]
    assert a["image"] == "busybox:2" and a["ports"] == kept["spec"]["containers"][0]["ports"]
    assert a["env"] == kept["spec"]["containers"][0]["env"] and b["name"] == "b"
    assert before == kept


def test_nested_lists_merge_by_their_own_keys() -> None:
    out = strategic_merge_patch(two_containers(), {"spec": {"containers": [
        {"name": "a", "env": [{"name": "Y", "value": "changed"}, {"name": "Z", "value": "3"}],
         "ports": [{"containerPort": 8080}]}]}}, Pod)
    a = out["spec"]["containers"][0]
    # Y changed in place, Z new: patch items first in the patch's order, X where it was.
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "changed"},
                        {"name": "Z", "value": "3"}]
    assert [p["containerPort"] for p in a["ports"]] == [8080, 80, 443]


def test_patch_delete_removes_one_element_by_key() -> None:
    out = strategic_merge_patch(two_containers(), {"spec": {"containers": [
        {"name": "b", "$patch": "delete"}]}}, Pod)
    assert [c["name"] for c in out["spec"]["containers"]] == ["a"]
    out = strategic_merge_patch(two_containers(), {"spec": {"containers": [
        {"name": "a", "env": [{"name": "X", "$patch": "delete"}]}]}}, Pod)
    assert out["spec"]["containers"][0]["env"] == [{"name": "Y", "value": "2"}]


def test_patch_replace_in_a_list_makes_the_patch_the_whole_list() -> None:
    out = strategic_merge_patch(two_containers(), {"spec": {"containers": [
        {"name": "c", "image": "nginx"}, {"$patch": "replace"}]}}, Pod)
    assert out["spec"]["containers"] == [{"name": "c", "image": "nginx"}]


def test_patch_replace_in_a_map_replaces_the_map() -> None:
    obj = two_containers()
    obj["metadata"]["labels"] = {"app": "kubia", "tier": "web"}
    out = strategic_merge_patch(obj, {"metadata": {"labels": {
        "$patch": "replace", "app": "other"}}}, Pod)
    assert out["metadata"]["labels"] == {"app": "other"}
    merged = strategic_merge_patch(obj, {"metadata": {"labels": {"app": "other"}}}, Pod)
    assert merged["metadata"]["labels"] == {"app": "other", "tier": "web"}


def test_patch_delete_in_a_map_empties_it() -> None:
    obj = two_containers()
    obj["metadata"]["labels"] = {"app": "kubia"}
    out = strategic_merge_patch(obj, {"metadata": {"labels": {"$patch": "delete"}}}, Pod)
    assert not out["metadata"]["labels"]


def test_null_deletes_a_field_and_is_ignored_where_there_is_none() -> None:
    out = strategic_merge_patch(two_containers(), {"spec": {"containers": [
        {"name": "a", "env": None}]}, "metadata": {"labels": None}}, Pod)
    assert "env" not in out["spec"]["containers"][0]
    assert "labels" not in out["metadata"]


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    obj = two_containers()
    obj["metadata"]["finalizers"] = ["x.io/a", "x.io/b"]
    out = strategic_merge_patch(obj, {"metadata": {"finalizers": ["x.io/c", "x.io/a"]}}, Pod)
    assert out["metadata"]["finalizers"] == ["x.io/c", "x.io/a", "x.io/b"]
    out = strategic_merge_patch(obj, {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["x.io/a"]}}, Pod)
    assert out["metadata"]["finalizers"] == ["x.io/b"]


def test_set_element_order_orders_the_merged_list() -> None:
    obj = two_containers()
    obj["spec"]["containers"].append({"name": "c", "image": "busybox:1"})
    # kubectl apply's patch: the full order, and only what changed.
    out = strategic_merge_patch(obj, {"spec": {
        "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}],
        "containers": [{"name": "a", "image": "busybox:9"}]}}, Pod)
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a", "b"]
    assert out["spec"]["containers"][1]["image"] == "busybox:9"
    assert out["spec"]["containers"][1]["ports"]  # a merged, not replaced


def test_set_element_order_keeps_server_only_elements_in_place() -> None:
    obj = two_containers()
    obj["spec"]["containers"].append({"name": "c", "image": "busybox:1"})
    # The patch knows of a and c only (b was added by someone else): b stays between them.
    out = strategic_merge_patch(obj, {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}]}}, Pod)
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "b", "c"]


def test_set_element_order_must_name_what_the_patch_has() -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch(two_containers(), {"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "z", "image": "x"}]}}, Pod)


def test_service_ports_merge_by_port_and_conditions_by_type() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "a"}}}
    out = strategic_merge_patch(svc, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}},
                                Service)
    assert [p["port"] for p in out["spec"]["ports"]] == [443, 80]
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {
        "conditions": [{"type": "Ready", "status": "True"},
                       {"type": "MemoryPressure", "status": "False"}]}}
    out = strategic_merge_patch(node, {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "KubeletDown"}]}}, Node)
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "False", "reason": "KubeletDown"},
        {"type": "MemoryPressure", "status": "False"}]


@pytest.mark.parametrize("patch, status", [
    ({"spec": {"containers": [{"image": "no-name"}]}}, 422),
    ({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}, 400),
    ({"spec": {"containers": [{"name": "a", "$patch": "explode"}]}}, 400),
    ({"spec": {"$patch": "merge"}}, 400),
    ({"spec": {"$retainKeys": "containers"}}, 400),
    ({"spec": {"$setElementOrder/containers": {"name": "a"}}}, 400),
    ({"spec": {"containers": [["nested"]]}}, 422),
])
def test_malformed_patches_are_refused_with_the_reason(patch: Any, status: int) -> None:
    with pytest.raises(PatchError) as err:
        strategic_merge_patch(two_containers(), patch, Pod)
    assert err.value.status == status and str(err.value)


def test_a_patch_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PatchError):
        strategic_merge_patch(two_containers(), ["not", "a", "map"], Pod)


def test_long_lists_merge_by_key_lookup() -> None:
    """20,000 containers patched by 20,000 (half new, half changed, some deleted): found
    by a loose review to take 26 s of CPU when each patch element scanned the list; the
    result is checked here, and the suite would show the time if the scan came back."""
    n = 20_000
    original = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": f"c{i}", "image": "old"} for i in range(n)]}}
    patch = {"spec": {"containers": [
        *({"name": f"c{i}", "image": "new"} for i in range(0, n, 2)),
        *({"name": f"c{i}", "$patch": "delete"} for i in range(1, n, 4)),
        *({"name": f"d{i}", "image": "added"} for i in range(n // 2))]}}
    out = strategic_merge_patch(original, patch, Pod)["spec"]["containers"]
    by_name = {c["name"]: c["image"] for c in out}
    assert len(out) == n - n // 4 + n // 2 == len(by_name)
    assert by_name["c0"] == "new" and by_name["c3"] == "old" and "c1" not in by_name
    assert by_name[f"d{n // 2 - 1}"] == "added"
