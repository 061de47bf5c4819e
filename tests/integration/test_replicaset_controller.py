"""The ReplicaSet controller against the real object store.  Pod status is written the
way the pod manager writes it (through the status subresource), which is all the
controller reads of a pod's life."""

from __future__ import annotations

import time

from nodeagent.coordinator.replicaset import ReplicaSetController, deletion_rank
from nodeagent.objects.kinds import EVENTS, PODS, REPLICASETS


def rs_body(name: str = "kubia", replicas: int = 3, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "containers": [{"name": "app", "image": "kubia:latest"}]}}, **spec}}


def pods(objects, selector: str = "app=kubia") -> list[dict]:
    return [p for p in objects.list(PODS, "default", label_selector=selector)["items"]
            if not p["metadata"].get("deletionTimestamp")]


async def set_phase(objects, pod: dict, phase: str, ready: bool,
                    since: float | None = None) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since or time.time()))
    pod = objects.get(PODS, "default", pod["metadata"]["name"])
    pod["status"] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp}]}
    await objects.update(PODS, "default", pod["metadata"]["name"], pod, subresource="status")


async def test_creates_replicas_owned_and_labelled_and_reports_status(objects):
    await objects.create(REPLICASETS, "default", rs_body(replicas=3))
    ctl = ReplicaSetController(objects)
    await ctl.sync()
    made = pods(objects)
    assert len(made) == 3
    for p in made:
        assert p["metadata"]["name"].startswith("kubia-")
        ref = p["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("ReplicaSet", "kubia", True)
    await ctl.sync()
    assert len(pods(objects)) == 3  # level-triggered: a second pass creates nothing
    for p in made:
        await set_phase(objects, p, "Running", ready=True)
    await ctl.sync()
    status = objects.get(REPLICASETS, "default", "kubia")["status"]
    assert status["replicas"] == 3 and status["readyReplicas"] == 3
    assert status["availableReplicas"] == 3 and status["observedGeneration"] == 1
    reasons = [e["reason"] for e in objects.list(EVENTS, "default")["items"]]
    assert reasons.count("SuccessfulCreate") == 3


async def test_a_deleted_pod_is_replaced_and_scale_down_removes_the_least_useful(objects):
    await objects.create(REPLICASETS, "default", rs_body(replicas=3))
    ctl = ReplicaSetController(objects)
    await ctl.sync()
    a, b, _pending = pods(objects)
    await set_phase(objects, a, "Running", ready=True)
    await set_phase(objects, b, "Running", ready=False)
    # the third stays Pending
    await objects.delete(PODS, "default", a["metadata"]["name"])
    await ctl.sync()
    now = pods(objects)
    assert len(now) == 3 and a["metadata"]["name"] not in {p["metadata"]["name"] for p in now}
    # Scale to 1: the pending ones (the third and the replacement) go before the running one.
    rs = objects.get(REPLICASETS, "default", "kubia")
    rs["spec"]["replicas"] = 1
    await objects.update(REPLICASETS, "default", "kubia", rs)
    await ctl.sync()
    left = pods(objects)
    assert [p["metadata"]["name"] for p in left] == [b["metadata"]["name"]]


def test_deletion_rank_orders_as_kubernetes():
    def pod(name, node=None, phase="Running", ready=False, restarts=0, created="2026-01-01T00:00:00Z"):
        return {"metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node} if node else {},
                "status": {"phase": phase, "conditions": [
                    {"type": "Ready", "status": "True" if ready else "False",
                     "lastTransitionTime": "2026-01-01T00:00:10Z"}],
                    "containerStatuses": [{"restartCount": restarts}]}}
    ranked = sorted([
        pod("ready-old", "n1", ready=True),
        pod("unscheduled", None, phase="Pending"),
        pod("pending", "n1", phase="Pending"),
        pod("crashy", "n1", restarts=5),
        pod("running", "n1"),
        pod("running-newer", "n1", created="2026-01-02T00:00:00Z"),
    ], key=deletion_rank)
    assert [p["metadata"]["name"] for p in ranked] == [
        "unscheduled", "pending", "crashy", "running-newer", "running", "ready-old"]


async def test_orphans_are_adopted_and_relabelled_pods_released(objects):
    orphan = await objects.create(PODS, "default", {
        "metadata": {"name": "orphan", "labels": {"app": "kubia"}},
        "spec": {"containers": [{"name": "app", "image": "kubia:latest"}]}})
    await objects.create(REPLICASETS, "default", rs_body(replicas=2))
    ctl = ReplicaSetController(objects)
    await ctl.sync()
    mine = pods(objects)
    assert len(mine) == 2 and "orphan" in {p["metadata"]["name"] for p in mine}
    assert objects.get(PODS, "default", "orphan")["metadata"]["ownerReferences"][0]["uid"] == \
        objects.get(REPLICASETS, "default", "kubia")["metadata"]["uid"]
    # Relabel it out of the selector: released (no owner) and replaced.
    pod = objects.get(PODS, "default", "orphan")
    pod["metadata"]["labels"] = {"app": "debug"}
    await objects.update(PODS, "default", "orphan", pod)
    await ctl.sync()
    assert "ownerReferences" not in objects.get(PODS, "default", "orphan")["metadata"]
    assert len(pods(objects)) == 2 and orphan["metadata"]["name"] not in {
        p["metadata"]["name"] for p in pods(objects)}


async def test_min_ready_seconds_delays_availability_and_asks_to_look_again(objects):
    await objects.create(REPLICASETS, "default", rs_body(replicas=1, minReadySeconds=30))
    clock = [time.time()]
    ctl = ReplicaSetController(objects, clock=lambda: clock[0])
    await ctl.sync()
    (p,) = pods(objects)
    await set_phase(objects, p, "Running", ready=True, since=clock[0])
    again = await ctl.sync()
    assert objects.get(REPLICASETS, "default", "kubia")["status"].get("availableReplicas", 0) == 0
    assert again is not None and 25 < again <= 31
    clock[0] += 31
    await ctl.sync()
    assert objects.get(REPLICASETS, "default", "kubia")["status"]["availableReplicas"] == 1
