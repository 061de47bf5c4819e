"""The garbage collector with the Deployment and ReplicaSet controllers against the real
object store: background, foreground and orphan deletion as kubectl asks for them."""

from __future__ import annotations

import pytest

from nodeagent.api.status import ApiError
from nodeagent.coordinator.deployment import DeploymentController
from nodeagent.coordinator.garbage import GarbageCollector
from nodeagent.coordinator.replicaset import ReplicaSetController
from nodeagent.objects.kinds import DEPLOYMENTS, PODS, REPLICASETS


async def deployed(objects):
    await objects.create(DEPLOYMENTS, "default", {"metadata": {"name": "kubia"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "kubia"}},
        "template": {"metadata": {"labels": {"app": "kubia"}}, "spec": {
            "containers": [{"name": "app", "image": "kubia:latest"}]}}}})
    ctls = [DeploymentController(objects), ReplicaSetController(objects), GarbageCollector(objects)]
    await passes(ctls)
    assert len(objects.list(PODS, "default")["items"]) == 2
    return ctls


async def passes(ctls, n: int = 6) -> None:
    """Controller passes, as the reconcile loops would run them on each change (a
    foreground chain needs one pass per level: each pass works from one listing)."""
    for _ in range(n):
        for c in ctls:
            await c.sync()


def count(objects, res) -> int:
    return len(objects.list(res, "default")["items"])


async def test_background_deletion_takes_replicasets_and_pods(objects):
    ctls = await deployed(objects)
    await objects.delete(DEPLOYMENTS, "default", "kubia")
    await passes(ctls)
    assert (count(objects, REPLICASETS), count(objects, PODS)) == (0, 0)


async def test_foreground_deletion_keeps_the_owner_until_dependents_are_gone(objects):
    ctls = await deployed(objects)
    obj, gone = await objects.delete(DEPLOYMENTS, "default", "kubia", propagation="Foreground")
    assert not gone and "foregroundDeletion" in obj["metadata"]["finalizers"]
    assert objects.get(DEPLOYMENTS, "default", "kubia")["metadata"]["deletionTimestamp"]
    await passes(ctls)
    assert (count(objects, DEPLOYMENTS), count(objects, REPLICASETS), count(objects, PODS)) == (0, 0, 0)


async def test_orphan_deletion_leaves_the_pods_running_without_an_owner(objects):
    ctls = await deployed(objects)
    (rs,) = objects.list(REPLICASETS, "default")["items"]
    await objects.delete(DEPLOYMENTS, "default", "kubia", propagation="Orphan")
    await passes(ctls)
    assert count(objects, DEPLOYMENTS) == 0
    assert "ownerReferences" not in objects.get(REPLICASETS, "default", rs["metadata"]["name"])["metadata"]
    await objects.delete(REPLICASETS, "default", rs["metadata"]["name"], propagation="Orphan")
    await passes(ctls)
    left = objects.list(PODS, "default")["items"]
    assert len(left) == 2 and all("ownerReferences" not in p["metadata"] for p in left)


async def test_an_unknown_propagation_policy_is_a_clear_error(objects):
    await deployed(objects)
    with pytest.raises(ApiError) as exc:
        await objects.delete(DEPLOYMENTS, "default", "kubia", propagation="Sideways")
    assert exc.value.code == 400 and 'propagationPolicy: Unsupported value: "Sideways"' in exc.value.message
