"""The Deployment controller with the ReplicaSet controller against the real object store.

Pods are made Running and Ready the way the pod manager reports them (status
subresource), one step at a time, so the rollout's bounds can be checked after every
step: never more than replicas + maxSurge pods, never fewer than replicas -
maxUnavailable ready ones."""

from __future__ import annotations

import time

from nodeagent.coordinator.deployment import DeploymentController, template_hash
from nodeagent.coordinator.replicaset import ReplicaSetController
from nodeagent.objects.kinds import DEPLOYMENTS, EVENTS, PODS, REPLICASETS
from nodeagent.objects.podutil import REVISION, is_ready


def deployment(image: str = "kubia:v1", replicas: int = 4, **spec) -> dict:
    return {"metadata": {"name": "kubia"}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "kubia"}},
        "template": {"metadata": {"labels": {"app": "kubia"}}, "spec": {
            "containers": [{"name": "app", "image": image}]}}, **spec}}


def live_pods(objects) -> list[dict]:
    return [p for p in objects.list(PODS, "default")["items"]
            if not p["metadata"].get("deletionTimestamp")]


async def kubelet_step(objects, ready_limit: int = 1000) -> None:
    """What the pod manager does, compressed: pods being deleted go, new ones become ready."""
    for pod in objects.list(PODS, "default")["items"]:
        name = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp"):
            await objects.delete(PODS, "default", name, grace_period_s=0)
            continue
        if not is_ready(pod) and ready_limit > 0:
            ready_limit -= 1
            pod["status"] = {"phase": "Running", "podIP": "10.244.0.9", "conditions": [{
                "type": "Ready", "status": "True",
                "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}
            await objects.update(PODS, "default", name, pod, subresource="status")


async def settle(objects, dc, rc, *, steps: int = 40, check=None, ready_limit: int = 1000):
    for _ in range(steps):
        await dc.sync()
        await rc.sync()
        if check:
            check()
        await kubelet_step(objects, ready_limit)
        await rc.sync()
        await dc.sync()
        if check:
            check()
        d = objects.get(DEPLOYMENTS, "default", "kubia")
        cond = {c["type"]: c for c in d["status"].get("conditions") or []}
        if cond.get("Progressing", {}).get("reason") == "NewReplicaSetAvailable" and \
                d["status"].get("updatedReplicas") == d["spec"]["replicas"]:
            return d
    raise AssertionError("the rollout did not complete")


async def test_create_then_rolling_update_within_bounds_then_rollback(objects):
    await objects.create(DEPLOYMENTS, "default", deployment(replicas=4, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}))
    dc, rc = DeploymentController(objects), ReplicaSetController(objects)
    d = await settle(objects, dc, rc)
    (rs1,) = objects.list(REPLICASETS, "default")["items"]
    digest = rs1["metadata"]["labels"]["pod-template-hash"]
    assert rs1["metadata"]["name"] == f"kubia-{digest}"
    assert rs1["metadata"]["annotations"][REVISION] == "1"
    assert d["status"]["availableReplicas"] == 4 and d["metadata"]["annotations"][REVISION] == "1"
    assert all(p["metadata"]["labels"]["pod-template-hash"] == digest for p in live_pods(objects))

    def bounds() -> None:
        pods = live_pods(objects)
        assert len(pods) <= 4 + 1, f"{len(pods)} pods: more than replicas + maxSurge"
        assert sum(1 for p in pods if is_ready(p)) >= 4 - 1, "fewer than replicas - maxUnavailable"

    dep = objects.get(DEPLOYMENTS, "default", "kubia")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "kubia:v2"
    await objects.update(DEPLOYMENTS, "default", "kubia", dep)
    d = await settle(objects, dc, rc, check=bounds, ready_limit=1)
    images = {p["spec"]["containers"][0]["image"] for p in live_pods(objects)}
    assert images == {"kubia:v2"} and len(live_pods(objects)) == 4
    assert d["metadata"]["annotations"][REVISION] == "2"
    scaled = [e["message"] for e in objects.list(EVENTS, "default")["items"]
              if e["reason"] == "ScalingReplicaSet"]
    assert any(m.startswith(f"Scaled down replica set kubia-{digest} from ") for m in scaled)

    # Rollback: the old template again reuses the first ReplicaSet, now revision 3.
    dep = objects.get(DEPLOYMENTS, "default", "kubia")
    dep["spec"]["template"] = rs1["spec"]["template"]
    dep["spec"]["template"]["metadata"]["labels"].pop("pod-template-hash")
    await objects.update(DEPLOYMENTS, "default", "kubia", dep)
    d = await settle(objects, dc, rc, check=bounds, ready_limit=1)
    again = objects.get(REPLICASETS, "default", rs1["metadata"]["name"])
    assert again["spec"]["replicas"] == 4 and again["metadata"]["annotations"][REVISION] == "3"
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(objects)} == {"kubia:v1"}


async def test_recreate_stops_old_pods_before_starting_new(objects):
    await objects.create(DEPLOYMENTS, "default", deployment(replicas=2, strategy={"type": "Recreate"}))
    dc, rc = DeploymentController(objects), ReplicaSetController(objects)
    await settle(objects, dc, rc)
    dep = objects.get(DEPLOYMENTS, "default", "kubia")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "kubia:v2"
    await objects.update(DEPLOYMENTS, "default", "kubia", dep)

    def never_mixed() -> None:
        images = {p["spec"]["containers"][0]["image"] for p in objects.list(PODS, "default")["items"]}
        assert len(images) <= 1, f"old and new pods at once: {images}"
    await settle(objects, dc, rc, check=never_mixed)
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(objects)} == {"kubia:v2"}


async def test_scale_pause_history_limit_and_progress_deadline(objects):
    await objects.create(DEPLOYMENTS, "default", deployment(replicas=2, revisionHistoryLimit=1,
                                                    progressDeadlineSeconds=60))
    clock = [time.time()]
    dc, rc = DeploymentController(objects, clock=lambda: clock[0]), ReplicaSetController(objects)
    await settle(objects, dc, rc)
    for image in ("kubia:v2", "kubia:v3"):
        dep = objects.get(DEPLOYMENTS, "default", "kubia")
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = image
        await objects.update(DEPLOYMENTS, "default", "kubia", dep)
        await settle(objects, dc, rc)
    assert len(objects.list(REPLICASETS, "default")["items"]) == 2  # current + 1 of history
    # Scale while paused: replicas follow, the template does not roll.
    dep = objects.get(DEPLOYMENTS, "default", "kubia")
    dep["spec"].update(paused=True, replicas=3)
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "kubia:v4"
    await objects.update(DEPLOYMENTS, "default", "kubia", dep)
    for _ in range(3):
        await dc.sync()
        await rc.sync()
        await kubelet_step(objects)
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(objects)} == {"kubia:v3"}
    assert len(live_pods(objects)) == 3
    cond = {c["type"]: c for c in objects.get(DEPLOYMENTS, "default", "kubia")["status"]["conditions"]}
    assert cond["Progressing"]["reason"] == "DeploymentPaused"
    # Resume with pods that never become ready: past the deadline, ProgressDeadlineExceeded.
    dep = objects.get(DEPLOYMENTS, "default", "kubia")
    dep["spec"]["paused"] = False
    await objects.update(DEPLOYMENTS, "default", "kubia", dep)
    await dc.sync()
    await rc.sync()
    clock[0] += 61
    await dc.sync()
    cond = {c["type"]: c for c in objects.get(DEPLOYMENTS, "default", "kubia")["status"]["conditions"]}
    assert (cond["Progressing"]["status"], cond["Progressing"]["reason"]) == (
        "False", "ProgressDeadlineExceeded")


def test_template_hash_is_stable_and_uses_kubernetes_alphabet():
    t = deployment()["spec"]["template"]
    assert template_hash(t) == template_hash(dict(reversed(list(t.items()))))
    assert template_hash(t) != template_hash(t, collision_count=1)
    assert set(template_hash(t)) <= set("bcdfghjklmnpqrstvwxz2456789")


async def test_templates_stored_before_a_new_default_roll_nothing_out(objects):
    """Templates now get resources: {} (as a real cluster shows them).  A Deployment and
    its ReplicaSet stored without it still match when the Deployment is next written,
    so scaling it rolls nothing out."""
    import orjson

    from nodeagent.store.mvcc import Op, OpKind, Txn
    await objects.create(DEPLOYMENTS, "default", deployment(replicas=1))
    dc, rc = DeploymentController(objects), ReplicaSetController(objects)
    await settle(objects, dc, rc)
    (rs,) = objects.list(REPLICASETS, "default")["items"]
    assert rs["spec"]["template"]["spec"]["containers"][0]["resources"] == {}
    for res, name in ((DEPLOYMENTS, "kubia"), (REPLICASETS, rs["metadata"]["name"])):
        old = objects.get(res, "default", name)
        del old["spec"]["template"]["spec"]["containers"][0]["resources"]
        del old["metadata"]["resourceVersion"]
        await objects.store.txn(Txn(success=(Op(OpKind.PUT, res.key("default", name),
                                                 orjson.dumps(old)),)))
    d = objects.get(DEPLOYMENTS, "default", "kubia")
    d["spec"]["replicas"] = 2
    await objects.update(DEPLOYMENTS, "default", "kubia", d)
    assert objects.get(DEPLOYMENTS, "default", "kubia")["spec"]["template"]["spec"][
        "containers"][0]["resources"] == {}
    await settle(objects, dc, rc)
    assert [r["metadata"]["name"] for r in objects.list(REPLICASETS, "default")["items"]] == \
        [rs["metadata"]["name"]]
