"""events.k8s.io/v1 <-> core/v1 Event: the conversion loses nothing either way."""

from __future__ import annotations

from nodeagent.objects import eventsv1
from nodeagent.objects.cluster import Event as CoreEvent

CORE = {
    "apiVersion": "v1", "kind": "Event",
    "metadata": {"name": "e", "namespace": "default", "resourceVersion": "7"},
    "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "u",
                       "fieldPath": "spec.containers{c}"},
    "reason": "Started", "message": "started", "source": {"component": "kubelet",
                                                          "host": "n1"},
    "firstTimestamp": "2026-12-06T00:00:00Z", "lastTimestamp": "2026-12-06T00:01:00Z",
    "count": 4, "type": "Normal", "eventTime": "2026-12-06T00:00:00.000001Z",
    "series": {"count": 4, "lastObservedTime": "2026-12-06T00:01:00.000001Z"},
    "action": "Start", "related": {"kind": "Node", "name": "n1"},
    "reportingComponent": "kubelet", "reportingInstance": "n1",
}


def test_every_core_field_has_its_newer_name_and_comes_back() -> None:
    v1 = eventsv1.from_core(CORE)
    assert v1["apiVersion"] == "events.k8s.io/v1"
    assert v1["regarding"] == CORE["involvedObject"] and v1["note"] == "started"
    assert v1["deprecatedCount"] == 4 and v1["reportingController"] == "kubelet"
    assert v1["deprecatedSource"] == CORE["source"]
    assert eventsv1.Event.model_validate(v1).dump() == v1  # every field is the model's
    assert eventsv1.to_core(v1) == CORE
    assert CoreEvent.model_validate(CORE).dump() == CORE


def test_an_event_about_nothing_has_no_regarding() -> None:
    core = eventsv1.to_core({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                             "metadata": {"name": "x"}})
    assert core["involvedObject"] == {}
    assert "regarding" not in eventsv1.from_core(core)
