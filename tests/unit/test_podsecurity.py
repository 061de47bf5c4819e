"""The Pod Security Standards' checks (api/podsecurity.py), level by level: what each
forbids, in Kubernetes' words, and that a clean pod passes all three."""

from __future__ import annotations

from nodeagent.api.podsecurity import level_of, violations


def pod(**spec) -> dict:
    base = {"containers": [{"name": "c", "image": "busybox"}]}
    return {"metadata": {"name": "p"}, "spec": {**base, **spec}}


def test_levels_come_from_the_label_or_the_default() -> None:
    assert level_of(None, "default") == "baseline"
    assert level_of(None, "kube-system") == "privileged"
    ns = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    assert level_of(ns, "team") == "restricted"
    bad = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "nonsense"}}}
    assert level_of(bad, "team") == "baseline"


def test_baseline_forbids_host_access_and_privilege() -> None:
    evil = pod(hostNetwork=True, hostPID=True,
               volumes=[{"name": "root", "hostPath": {"path": "/"}}],
               containers=[{"name": "c", "image": "x",
                            "securityContext": {"privileged": True,
                                                "capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}},
                            "ports": [{"containerPort": 80, "hostPort": 80}]}])
    found = violations(evil, "baseline")
    assert found == [
        "host namespaces (hostNetwork=true, hostPID=true)",
        'privileged (container "c" must not set securityContext.privileged=true)',
        'non-default capabilities (container "c" must not include "SYS_ADMIN" in '
        "securityContext.capabilities.add)",
        'hostPath volumes (volume "root")',
        "hostPort (container uses hostPort 80)"]
    assert violations(evil, "privileged") == []
    assert violations(pod(), "baseline") == []


def test_restricted_wants_a_hardened_pod() -> None:
    found = violations(pod(), "restricted")
    assert [f.split(" (")[0] for f in found] == [
        "allowPrivilegeEscalation != false", "runAsNonRoot != true", "seccompProfile",
        "unrestricted capabilities"]
    hardened = pod(securityContext={"runAsNonRoot": True, "runAsUser": 1000,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                   containers=[{"name": "c", "image": "x", "securityContext": {
                       "allowPrivilegeEscalation": False,
                       "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
                   volumes=[{"name": "v", "emptyDir": {}}])
    assert violations(hardened, "restricted") == []
    assert violations({**hardened, "spec": {**hardened["spec"], "volumes": [
        {"name": "n", "nfs": {"server": "x", "path": "/"}}]}}, "restricted") == [
        'restricted volume types (volume "n")']
