"""Field ownership as the apiserver's structured-merge-diff keeps it (the cases of the
"Server-Side Apply" documentation): FieldsV1 as kubectl shows it, an update taking the
fields it changed, conflicts, forcing, co-ownership, removal of dropped fields, and the
first apply to an object that was never applied."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nodeagent.api import managedfields as mf
from nodeagent.api.strategicpatch import strategic_merge_patch
from nodeagent.objects.apps import Deployment

V = "apps/v1"


def deployment(replicas: int = 1, env: list[dict[str, str]] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": "kubia:v1"}
    if env is not None:
        container["env"] = env
    meta: dict[str, Any] = {"name": "d"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": V, "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [container]}}}}


def merge(live: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return strategic_merge_patch(live, config, Deployment)


def apply(live: dict[str, Any] | None, config: dict[str, Any], who: str,
          force: bool = False) -> dict[str, Any]:
    return mf.apply_config(live, config, Deployment, mf.Manager(who, "Apply"), V, "t",
                           force, merge)


def owned(obj: dict[str, Any], who: str, operation: str = "Apply") -> dict[str, Any]:
    [entry] = [e for e in obj["metadata"]["managedFields"]
               if (e["manager"], e["operation"]) == (who, operation)]
    return entry["fieldsV1"]


def test_fields_v1_is_kubectls_shape() -> None:
    obj = apply(None, deployment(env=[{"name": "A", "value": "1"}], labels={"x": "y"}), "k")
    assert owned(obj, "k") == {
        "f:metadata": {"f:labels": {".": {}, "f:x": {}}},
        "f:spec": {"f:replicas": {}, "f:selector": {"f:matchLabels": {".": {}, "f:app": {}}},
                   "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                                  "f:spec": {"f:containers": {'k:{"name":"web"}': {
                                      ".": {}, "f:name": {}, "f:image": {},
                                      "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {},
                                                                   "f:value": {}}}}}}}}}
    # Read back exactly.
    assert mf.to_fields_v1(mf.from_fields_v1(owned(obj, "k"))) == owned(obj, "k")


def test_a_conflict_names_field_and_owner_and_force_takes_it() -> None:
    obj = apply(None, deployment(replicas=1), "a")
    with pytest.raises(mf.Conflict) as caught:
        apply(obj, deployment(replicas=3), "b")
    assert caught.value.fields == [(".spec.replicas", "a", V)]
    # The same value is no conflict: both own it.
    shared = apply(obj, deployment(replicas=1), "b")
    assert "f:replicas" in owned(shared, "a")["f:spec"]
    assert "f:replicas" in owned(shared, "b")["f:spec"]
    forced = apply(obj, deployment(replicas=3), "b", force=True)
    assert forced["spec"]["replicas"] == 3
    assert "f:replicas" not in owned(forced, "a")["f:spec"]


def test_a_dropped_field_goes_unless_someone_else_holds_it() -> None:
    a, b = {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
    obj = apply(None, deployment(env=[a, b]), "one")
    obj = apply(obj, deployment(env=[b]), "two")  # two co-owns B
    obj = apply(obj, deployment(env=[a]), "one")  # one drops B: two still holds it
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [a, b]
    obj = apply(obj, deployment(env=[]), "two")
    obj = apply(obj, deployment(env=[a]), "one")
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [a]


def test_an_update_takes_the_fields_it_changed() -> None:
    old = apply(None, deployment(replicas=1, labels={"x": "y"}), "kubectl")
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["metadata"]["labels"]["team"] = "blue"
    new["metadata"]["managedFields"] = mf.track_update(old, new, Deployment,
                                                      mf.Manager("scaler"), V, "t2")
    assert owned(new, "scaler", "Update") == {
        "f:metadata": {"f:labels": {"f:team": {}}}, "f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in owned(new, "kubectl")["f:spec"]
    # Now the applier's old value is a conflict with the updater.
    with pytest.raises(mf.Conflict) as caught:
        apply(new, deployment(replicas=1, labels={"x": "y"}), "kubectl")
    assert caught.value.fields == [(".spec.replicas", "scaler", V)]


def test_the_first_apply_finds_the_fields_before_it_owned_by_before_first_apply() -> None:
    created = deployment(replicas=2)  # a plain create: no managed fields
    with pytest.raises(mf.Conflict) as caught:
        apply(created, deployment(replicas=3), "kubectl")
    assert caught.value.fields == [(".spec.replicas", mf.BEFORE_FIRST_APPLY, V)]
    same = apply(created, deployment(replicas=2), "kubectl")
    assert {e["manager"] for e in same["metadata"]["managedFields"]} == {
        "kubectl", mf.BEFORE_FIRST_APPLY}


def test_an_update_that_changes_nothing_records_nothing() -> None:
    old = apply(None, deployment(), "kubectl")
    again = mf.track_update(old, copy.deepcopy(old), Deployment, mf.Manager("x"), V, "t2")
    assert again == old["metadata"]["managedFields"]


def test_many_updaters_merge_into_ancient_changes() -> None:
    obj = apply(None, deployment(), "kubectl")
    for i in range(15):
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("labels", {})[f"l{i}"] = "v"
        new["metadata"]["managedFields"] = mf.track_update(obj, new, Deployment,
                                                          mf.Manager(f"m{i}"), V, f"t{i:02}")
        obj = new
    names = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(names) <= mf.MAX_UPDATERS + 1 and mf.ANCIENT in names and "m14" in names


def test_a_huge_object_is_tracked_by_its_top_level_fields() -> None:
    big = deployment(env=[{"name": f"E{i}", "value": "v"} for i in range(mf.MAX_PATHS + 1)])
    entries = mf.track_update(None, big, Deployment, mf.Manager("m"), V, "t")
    assert entries[0]["fieldsV1"] == {"f:spec": {}}  # metadata: only its name, unowned


@pytest.mark.parametrize("bad", [
    {"f:spec": "x"}, {"q:spec": {}}, {"k:{not json": {}},
    {"f:a" * 1: {"f:b": {"f:c": {}}}} | {f"f:{i}": {} for i in range(mf.MAX_PATHS + 1)},
])
def test_malformed_fields_v1_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(mf.FieldsError):
        mf.entries_of({"managedFields": [{"manager": "m", "operation": "Update",
                                          "fieldsType": "FieldsV1", "fieldsV1": bad}]})
