"""Pod phase, conditions and container statuses as kubelet writes them; crash-loop back-off."""

from __future__ import annotations

from nodeagent.podmanager.status import (
    ContainerRecord,
    RestartBackoff,
    conditions,
    container_status,
    pod_phase,
)


def rec(state: str, exit_code: int | None = None, crashed_before: bool = False) -> ContainerRecord:
    c = ContainerRecord("app", "kubia:latest", state=state, exit_code=exit_code)
    if crashed_before:
        c.last_state = {"terminated": {"exitCode": 1}}
    return c


def test_phase_follows_kubelet():
    assert pod_phase("Always", [], [rec("waiting")]) == "Pending"
    assert pod_phase("Always", [], [rec("running"), rec("waiting")]) == "Pending"
    assert pod_phase("Always", [], [rec("running")]) == "Running"
    assert pod_phase("Always", [], [rec("waiting", crashed_before=True)]) == "Running"  # restarting
    assert pod_phase("Never", [], [rec("terminated", 0)]) == "Succeeded"
    assert pod_phase("OnFailure", [], [rec("terminated", 0), rec("terminated", 0)]) == "Succeeded"
    assert pod_phase("Never", [], [rec("terminated", 0), rec("terminated", 2)]) == "Failed"
    assert pod_phase("OnFailure", [], [rec("terminated", 2)]) == "Running"
    assert pod_phase("Always", [rec("running")], [rec("waiting")]) == "Pending"  # initialising
    assert pod_phase("Never", [rec("terminated", 1)], [rec("waiting")]) == "Failed"
    assert pod_phase("Always", [rec("terminated", 0)], [rec("running")]) == "Running"


def test_conditions_keep_transition_times_until_they_flip():
    first = conditions(None, "T1", initialized=True, containers_ready=False)
    by = {c["type"]: c for c in first}
    assert by["Ready"] == {"type": "Ready", "status": "False", "lastTransitionTime": "T1",
                           "reason": "ContainersNotReady"}
    second = {c["type"]: c for c in conditions(first, "T2", initialized=True, containers_ready=True)}
    assert second["Ready"]["lastTransitionTime"] == "T2" and second["Ready"]["status"] == "True"
    assert second["Initialized"]["lastTransitionTime"] == "T1"


def test_container_status_shapes():
    c = ContainerRecord("app", "kubia:latest", state="terminated", reason="OOMKilled",
                        exit_code=137, started_at="S", finished_at="F", container_id="nodeagent://x",
                        restart_count=2)
    s = container_status(c)
    assert s["state"] == {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": "S",
                                         "finishedAt": "F", "containerID": "nodeagent://x"}}
    assert s["restartCount"] == 2 and s["containerID"] == "nodeagent://x"
    waiting = container_status(ContainerRecord("app", "x", reason="ImagePullBackOff",
                                               message="Back-off pulling image \"x\""))
    assert waiting["state"] == {"waiting": {"reason": "ImagePullBackOff",
                                            "message": "Back-off pulling image \"x\""}}


def test_crash_loop_backoff_doubles_to_five_minutes_and_resets_after_ten():
    b = RestartBackoff()
    t = 1000.0
    assert b.exited("c", t - 1, t) == t  # the first crash restarts at once
    delays = []
    for _ in range(7):
        t += 1
        not_before = b.exited("c", t - 1, t)
        delays.append(not_before - t)
        t = not_before
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    assert b.waiting("c", t - 100) == 100
    assert "back-off 5m0s restarting failed container=app pod=p" == b.message("c", "app", "p")
    # Ran for ten minutes: forgiven, restarts at once.
    assert b.exited("c", t, t + 600) == t + 600
