"""Events expire an hour after they last happened (kube-apiserver's --event-ttl), against
the real object store; an event that happened again recently is kept."""

from __future__ import annotations

import time

from nodeagent.coordinator.eventttl import EventExpiry
from nodeagent.events import EventRecorder
from nodeagent.objects.kinds import EVENTS, PODS


async def test_events_older_than_the_ttl_are_deleted_and_recent_ones_kept(objects):
    pod = await objects.create(PODS, "default", {"metadata": {"name": "web"}, "spec": {
        "containers": [{"name": "app", "image": "kubia:latest"}]}})
    recorder = EventRecorder(objects, "kubelet", "node1")
    await recorder.record(pod, "Normal", "Pulled", "old news")
    await recorder.record(pod, "Warning", "BackOff", "still happening")
    names = {e["message"]: e["metadata"]["name"]
             for e in objects.list(EVENTS, "default")["items"]}
    # An hour and a bit later, as the coordinator's clock sees it; the back-off happened
    # again a minute ago.
    later = time.time() + 3700
    again = objects.get(EVENTS, "default", names["still happening"])
    again["lastTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later - 60))
    await objects.update(EVENTS, "default", again["metadata"]["name"], again)
    assert await EventExpiry(objects, clock=lambda: later).sync() == 60.0
    left = [e["message"] for e in objects.list(EVENTS, "default")["items"]]
    assert left == ["still happening"]
    # Within the hour nothing goes.
    await EventExpiry(objects).sync()
    assert [e["message"] for e in objects.list(EVENTS, "default")["items"]] == left
