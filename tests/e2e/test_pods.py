"""Pods for real: an agent in a lab node's namespace with its launcher runs a Deployment
of the kubia image in pod sandboxes, probes gate readiness, the Service answers from
both pods through its ClusterIP, a deleted pod is replaced, and deleting the
Deployment leaves no container, sandbox or mount behind.  Everything lives in
namespaces, cgroups and directories the test makes."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import ssl
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from waiting import needs_root

pytestmark = needs_root("pods (namespaces, cgroups)")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "images"))

from build import build  # noqa: E402
from waiting import until  # noqa: E402

from agentproc import admin_client, kubectl_binary, readyz  # noqa: E402
from containers import remove_cgroup_tree  # noqa: E402
from netns.lab import Lab  # noqa: E402
from runtime.client import LauncherClient  # noqa: E402
from runtime.images import ImageStore  # noqa: E402
from runtime.protocol import LauncherError  # noqa: E402

KUBIA = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: kubia}
spec:
  replicas: 2
  selector: {matchLabels: {app: kubia}}
  template:
    metadata: {labels: {app: kubia}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: kubia
        image: kubia:latest
        imagePullPolicy: IfNotPresent
        ports: [{name: http, containerPort: 8080}]
        env: [{name: GREETING, value: "hi from $(KUBIA_SERVICE_HOST)"}]
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: kubia}
spec:
  selector: {app: kubia}
  ports: [{port: 80, targetPort: http}]
"""


class NodeAgent:
    """The agent of lab node 1, started (and restarted) the way scripts/lab starts it."""

    def __init__(self, lab: Lab, tmp_path: Path, cgroup: str) -> None:
        self.lab, self.tmp_path, self.cgroup = lab, tmp_path, cgroup
        self.sock = str(tmp_path / "launcher.sock")
        self.api = f"https://{lab.node_address(1)}:6443"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.tmp_path / "agent.log", "ab")
        self.proc = subprocess.Popen(
            # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup hierarchy.
            ["nsenter", f"--net=/run/netns/{self.lab.node_ns(1)}", sys.executable, "-m",
             "nodeagent", "run", "--name", "node1", "--data-dir", str(self.tmp_path / "data"),
             "--no-fsync", "--api-listen", f"{self.lab.node_address(1)}:6443", "--proxy", "nft",
             "--launcher-socket", self.sock, "--pod-cidr", self.lab.pod_cidr(1),
             "--images-dir", str(self.tmp_path / "images"), "--cgroup-parent", self.cgroup],
            stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not readyz(self.tmp_path / "data", self.api):
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                (self.tmp_path / "agent.log").read_text()
            time.sleep(0.1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def node(tmp_path):
    lab = Lab(prefix=f"np{uuid.uuid4().hex[:5]}", subnet="192.168.216.0/24",
              state_dir=str(tmp_path / "lab"))
    agent = NodeAgent(lab, tmp_path, f"nodeagent-e2e-{uuid.uuid4().hex[:6]}")
    sock, cgroup = agent.sock, agent.cgroup
    try:
        layouts = build(str(tmp_path / "layouts"))
        store = ImageStore(str(tmp_path / "images"))
        store.import_oci_layout(layouts["kubia:latest"])
        store.import_oci_layout(layouts["kubia:latest"], name="kubia:v2")  # for set image
        lab.up(1)
        assert lab.route_is_through_lab(lab.node_address(1))
        agent.start()
        with admin_client(tmp_path / "data", agent.api) as http:
            yield {"lab": lab, "http": http, "api": agent.api, "log": tmp_path / "agent.log",
                   "sock": sock, "agent": agent, "kubeconfig": tmp_path / "data" / "admin.kubeconfig"}
    finally:
        if (tmp_path / "agent.log").exists():  # shown by pytest when the test failed
            print((tmp_path / "agent.log").read_text()[-6000:])
        launcher_log = tmp_path / "data" / "containers" / "launcher.log"
        if launcher_log.exists():
            print("launcher:", launcher_log.read_text()[-3000:])
        agent.stop()
        if os.path.exists(sock):
            with contextlib.suppress(OSError), LauncherClient(sock) as client:
                for c in client.call("list").get("containers") or []:
                    client.call("delete", id=c["id"], force=True)
                # Sandboxes of pods the agent was still making when it stopped: exactly
                # the ones its address allocations name (a lab's node1 may be up too).
                ipam = tmp_path / "data" / "ipam"
                if (ipam / "allocations.json").exists():
                    net = {"cidr": lab.pod_cidr(1), "bridge": "cni0",
                           "netns_prefix": "nodeagent-node1-", "ipam_dir": str(ipam)}
                    owners = json.loads((ipam / "allocations.json").read_text())["allocations"]
                    for uid in set(owners.values()):
                        with contextlib.suppress(LauncherError):
                            client.call("sandbox_delete", net=net, pod_uid=uid)
        subprocess.run(["pkill", "-f", f"runtime launcher .*--socket {sock}"], check=False)
        remove_cgroup_tree(cgroup)
        lab.down()
        unmount_below(tmp_path)  # rootfs overlays and volume tmpfs a failed run left


def unmount_below(path: Path) -> None:
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(str(path))]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def env_of(n: dict) -> dict[str, str]:
    """What points nodectl at the node's agent, as its admin."""
    return {**os.environ, "NODECTL_SERVER": n["api"], "KUBECONFIG": str(n["kubeconfig"])}


def nodectl(n: dict, *args: str, stdin: str | None = None) -> str:
    p = subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", *args], input=stdin,
                       env=env_of(n), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    return p.stdout


def in_terminal(n: dict, args: list[str], keys: bytes) -> tuple[str, int]:
    """nodectl on a terminal of 33 rows by 101 columns, as a person at a shell runs it:
    the keys typed, then everything the terminal showed and nodectl's exit code."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "nodeagent.cli.nodectl", *args], stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True,
                            env=env_of(n))
    os.close(slave)
    screen = b""
    try:
        time.sleep(1)  # the shell's prompt first, as a person would wait for it
        os.write(master, keys)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:  # EIO: nodectl exited and closed the terminal
                    break
            elif proc.poll() is not None:
                break
        return screen.decode(errors="replace"), proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def ready_pods(http: httpx.Client) -> list[dict]:
    pods = http.get("/api/v1/namespaces/default/pods", params={"labelSelector": "app=kubia"}).json()
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in (p.get("status") or {}).get("conditions") or [])]


# python -c HTTP_CLIENT URL N: N GETs, one line each: the body's last line or the error's name.
HTTP_CLIENT = ("import sys, urllib.request\n"
               "for _ in range(int(sys.argv[2])):\n"
               "    try:\n"
               "        body = urllib.request.urlopen(sys.argv[1], timeout=2).read().decode()\n"
               "        print(body.strip().splitlines()[-1])\n"
               "    except Exception as e:\n"
               "        print(type(e).__name__)\n")


def ask(n: dict, url: str, count: int) -> Counter:
    """GETs from inside the node's network namespace (as a process on the node)."""
    p = subprocess.run(["ip", "netns", "exec", n["lab"].node_ns(1), sys.executable, "-c",
                        HTTP_CLIENT, url, str(count)], capture_output=True, text=True, timeout=60)
    return Counter(line for line in p.stdout.splitlines())


def test_a_deployment_runs_answers_heals_and_goes_away_clean(node):
    http = node["http"]
    nodectl(node, "apply", "-f", "-", stdin=KUBIA)
    until(lambda: len(ready_pods(http)) == 2, what="2 ready pods")
    pods = ready_pods(http)
    ips = {p["status"]["podIP"] for p in pods}
    assert all(ip.startswith("10.244.1.") for ip in ips) and len(ips) == 2
    status = pods[0]["status"]
    assert status["phase"] == "Running" and status["qosClass"] == "BestEffort"
    assert status["containerStatuses"][0]["state"]["running"]["startedAt"]
    node_obj = http.get("/api/v1/nodes/node1").json()
    assert {c["type"]: c["status"] for c in node_obj["status"]["conditions"]}["Ready"] == "True"
    # The Service: its Endpoints hold both pods, its ClusterIP reaches both.
    svc = http.get("/api/v1/namespaces/default/services/kubia").json()
    cluster_ip = svc["spec"]["clusterIP"]

    names = {p["metadata"]["name"] for p in pods}
    answers = until(lambda: (lambda seen: seen if {f"You've hit {n}" for n in names} <= set(seen)
                             else None)(ask(node, f"http://{cluster_ip}/", 20)),
                    what="answers from both pods through the ClusterIP")
    assert set(answers) == {f"You've hit {n}" for n in names}, answers
    # Logs: the httpd's request lines (-v), tail, a bad container named, and follow.
    name = pods[0]["metadata"]["name"]
    log = nodectl(node, "logs", name)
    assert "Received request from [::ffff:10.244.1.1]" in log, log  # the probes, from the node
    assert len(nodectl(node, "logs", name, "--tail", "1").splitlines()) == 1
    bad = subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", "logs", name, "-c", "nope"],
                         env=env_of(node), capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode != 0 and f"container nope is not valid for pod {name}" in bad.stderr
    follower = subprocess.Popen([sys.executable, "-m", "nodeagent.cli.nodectl", "logs", "-f",
                                 "--tail", "0", "--timestamps", name], stdout=subprocess.PIPE,
                                env=env_of(node))
    try:
        time.sleep(1.5)  # readiness probes (every second) hit the pod: new lines follow
        followed = follower.stdout.read1(65536).decode()
        assert followed.strip() and followed[:4].isdigit(), followed  # timestamped lines
    finally:
        follower.kill()
        follower.wait()
    # exec: in the container, with its environment ($(VAR) expanded) and its exit code.
    run = subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", "exec", name, "--",
                          "sh", "-c", "echo $GREETING; hostname; echo oops >&2; exit 3"],
                         env=env_of(node), capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 3, run.stderr
    assert run.stdout.splitlines() == [f"hi from {cluster_ip}", name]
    assert "oops" in run.stderr and "command terminated with exit code 3" in run.stderr
    assert nodectl(node, "exec", name, "--", "cat", "/etc/hosts").splitlines()[-1].endswith(name)
    # exec -i: stdin reaches the command; exec -it: a shell on a terminal of our size.
    assert nodectl(node, "exec", "-i", name, "--", "tr", "a-z", "A-Z", stdin="quiet\n") == "QUIET\n"
    screen, code = in_terminal(node, ["exec", "-it", name, "--", "sh"],
                               b"tty; stty size; echo $KUBIA_SERVICE_HOST; exit 7\r")
    assert code == 7 and "/dev/pts/" in screen and "33 101" in screen, screen
    assert cluster_ip in screen, screen
    events = nodectl(node, "get", "events")
    assert "Started container kubia" in events and "Scheduled" in events
    # top: usage from the pods' cgroups (sampled every 10 s; the first rate needs two).
    def top_pods() -> str | None:
        p = subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", "top", "pods"],
                           env=env_of(node), capture_output=True,
                           text=True, timeout=30)
        return p.stdout if p.returncode == 0 and all(
            pod["metadata"]["name"] in p.stdout for pod in pods) else None
    top = until(top_pods, 40, "pod metrics")
    assert top.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"], top
    assert nodectl(node, "top", "nodes").splitlines()[1].split()[0] == "node1"
    # and real kubectl top, through metrics.k8s.io's discovery as metrics-server serves it
    kubectl_bin = kubectl_binary()
    kenv = {**env_of(node), "HOME": str(node["kubeconfig"].parent)}
    for what, names in (("pods", [p["metadata"]["name"] for p in pods]), ("nodes", ["node1"])):
        k = subprocess.run([kubectl_bin, "top", what], env=kenv, capture_output=True,
                           text=True, timeout=30)
        assert k.returncode == 0 and all(n in k.stdout for n in names), (k.stdout, k.stderr)
        assert "CPU(cores)" in k.stdout.splitlines()[0]
    # A deleted pod is replaced; the Deployment keeps 2 ready.
    victim = pods[0]["metadata"]["name"]
    nodectl(node, "delete", "pod", victim)
    until(lambda: len(ready_pods(http)) == 2 and victim not in
          {p["metadata"]["name"] for p in ready_pods(http)}, what="a replacement pod")
    until(lambda: http.get(f"/api/v1/namespaces/default/pods/{victim}").status_code == 404,
          what="the deleted pod to be gone")
    # Deleting the Deployment removes every pod, container and sandbox.
    nodectl(node, "delete", "deployment", "kubia")
    until(lambda: not http.get("/api/v1/namespaces/default/pods").json()["items"],
          what="all pods gone")
    with LauncherClient(node["sock"]) as client:
        until(lambda: not client.call("list")["containers"], 15, "containers removed")
    leftover = subprocess.run(["ip", "netns", "exec", node["lab"].node_ns(1), "ip", "-o", "link",
                               "show", "type", "veth"], capture_output=True, text=True).stdout
    assert "veth" not in leftover.replace("eth0", ""), leftover


def test_an_agent_killed_with_pods_running_restarts_none_and_keeps_them_ready(node):
    http = node["http"]
    nodectl(node, "apply", "-f", "-", stdin=KUBIA)
    until(lambda: len(ready_pods(http)) == 2, what="2 ready pods")
    before = {p["metadata"]["name"]: p["status"]["containerStatuses"][0]
              for p in ready_pods(http)}
    def both_in_endpoints():
        subsets = http.get("/api/v1/namespaces/default/endpoints/kubia").json().get("subsets")
        return subsets if subsets and len(subsets[0].get("addresses") or []) == 2 else None
    endpoints = until(both_in_endpoints, what="both pods in the endpoints")
    node["agent"].kill9()
    node["agent"].start()
    time.sleep(4)  # several relists and probe periods of the new agent
    after = {p["metadata"]["name"]: p["status"]["containerStatuses"][0] for p in ready_pods(http)}
    log = node["log"].read_text()
    why = f"before: {before}\nafter: {after}\nagent log:\n{log[-4000:]}"
    assert after.keys() == before.keys(), why  # still both ready: readiness was not reset
    for name, st in after.items():
        assert st["containerID"] == before[name]["containerID"] and st["restartCount"] == 0, why
        assert st["state"]["running"]["startedAt"] == before[name]["state"]["running"]["startedAt"]
    now = http.get("/api/v1/namespaces/default/endpoints/kubia").json()["subsets"]
    assert now == endpoints, f"{endpoints}\n{now}\n{why}"
    assert log.count("Started container kubia") == 2, why  # none started by the new agent


# python -c HAMMER URL STOPFILE: GET the URL every 5 ms until STOPFILE exists (a slow answer
# on this busy 2-core machine is not a failure: 15 s each); then print
# "ok N failed M" and the first failures, each with when it began, how far it got (connect,
# send, answer) and the node's conntrack entry and neighbour table at the failure.  Paced:
# back to back, the client took a whole core, and a BestEffort pod (cpu.shares 2, as
# kubelet sets) then starved for seconds while the agent was busy -- a CI run saw the only
# replica miss its readiness probes and thousands of requests refused.
HAMMER = ("import http.client, os, subprocess, sys, time, urllib.parse\n"
          "url = urllib.parse.urlsplit(sys.argv[1])\n"
          "ok, failed = 0, []\n"
          "def stamp(t):\n"
          "    return time.strftime('%H:%M:%S', time.gmtime(t)) + f'.{int(t * 1000) % 1000:03d}'\n"
          "while not os.path.exists(sys.argv[2]):\n"
          "    c = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=15)\n"
          "    port, began, phase = None, time.time(), 'connect'\n"
          "    try:\n"
          "        c.connect()\n"
          "        port, phase = c.sock.getsockname()[1], 'send'\n"
          "        c.request('GET', '/')\n"
          "        phase = 'answer'\n"
          "        c.getresponse().read()\n"
          "        ok += 1\n"
          "    except Exception as e:\n"
          "        ct = subprocess.run(['conntrack', '-L', '-p', 'tcp', '--sport', str(port)],\n"
          "                            capture_output=True, text=True).stdout if port else ''\n"
          "        neigh = subprocess.run(['ip', 'neigh'], capture_output=True, text=True).stdout\n"
          "        failed.append(f'began {stamp(began)} failed {stamp(time.time())} at {phase}: {e!r} '\n"
          "                      f'port={port} conntrack={ct!r} neigh={neigh!r}')\n"
          "    finally:\n"
          "        c.close()\n"
          "    time.sleep(0.005)\n"
          "print('ok', ok, 'failed', len(failed), failed[:5])\n")


def test_rolling_update_and_rollback_drop_no_request(node, tmp_path):
    http = node["http"]
    # A grace period that leaves the pod manager time, on this loaded 2-core machine, to see
    # the rules drop a pod before SIGTERM (it waits up to half the grace for that).
    # A cpu request, as an app that must not drop requests has: its pods are Burstable (cpu
    # shares 102), not BestEffort (2), and get their share while the agent is busy.
    # A probe timeout of 5 s: once scaled down to one pod, that pod carries the hammer,
    # and with the agent deleting pods beside it, a 1 s probe timed out three times in a
    # row once (the pod starved for 4 s), which took the Service's only endpoint away.
    # What is tested is that rollouts, deletes and scaling drop nothing, not the probe.
    manifest = KUBIA.replace("replicas: 2", "replicas: 3").replace(
        "terminationGracePeriodSeconds: 2", "terminationGracePeriodSeconds: 6").replace(
        "        readinessProbe:", "        resources: {requests: {cpu: 100m}}\n        readinessProbe:"
    ).replace("          periodSeconds: 1\n", "          periodSeconds: 1\n          timeoutSeconds: 5\n")
    assert "requests" in manifest and "timeoutSeconds: 5" in manifest
    nodectl(node, "apply", "-f", "-", stdin=manifest)
    until(lambda: len(ready_pods(http)) == 3, what="3 ready pods")
    cluster_ip = http.get("/api/v1/namespaces/default/services/kubia").json()["spec"]["clusterIP"]
    stop = tmp_path / "stop"
    hammer = subprocess.Popen(["ip", "netns", "exec", node["lab"].node_ns(1), sys.executable, "-c",
                               HAMMER, f"http://{cluster_ip}/", str(stop)],
                              stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        # v2: a changed template rolls the pods one by one.
        nodectl(node, "apply", "-f", "-", stdin=manifest.replace("hi from", "v2 from"))
        out = nodectl(node, "rollout", "status", "deployment/kubia", "--timeout", "90s")
        assert out.strip().endswith('deployment "kubia" successfully rolled out'), out
        history = nodectl(node, "rollout", "history", "deployment/kubia")
        assert [ln.split()[0] for ln in history.splitlines()[2:]] == ["1", "2"], history
        assert nodectl(node, "rollout", "undo", "deployment/kubia").strip() == \
            "deployment.apps/kubia rolled back"
        nodectl(node, "rollout", "status", "deployment/kubia", "--timeout", "90s")
        # A pod deleted under load, then scale down and up: still no failed request.
        nodectl(node, "delete", "pod", ready_pods(http)[0]["metadata"]["name"])
        until(lambda: len(ready_pods(http)) == 3 and len(
            http.get("/api/v1/namespaces/default/pods").json()["items"]) == 3, 60, "3 pods again")
        nodectl(node, "scale", "deployment", "kubia", "--replicas=1")
        until(lambda: len(http.get("/api/v1/namespaces/default/pods").json()["items"]) == 1, 60,
              "scaled down to 1")
        nodectl(node, "scale", "deployment", "kubia", "--replicas=3")
        until(lambda: len(ready_pods(http)) == 3, 60, "scaled up to 3")
        time.sleep(1)
    finally:
        stop.touch()
        result = hammer.communicate(timeout=30)[0]
    words = result.split()
    assert words[0] == "ok" and int(words[1]) > 50 and words[3] == "0", \
        result + node["log"].read_text()[-8000:]
    pods = ready_pods(http)
    assert len(pods) == 3
    env = pods[0]["spec"]["containers"][0]["env"]
    assert env[0]["value"].startswith("hi from")  # back to revision 1's template
    rs = http.get("/apis/apps/v1/namespaces/default/replicasets").json()["items"]
    revisions = sorted(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for r in rs)
    assert revisions == ["2", "3"]


FORTUNE = """
apiVersion: v1
kind: ConfigMap
metadata: {name: fortune-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: fortune-secret}
stringData: {token: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: fortune}
spec:
  volumes:
  - {name: html, emptyDir: {}}
  - {name: config, configMap: {name: fortune-config}}
  containers:
  - name: writer
    image: kubia:latest
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - while true; do echo "$(cat /etc/fortune/greeting) $TOKEN" > /var/htdocs/index.html; sleep 0.2; done
    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: fortune-secret, key: token}}}]
    volumeMounts: [{name: html, mountPath: /var/htdocs}, {name: config, mountPath: /etc/fortune}]
  - name: web
    image: kubia:latest
    imagePullPolicy: IfNotPresent
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    volumeMounts: [{name: html, mountPath: /www, readOnly: true}]
---
apiVersion: v1
kind: Pod
metadata: {name: sick}
spec:
  terminationGracePeriodSeconds: 2  # sh as PID 1 ignores SIGTERM: SIGKILL after 2 s
  containers:
  - name: app
    image: kubia:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 2; touch /tmp/sick; sleep 3600"]
    livenessProbe:
      exec: {command: ["sh", "-c", "test ! -e /tmp/sick"]}
      periodSeconds: 1
      failureThreshold: 2
"""


def test_volumes_config_and_liveness_as_the_seeds_use_them(node):
    http = node["http"]
    nodectl(node, "apply", "-f", "-", stdin=FORTUNE)

    def running(name: str) -> bool:
        st = http.get(f"/api/v1/namespaces/default/pods/{name}").json().get("status") or {}
        return st.get("phase") == "Running" and all(
            "running" in (c.get("state") or {}) for c in st.get("containerStatuses") or [])
    until(lambda: running("fortune") and running("sick"), what="both pods running")
    # Two containers, one emptyDir: the writer's page is the web server's, with the
    # ConfigMap's file and the Secret's env var in it.
    page = until(lambda: nodectl(node, "exec", "fortune", "-c", "web", "--", "cat",
                                 "/www/index.html").strip() or None, what="the shared page")
    assert page == "hello s3cret"
    # The ConfigMap changes: the mounted file follows (atomically), no restart.
    cm = http.get("/api/v1/namespaces/default/configmaps/fortune-config").json()
    cm["data"]["greeting"] = "bonjour"
    http.put("/api/v1/namespaces/default/configmaps/fortune-config", json=cm).raise_for_status()
    until(lambda: nodectl(node, "exec", "fortune", "-c", "web", "--", "cat",
                          "/www/index.html").strip() == "bonjour s3cret", 30, "the new greeting")
    statuses = http.get("/api/v1/namespaces/default/pods/fortune").json()["status"]
    assert all(c["restartCount"] == 0 for c in statuses["containerStatuses"])
    # Liveness: the app turns sick after 2 s; two failed probes restart it, with the event.
    def restarted() -> bool:
        st = http.get("/api/v1/namespaces/default/pods/sick").json()["status"]
        return st["containerStatuses"][0]["restartCount"] >= 1
    until(restarted, 30, "a liveness restart")
    events = nodectl(node, "get", "events")
    assert "Container app failed liveness probe, will be restarted" in events
    assert "Liveness probe failed" in events
    described = nodectl(node, "describe", "pod", "sick")
    assert "Restart Count:  1" in described or "Restart Count:  2" in described


INIT_AND_CRASH = """
apiVersion: v1
kind: Pod
metadata: {name: staged}
spec:
  volumes: [{name: work, emptyDir: {}}]
  initContainers:
  - {name: one, image: kubia:latest, imagePullPolicy: IfNotPresent,
     command: ["sh", "-c", "echo one >> /work/order"], volumeMounts: [{name: work, mountPath: /work}]}
  - {name: two, image: kubia:latest, imagePullPolicy: IfNotPresent,
     command: ["sh", "-c", "echo two >> /work/order"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - {name: main, image: kubia:latest, imagePullPolicy: IfNotPresent,
     command: ["sh", "-c", "cat /work/order; exec sleep 3600"],
     volumeMounts: [{name: work, mountPath: /work}]}
---
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  containers:
  - {name: app, image: kubia:latest, imagePullPolicy: IfNotPresent,
     command: ["sh", "-c", "echo starting; exit 3"]}
---
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers:
  - {name: app, image: kubia:latest, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "exit 0"]}
---
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  containers:
  - {name: app, image: "nosuch:v1", imagePullPolicy: Never}
"""


def test_init_containers_crash_loops_completion_and_image_errors(node):
    http = node["http"]
    nodectl(node, "apply", "-f", "-", stdin=INIT_AND_CRASH)

    def status(name: str) -> dict:
        return http.get(f"/api/v1/namespaces/default/pods/{name}").json().get("status") or {}
    # Init containers ran in order, to completion, before the main container.
    until(lambda: status("staged").get("phase") == "Running", what="staged running")
    st = status("staged")
    assert [c["state"]["terminated"]["reason"] for c in st["initContainerStatuses"]] == \
        ["Completed", "Completed"]
    assert nodectl(node, "logs", "staged", "-c", "main").split() == ["one", "two"]
    # A container that keeps failing: restarted with back-off, CrashLoopBackOff shown.
    def crash_looping() -> bool:
        c = (status("crasher").get("containerStatuses") or [{}])[0]
        return (c.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" \
            and c.get("restartCount", 0) >= 1
    until(crash_looping, 40, "CrashLoopBackOff")
    c = status("crasher")["containerStatuses"][0]
    assert c["lastState"]["terminated"]["exitCode"] == 3
    assert re.fullmatch(r"back-off \d+s restarting failed container=app pod=crasher",
                        c["state"]["waiting"]["message"]), c["state"]["waiting"]["message"]
    assert "starting" in nodectl(node, "logs", "crasher", "--previous") + nodectl(node, "logs", "crasher")
    table = nodectl(node, "get", "pod", "crasher")
    assert "CrashLoopBackOff" in table
    # restartPolicy Never and exit 0: Succeeded, not restarted.
    until(lambda: status("once").get("phase") == "Succeeded", what="once succeeded")
    assert status("once")["containerStatuses"][0]["restartCount"] == 0
    # An image that is not there with pullPolicy Never: ErrImageNeverPull.
    until(lambda: ((status("noimage").get("containerStatuses") or [{}])[0].get("state") or {})
          .get("waiting", {}).get("reason") == "ErrImageNeverPull", what="ErrImageNeverPull")


def test_pre_stop_hook_runs_before_the_container_stops_and_host_path_is_shared(node, tmp_path):
    """preStop, then SIGTERM: the hook writes into a hostPath the test reads from outside.
    A hostPath is refused where Pod Security's default (baseline) holds, and runs in a
    namespace labelled privileged; so do the host's network and PID namespaces."""
    shared = tmp_path / "host-share"
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: hooked, namespace: NAMESPACE}}
spec:
  terminationGracePeriodSeconds: 5
  volumes: [{{name: share, hostPath: {{path: "{shared}", type: DirectoryOrCreate}}}}]
  containers:
  - name: app
    image: kubia:latest
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - trap 'echo term >> /share/log; exit 0' TERM; echo up >> /share/log; while true; do sleep 0.1; done
    volumeMounts: [{{name: share, mountPath: /share}}]
    lifecycle:
      preStop:
        exec: {{command: ["sh", "-c", "echo prestop >> /share/log"]}}
"""
    http = node["http"]
    refused = subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", "apply", "-f", "-"],
                             input=manifest.replace("NAMESPACE", "default"), env=env_of(node),
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and 'violates PodSecurity "baseline:latest": hostPath ' \
        'volumes (volume "share")' in refused.stderr, refused.stderr
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": "hosty", "labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}}).status_code == 201
    nodectl(node, "apply", "-f", "-", stdin=manifest.replace("NAMESPACE", "hosty"))
    host = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-host"},
            "spec": {"hostNetwork": True, "hostPID": True,
                     "volumes": [{"name": "share", "hostPath": {"path": str(shared)}}],
                     "containers": [{"name": "c", "image": "kubia:latest",
                                     "imagePullPolicy": "IfNotPresent",
                                     "command": ["sh", "-c", "cat /proc/net/dev > /share/netdev; "
                                                 "ls /proc | grep -c '^[0-9]' > /share/pids; "
                                                 "sleep 3600"],
                                     "volumeMounts": [{"name": "share", "mountPath": "/share"}]}]}}
    r = http.post("/api/v1/namespaces/hosty/pods", json=host)
    assert r.status_code == 201, r.text
    until(lambda: (shared / "log").exists() and "up" in (shared / "log").read_text(), 60,
          "the container writing to the hostPath")
    until(lambda: (shared / "pids").exists() and (shared / "pids").read_text().strip(), 60,
          "the host-namespaces pod")
    assert "cni0" in (shared / "netdev").read_text()  # the node's bridge: its network
    assert int((shared / "pids").read_text()) > 10  # the node's processes, not its own few
    on_host = http.get("/api/v1/namespaces/hosty/pods/on-host").json()
    until(lambda: http.get("/api/v1/namespaces/hosty/pods/on-host").json()["status"].get(
        "podIP") == on_host["status"].get("hostIP"), 30, "its pod IP, the node's")
    nodectl(node, "delete", "pod", "hooked", "-n", "hosty")
    until(lambda: http.get("/api/v1/namespaces/hosty/pods/hooked").status_code == 404, 30,
          "the pod gone")
    assert (shared / "log").read_text().split() == ["up", "prestop", "term"]
    http.delete("/api/v1/namespaces/hosty/pods/on-host", params={"gracePeriodSeconds": "0"})


REGISTRY = shutil.which("docker-registry")
PUSH = ("import sys, trio\n"
        "from runtime.images import ImageStore\n"
        "from runtime.registry import RegistryClient\n"
        "store = ImageStore(sys.argv[1])\n"
        "trio.run(RegistryClient(store).push, store.get('kubia:latest'), sys.argv[2])\n")
PULLED = """
apiVersion: v1
kind: Pod
metadata: {name: pulled}
spec:
  containers:
  - {name: app, image: "127.0.0.1:5000/team/kubia:v1", imagePullPolicy: Always}
---
apiVersion: v1
kind: Pod
metadata: {name: misspelt}
spec:
  containers:
  - {name: app, image: "127.0.0.1:5000/team/kubia:v9"}
"""


@pytest.mark.skipif(REGISTRY is None, reason="Debian's docker-registry is not installed "
                    "(scripts/test installs it)")
def test_images_are_pulled_from_a_registry_and_a_missing_one_backs_off(node, tmp_path):
    """A registry on the node's loopback (in its namespace): one pod's image is pulled
    (Pulling, Pulled), the other's tag does not exist (ErrImagePull, ImagePullBackOff)."""
    ns = node["lab"].node_ns(1)
    (tmp_path / "registry.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path}/registry\nhttp:\n  addr: 127.0.0.1:5000\n")
    registry = subprocess.Popen(["ip", "netns", "exec", ns, REGISTRY, "serve",
                                 str(tmp_path / "registry.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def pushed() -> bool:
            return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PUSH,
                                   str(tmp_path / "images"), "127.0.0.1:5000/team/kubia:v1"],
                                  cwd=ROOT, capture_output=True, timeout=60).returncode == 0
        until(pushed, 30, "the image pushed to the registry")
        http = node["http"]
        nodectl(node, "apply", "-f", "-", stdin=PULLED)

        def container(name: str) -> dict:
            st = http.get(f"/api/v1/namespaces/default/pods/{name}").json().get("status") or {}
            return (st.get("containerStatuses") or [{}])[0]
        until(lambda: container("pulled").get("ready"), what="the pulled image running")
        assert container("pulled")["imageID"].startswith("sha256:") or \
            "@sha256:" in container("pulled")["imageID"], container("pulled")
        reasons = set()

        def backing_off() -> bool:
            reasons.add(((container("misspelt").get("state") or {}).get("waiting") or {})
                        .get("reason"))
            return "ImagePullBackOff" in reasons
        until(backing_off, 60, "ImagePullBackOff")
        assert "ErrImagePull" in reasons, reasons
        events = nodectl(node, "get", "events")
        assert 'Pulling image "127.0.0.1:5000/team/kubia:v1"' in events, events
        assert 'Successfully pulled image "127.0.0.1:5000/team/kubia:v1"' in events, events
        assert 'Failed to pull image "127.0.0.1:5000/team/kubia:v9"' in events, events
        described = nodectl(node, "describe", "pod", "misspelt")
        assert "ImagePullBackOff" in described or "ErrImagePull" in described, described
    finally:
        registry.terminate()
        registry.wait(10)



KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
# A pod that calls the API as programs in pods do: real kubectl (a static binary, mounted
# from the host, so the namespace allows hostPath), configured by nothing but what the
# pod was given -- the mounted token and CA, and the kubernetes Service's variables.
# (busybox's wget cannot speak TLS to a server that refuses SHA-1 signatures.)
API_CALLER = f"""
apiVersion: v1
kind: Namespace
metadata:
  name: tools
  labels: {{pod-security.kubernetes.io/enforce: privileged}}
---
apiVersion: v1
kind: Pod
metadata: {{name: caller, namespace: tools}}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{{name: kubectl, hostPath: {{path: "{KUBECTL}", type: File}}}}]
  containers:
  - name: app
    image: kubia:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    env: [{{name: HOME, value: /tmp}}]
    volumeMounts: [{{name: kubectl, mountPath: /bin/kubectl, readOnly: true}}]
"""


def test_a_pod_calls_the_api_with_its_service_account_token(node):
    """The token works from inside a real pod, through the kubernetes Service (kubectl
    checks the server against the mounted CA), and RBAC decides what it may do; it dies
    with its pod."""
    http = node["http"]
    nodectl(node, "apply", "-f", "-", stdin=API_CALLER)
    until(lambda: (http.get("/api/v1/namespaces/tools/pods/caller").json().get("status") or {})
          .get("phase") == "Running", 60, "the caller pod running")

    def in_pod(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nodeagent.cli.nodectl", "exec", "-n",
                               "tools", "caller", "--", *argv], env=env_of(node),
                              capture_output=True, text=True, timeout=60)
    env = in_pod("env").stdout
    assert "KUBERNETES_SERVICE_HOST=10.96.0.1" in env and "KUBERNETES_SERVICE_PORT=443" in env
    sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert set(in_pod("ls", sa_dir).stdout.split()) == {"ca.crt", "namespace", "token"}
    assert in_pod("cat", f"{sa_dir}/namespace").stdout == "tools"
    ca_file = node["kubeconfig"].parent / "pki" / "ca.crt"
    assert in_pod("cat", f"{sa_dir}/ca.crt").stdout == ca_file.read_text()
    # No RoleBinding yet: the API knows who it is, and says no.
    denied = in_pod("kubectl", "get", "pods")
    assert denied.returncode != 0
    assert 'User "system:serviceaccount:tools:default" cannot list resource "pods"' in \
        denied.stdout + denied.stderr, denied
    whoami = in_pod("kubectl", "auth", "whoami").stdout
    rows = {line.split()[0] + (line.split()[1] if line.startswith("Extra") else ""):
            line.split()[-1] for line in whoami.splitlines()[1:] if line.strip()}
    assert rows["Username"] == "system:serviceaccount:tools:default", whoami
    assert rows["Extra:authentication.kubernetes.io/pod-name"] == "[caller]", whoami
    http.post("/apis/rbac.authorization.k8s.io/v1/namespaces/tools/rolebindings", json={
        "metadata": {"name": "default-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "tools"}],
    }).raise_for_status()
    listed = until(lambda: (lambda p: p.stdout if p.returncode == 0 else None)(
        in_pod("kubectl", "get", "pods", "-o", "name")), 30, "the list allowed")
    assert listed.split() == ["pod/caller"]
    forbidden = in_pod("kubectl", "get", "pods", "-n", "default")
    assert forbidden.returncode != 0 and "forbidden" in forbidden.stderr
    # The node's API port straight, not as the Service: fenced off (netns/podguard.py).
    direct = in_pod("sh", "-c", f'kubectl --server {node["api"]} --token "$(cat {sa_dir}/token)" '
                    f"--certificate-authority {sa_dir}/ca.crt --request-timeout=2s get --raw /api")
    assert direct.returncode != 0 and "Unable to connect" in direct.stderr, direct.stderr
    # The token, taken out of the pod, works until the pod is gone.
    token = in_pod("cat", f"{sa_dir}/token").stdout
    with httpx.Client(base_url=node["api"], verify=ssl.create_default_context(cafile=ca_file),
                      headers={"Authorization": f"Bearer {token}"}) as stolen:
        assert stolen.get("/api/v1/namespaces/tools/pods").status_code == 200
        nodectl(node, "delete", "pod", "caller", "-n", "tools")
        until(lambda: stolen.get("/api/v1/namespaces/tools/pods").status_code == 401, 30,
              "the token to die with its pod")
