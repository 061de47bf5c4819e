"""events.k8s.io/v1 against one agent: the same events as core/v1 under the newer
names, written, read, patched and watched through either API, by real kubectl and the
official Python client."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from agentproc import AgentProcess

V1 = "/apis/events.k8s.io/v1/namespaces/default/events"
CORE = "/api/v1/namespaces/default/events"


@pytest.fixture(scope="module")
def agent(shared_agent: AgentProcess) -> AgentProcess:
    return shared_agent


@pytest.fixture(scope="module")
def events_v1(k8s_api: k8s.ApiClient) -> k8s.EventsV1Api:
    return k8s.EventsV1Api(k8s_api)


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_event(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default"},
            "eventTime": now_micro(), "type": "Normal", "reason": "Scaled",
            "action": "Scale", "reportingController": "example.com/scaler",
            "reportingInstance": "scaler-1", "note": "scaled kubia to 3",
            "regarding": {"kind": "Deployment", "name": "kubia", "namespace": "default",
                          "apiVersion": "apps/v1"}, **extra}


def test_an_event_written_through_either_api_is_read_through_both(agent: AgentProcess
                                                                  ) -> None:
    with agent.client() as admin:
        r = admin.post(V1, json=new_event("scaled"))
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["apiVersion"] == "events.k8s.io/v1" and made["note"] == "scaled kubia to 3"
        assert made["regarding"]["name"] == "kubia" and "involvedObject" not in made
        core = admin.get(f"{CORE}/scaled").json()
        assert core["apiVersion"] == "v1" and core["message"] == "scaled kubia to 3"
        assert core["involvedObject"]["kind"] == "Deployment"
        assert core["reportingComponent"] == "example.com/scaler"
        assert core["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
        # An old-style core event, as the agent's own recorder writes them.
        r = admin.post(CORE, json={"metadata": {"name": "old"}, "reason": "Pulled",
                                   "message": "pulled", "type": "Normal", "count": 3,
                                   "source": {"component": "kubelet"},
                                   "involvedObject": {"kind": "Pod", "name": "p"}})
        assert r.status_code == 201, r.text
        seen = admin.get(f"{V1}/old").json()
        assert seen["deprecatedCount"] == 3 and seen["note"] == "pulled"
        assert seen["deprecatedSource"] == {"component": "kubelet"}
        assert seen["regarding"] == {"kind": "Pod", "name": "p"}
        listed = admin.get(V1).json()
        assert listed["kind"] == "EventList" and listed["apiVersion"] == "events.k8s.io/v1"
        names = {e["metadata"]["name"]: e for e in listed["items"]}
        assert {"scaled", "old"} <= set(names) and "message" not in names["old"]


def test_field_selectors_use_the_newer_names(agent: AgentProcess) -> None:
    with agent.client() as admin:
        r = admin.post(V1, json=new_event("sel", regarding={"kind": "Pod", "name": "web-1",
                                                            "namespace": "default"}))
        assert r.status_code == 201, r.text
        got = admin.get(V1, params={"fieldSelector": "regarding.name=web-1,"
                                    "reportingController=example.com/scaler"}).json()
        assert [e["metadata"]["name"] for e in got["items"]] == ["sel"]
        assert admin.get(CORE, params={"fieldSelector": "involvedObject.name=web-1"}
                         ).json()["items"][0]["metadata"]["name"] == "sel"


@pytest.mark.parametrize(("change", "field"), [
    ({"eventTime": None}, "eventTime"),
    ({"reportingController": None}, "reportingController"),
    ({"action": None}, "action"),
    ({"reason": "x" * 129}, "reason"),
    ({"note": "n" * 1025}, "note"),
    ({"type": "Fatal"}, "type"),
    ({"deprecatedCount": 2}, "deprecatedCount"),
    ({"series": {"count": 1, "lastObservedTime": "2026-12-06T00:00:00.000000Z"}},
     "series.count"),
    ({"reportingController": "not a name!"}, "reportingController"),
])
def test_a_new_event_is_held_to_the_newer_apis_rules(agent: AgentProcess,
                                                     change: dict[str, Any],
                                                     field: str) -> None:
    body = {k: v for k, v in {**new_event("bad"), **change}.items() if v is not None}
    with agent.client() as admin:
        r = admin.post(V1, json=body)
    assert r.status_code == 422, r.text
    causes = [c["field"] for c in r.json()["details"]["causes"]]
    assert field in causes, r.text


def test_an_events_identity_is_immutable_but_its_note_is_not(agent: AgentProcess) -> None:
    with agent.client() as admin:
        assert admin.post(V1, json=new_event("imm")).status_code == 201
        r = admin.patch(f"{V1}/imm", json={"note": "scaled kubia to 4",
                                           "series": {"count": 2,
                                                      "lastObservedTime": now_micro()}},
                        headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        assert r.json()["note"] == "scaled kubia to 4" and r.json()["series"]["count"] == 2
        assert admin.get(f"{CORE}/imm").json()["series"]["count"] == 2
        r = admin.patch(f"{V1}/imm", json={"reason": "Other"},
                        headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 422 and "reason" in r.text and "immutable" in r.text, r.text
        r = admin.patch(f"{V1}/imm", json=[{"op": "replace", "path": "/note", "value": "j"}],
                        headers={"Content-Type": "application/json-patch+json"})
        assert r.status_code == 200 and r.json()["note"] == "j", r.text
        r = admin.delete(f"{V1}/imm")
        assert r.status_code == 200 and r.json()["apiVersion"] == "events.k8s.io/v1", r.text
        assert admin.get(f"{CORE}/imm").status_code == 404


def test_the_python_clients_events_v1_api(agent: AgentProcess,
                                          events_v1: k8s.EventsV1Api) -> None:
    seen: list[tuple[str, str]] = []
    started = threading.Event()

    def watch() -> None:
        w = k8s_watch.Watch()
        started.set()
        for ev in w.stream(events_v1.list_namespaced_event, "default",
                           field_selector="regarding.name=watched", timeout_seconds=10):
            seen.append((ev["type"], ev["object"].note))
            if len(seen) == 2:
                w.stop()

    t = threading.Thread(target=watch)
    t.start()
    started.wait()
    body = new_event("pyev", regarding={"kind": "Pod", "name": "watched",
                                        "namespace": "default"})
    made: Any = events_v1.create_namespaced_event("default", body)  # type: ignore[arg-type]
    assert made.regarding.name == "watched" and made.reporting_controller == "example.com/scaler"
    events_v1.patch_namespaced_event("pyev", "default", {"note": "again"})
    t.join(15)
    assert not t.is_alive()
    assert seen == [("ADDED", "scaled kubia to 3"), ("MODIFIED", "again")]
    listed: Any = events_v1.list_namespaced_event("default",
                                                  field_selector="regarding.name=watched")
    assert [e.metadata.name for e in listed.items] == ["pyev"]


def test_kubectl_reads_both_kinds(agent: AgentProcess) -> None:
    with agent.client() as admin:
        admin.post(V1, json=new_event("kc"))
    done = agent.kubectl("get", "events.v1.events.k8s.io", "kc", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["note"] == "scaled kubia to 3"
    table = agent.kubectl("get", "events.events.k8s.io")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["LAST", "SEEN", "TYPE"]
    assert any("deployment/kubia" in r and "scaled kubia to 3" in r for r in rows), table.stdout
    core = agent.kubectl("get", "events", "kc", "-o", "jsonpath={.message}")
    assert core.returncode == 0 and core.stdout == "scaled kubia to 3", core.stderr
    done = agent.kubectl("create", "-f", "-", stdin=json.dumps(new_event("kcf")))
    assert done.returncode == 0, done.stderr
    assert "event.events.k8s.io/kcf created" in done.stdout


def test_kubectl_explains_the_newer_kind(agent: AgentProcess) -> None:
    done = agent.kubectl("explain", "events.regarding", "--api-version=events.k8s.io/v1")
    assert done.returncode == 0, done.stderr
    assert "GROUP:      events.k8s.io" in done.stdout and "ObjectReference" in done.stdout
