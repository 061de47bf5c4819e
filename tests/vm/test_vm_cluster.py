"""Three real Debian 12 VMs (scripts/vmlab's own under qemu, or the ones `vagrant up` makes
with libvirt; KVM where it works, else software emulation), each running the agent under
systemd as scripts/install sets it up: the
cluster forms, kubia answers through every VM's NodePort from the host side of the lab
bridge, the cgroup v2 driver enforces a memory limit and reports OOMKilled, and a VM
powered off goes NotReady and its pods are replaced on the others.

Run by `scripts/vmlab test` (or `scripts/vmlab vagrant-test`), which boots the VMs, runs
this inside the lab's network namespace and takes them down: 5-10 minutes under emulation,
so not in scripts/test.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from guests import KUBECONFIG, power_off, running, sh
from waiting import until

ROOT = Path(__file__).resolve().parents[2]
API = "https://192.168.56.11:6443"
pytestmark = pytest.mark.skipif(running() is not None, reason=str(running()))


def _admin() -> httpx.Client:
    """The cluster's admin, as VM 1's admin kubeconfig (which the lab copied out) says."""
    from nodeagent.api.kubeconfig import load
    return httpx.Client(verify=load(str(KUBECONFIG)).ssl_context(), timeout=10)


ADMIN = _admin() if running() is None else None


def get(path: str, api: str = API) -> Any:
    assert ADMIN is not None
    r = ADMIN.get(api + path)
    r.raise_for_status()
    return r.json()


def ready_nodes(api: str = API) -> set[str]:
    return {n["metadata"]["name"] for n in get("/api/v1/nodes", api)["items"]
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}


def nodectl(*args: str, stdin: str | None = None) -> str:
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "nodectl"), "--server", API, *args],
                       input=stdin, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "KUBECONFIG": str(KUBECONFIG)})
    assert p.returncode == 0, p.stderr
    return p.stdout


def kubia_ready(exclude: str = "") -> list[dict[str, Any]]:
    return [p for p in get("/api/v1/namespaces/default/pods?labelSelector=app=kubia")["items"]
            if not p["metadata"].get("deletionTimestamp") and p["spec"].get("nodeName") != exclude
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions") or [])]


def test_three_vms_form_a_cluster_with_systemd_running_the_agent():
    until(lambda: ready_nodes() == {"node1", "node2", "node3"}, 600, "3 Ready nodes")
    nodes = get("/api/v1/nodes")["items"]
    host_kernel = os.uname().release
    for n in nodes:  # the guests' own Debian kernel, not this machine's
        info = n["status"]["nodeInfo"]
        assert info["osImage"].startswith("Debian GNU/Linux 12") and info["kernelVersion"] != host_kernel
    leaders = [i for i in (1, 2, 3) if get("/raft", f"https://192.168.56.1{i}:6443")["role"] == "leader"]
    assert len(leaders) == 1


def test_kubia_answers_through_every_vms_nodeport():
    nodectl("apply", "-f", str(ROOT / "examples"))
    pods = until(lambda: (lambda r: r if len(r) == 3 else None)(kubia_ready()), 600,
                 "3 kubia pods Ready")
    assert len({p["spec"]["nodeName"] for p in pods}) == 3  # one per VM
    names = {p["metadata"]["name"] for p in pods}
    for i in (1, 2, 3):  # each node's rules follow the endpoints a moment later
        until(lambda i=i: httpx.get(f"http://192.168.56.1{i}:30080/", timeout=10).is_success,
              120, f"node{i}'s NodePort")
        seen = {httpx.get(f"http://192.168.56.1{i}:30080/", timeout=10).text.split()[-1]
                for _ in range(6)}
        assert seen <= names and seen, seen


OOM = """
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
    - name: hog
      image: busybox:latest
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "head -c 200m /dev/zero | tail"]
      resources: {limits: {memory: 32Mi}}
"""


def test_the_cgroup_v2_driver_enforces_a_memory_limit_and_reports_oomkilled():
    nodectl("apply", "-f", "-", stdin=OOM)

    def terminated() -> dict[str, Any] | None:
        pod = get("/api/v1/namespaces/default/pods/hog")
        for st in pod["status"].get("containerStatuses") or []:
            if "terminated" in st.get("state", {}):
                return st["state"]["terminated"]
        return None
    term = until(terminated, 300, "the hog to be stopped")
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137, term
    assert get("/api/v1/namespaces/default/pods/hog")["status"]["phase"] == "Failed"


def unit(i: int) -> dict[str, str]:
    out = sh(i, "systemctl show -p MainPID -p NRestarts -p ActiveState nodeagent")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def pods_on(node: str) -> dict[str, tuple[int, str]]:
    """uid -> (restarts, started at) of the kubia pods on the node."""
    out = {}
    for p in kubia_ready():
        if p["spec"]["nodeName"] == node:
            st = p["status"]["containerStatuses"][0]
            out[p["metadata"]["uid"]] = (st["restartCount"], st["state"]["running"]["startedAt"])
    return out


def test_an_agent_restart_by_systemd_keeps_the_pods_running():
    """KillMode=process: systemd stops the agent, not its launcher and pods."""
    before_unit, before_pods = unit(1), pods_on("node1")
    assert before_unit["ActiveState"] == "active" and before_pods
    sh(1, "systemctl restart nodeagent")
    after = until(lambda: (lambda u: u if u["ActiveState"] == "active" and
                           u["MainPID"] != before_unit["MainPID"] else None)(unit(1)),
                  300, "the agent restarted")
    until(lambda: "node1" in ready_nodes(), 300, "node1 Ready again")
    assert pods_on("node1") == before_pods  # same pods, no restart, same start time
    assert after["MainPID"] != before_unit["MainPID"]


STEADY = """
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  nodeSelector: {kubernetes.io/hostname: node1}
  tolerations:  # stays bound while its node's agent is away (not evicted after 30 s)
    - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute,
       tolerationSeconds: 900}
  containers:
    - {name: sleep, image: busybox:latest, imagePullPolicy: IfNotPresent,
       command: [sleep, "100000"]}
"""


def steady() -> tuple[str, int, str] | None:
    pod = get("/api/v1/namespaces/default/pods/steady")
    st = (pod["status"].get("containerStatuses") or [{}])[0]
    if "running" not in st.get("state", {}):
        return None
    return pod["metadata"]["uid"], st["restartCount"], st["state"]["running"]["startedAt"]


def test_a_wedged_agent_is_restarted_by_the_watchdog_and_its_pods_keep_running():
    """WatchdogSec=30s: an agent that stops answering (SIGSTOP) is killed and restarted by
    systemd (Restart=on-failure); its pods keep running (KillMode=process).  The pod
    tolerates the unreachable taint, as it would otherwise be evicted while the agent is
    away that long."""
    nodectl("apply", "-f", "-", stdin=STEADY)
    before_pod = until(steady, 300, "the steady pod running")
    before_unit = unit(1)
    sh(1, "systemctl kill --kill-whom=main -s SIGSTOP nodeagent")
    after = until(lambda: (lambda u: u if u["ActiveState"] == "active" and
                           int(u["NRestarts"]) > int(before_unit["NRestarts"]) else None)(unit(1)),
                  300, "systemd to restart the wedged agent")
    assert after["MainPID"] != before_unit["MainPID"]
    assert "Failed with result 'watchdog'" in sh(1, "journalctl -u nodeagent --no-pager | tail -50")
    until(lambda: "node1" in ready_nodes(), 300, "node1 Ready again")
    assert until(steady, 300, "the steady pod seen running again") == before_pod


def test_a_vm_powered_off_goes_not_ready_and_its_pods_are_replaced():
    pods = kubia_ready()
    victim = next(p["spec"]["nodeName"] for p in pods if p["spec"]["nodeName"] != "node1")
    i = int(victim[4:])
    power_off(i)
    t0 = time.monotonic()
    until(lambda: victim not in ready_nodes(), 120, f"{victim} NotReady")
    print(f"\n{victim} NotReady {time.monotonic() - t0:.1f} s after its VM was powered off")
    until(lambda: len(kubia_ready(exclude=victim)) == 3, 600, "3 Ready pods on the other VMs")
    print(f"replaced {time.monotonic() - t0:.1f} s after")
