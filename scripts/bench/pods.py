#!/usr/bin/env python3
"""Pod start benchmark: the agent against the bare runtime starting the same containers.

A one-node lab (scripts/lab up 1, as root: the node is a network namespace) with the
kubia image present.  Measured, in the same run:
  one pod     create -> Running and Ready (readiness probe httpGet, period 1 s), one at a
              time, N times: p50 and p99
  30 pods     created at once: create -> Ready of each, p50 and p99
  peer        the bare runtime (a launcher of the bench's own) starting the same container
              from the same image store (overlay rootfs, cgroup) and polling its HTTP port
              until it answers: one at a time and 30 at once.  The ratio is the agent's
              overhead: scheduling, API writes, sandbox, probes, status.
  endpoints   a Ready pod's deletion -> its address gone from the node's service rules
              (nft), p99
  footprint   the agent's RSS and CPU (% of a core) over 20 s with 30 pods running and
              probed
Targets: p50 <= 0.5 s and p99 <= 2 s for 30 pods; endpoint change to rules
p99 <= 1 s; RSS <= 80 MiB and idle CPU <= 2% with 30 pods.
Usage: scripts/bench/pods.py [--quick] [--out FILE]   (root)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import httpx
import psutil

# This directory holds runtime.py (the runtime benchmark): drop it from the path so
# `runtime` is the project's package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

LAB = str(c.ROOT / "scripts" / "lab")


def pod_body(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "kubia", "image": "kubia:latest", "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"},
                                   "periodSeconds": 1}}]}}


def ready(pod: dict) -> bool:
    return any(x.get("type") == "Ready" and x.get("status") == "True"
               for x in (pod.get("status") or {}).get("conditions") or [])


class Node:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        exports = subprocess.run([LAB, "env"], env=env, capture_output=True, text=True,
                                 check=True).stdout
        self.api = next(line for line in exports.splitlines()
                        if line.startswith("export NODECTL_SERVER=")).split("=", 1)[1]
        kubeconfig = next(line for line in exports.splitlines()
                          if line.startswith("export KUBECONFIG=")).split("=", 1)[1]
        from nodeagent.api.kubeconfig import load
        self.tls = load(kubeconfig).ssl_context()  # the cluster admin's
        self.http = httpx.Client(base_url=self.api, timeout=30, verify=self.tls)
        self.dir = subprocess.run([LAB, "dir", "1"], env=env, capture_output=True, text=True,
                                  check=True).stdout.strip()
        self.ns = f"{env['LAB_PREFIX']}-node1"

    def agent(self) -> psutil.Process:
        return psutil.Process(int(Path(self.dir, "pid").read_text()))

    def create_ready(self, names: list[str]) -> dict[str, float]:
        """Create the pods at once; seconds from each create to its Ready, seen through one
        watch (polling each pod would load the API more than the pods do)."""
        created: dict[str, float] = {}
        ready_at: dict[str, float] = {}
        done = threading.Event()
        rv = self.http.get("/api/v1/namespaces/default/pods").json()["metadata"]["resourceVersion"]

        def watch() -> None:
            with httpx.Client(base_url=self.api, timeout=httpx.Timeout(30, read=None),
                              verify=self.tls) as h, \
                    h.stream("GET", "/api/v1/namespaces/default/pods",
                             params={"watch": "1", "resourceVersion": rv,
                                     "labelSelector": "app=bench"}) as resp:
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    pod = json.loads(line)["object"]
                    name = pod["metadata"]["name"]
                    if name in names and name not in ready_at and ready(pod):
                        ready_at[name] = time.monotonic()
                        if len(ready_at) == len(names):
                            done.set()
                            return
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(0.2)

        # One client per creator, made and connected before the clock starts: making an
        # httpx client (its TLS context) costs ~10 ms of CPU, which 30 at once would put
        # on the agent's account on this 2-core machine.
        clients = {n: httpx.Client(base_url=self.api, timeout=30, verify=self.tls)
                   for n in names}
        for h in clients.values():
            h.get("/readyz")

        def create(name: str) -> None:
            created[name] = time.monotonic()
            clients[name].post("/api/v1/namespaces/default/pods",
                               json=pod_body(name)).raise_for_status()
        threads = [threading.Thread(target=create, args=(n,)) for n in names]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for h in clients.values():
                h.close()
        if not done.wait(120):
            raise SystemExit(f"pods not ready after 120 s: {sorted(set(names) - set(ready_at))}")
        return {n: ready_at[n] - created[n] for n in names}

    def delete_all(self) -> None:
        self.http.delete("/api/v1/namespaces/default/pods", params={"labelSelector": "app=bench"})
        deadline = time.monotonic() + 120
        while self.http.get("/api/v1/namespaces/default/pods").json()["items"]:
            if time.monotonic() > deadline:
                raise SystemExit("pods were not deleted in 120 s")
            time.sleep(0.1)

    def rules_text(self) -> str:
        return subprocess.run(["ip", "netns", "exec", self.ns, "nft", "list", "table", "ip",
                               "nodeagent"], capture_output=True, text=True).stdout


class BareRuntime:
    """The peer: the same container from the same image store, through a launcher."""

    def __init__(self, images: str) -> None:
        from runtime.images import ImageStore
        self.store = ImageStore(images)
        self.image = self.store.get("kubia:latest")
        self.state = c.tempdir("nabench-peer-")
        self.sock = os.path.join(self.state, "launcher.sock")
        self.cgroup = f"nodeagent-bench-peer-{uuid.uuid4().hex[:6]}"
        self.proc = c.spawn([sys.executable, "-m", "runtime", "launcher", "--state-dir",
                             os.path.join(self.state, "containers"), "--socket", self.sock],
                            os.path.join(self.state, "launcher.log"))
        for _ in range(100):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        self.ids: list[str] = []
        self.lock = threading.Lock()

    def start_and_wait(self, name: str, port: int, results: dict[str, float]) -> None:
        from runtime.client import LauncherClient
        from runtime.spec import ContainerSpec, spec_to_dict
        t0 = time.monotonic()
        rootfs = self.store.mount_rootfs(name, self.image)
        spec = ContainerSpec(rootfs=rootfs, args=("httpd", "-f", "-p", f"127.0.0.1:{port}",
                                                  "-h", "/www"),
                             env=tuple(self.image.env), cgroup_path=f"{self.cgroup}/{name}")
        with LauncherClient(self.sock) as client:
            reply = client.call("run", id=name, spec=spec_to_dict(spec))
        if not reply.get("ok"):
            raise SystemExit(f"peer container {name}: {reply}")
        with self.lock:
            self.ids.append(name)
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                results[name] = time.monotonic() - t0
                return
            except OSError:
                if time.monotonic() - t0 > 60:
                    raise SystemExit(f"peer {name} did not answer") from None
                time.sleep(0.01)

    def remove_all(self) -> None:
        from runtime.client import LauncherClient
        with LauncherClient(self.sock) as client:
            for cid in self.ids:
                client.call("delete", id=cid, force=True)
        for cid in self.ids:
            self.store.remove_rootfs(cid)
        self.ids.clear()

    def close(self) -> None:
        self.remove_all()
        self.proc.terminate()
        self.proc.wait()
        from runtime.cgroups import detect
        cgroups = detect()
        if cgroups.exists(self.cgroup):  # the containers' own went with them
            cgroups.delete(self.cgroup)


def concurrently(fn, names: list[str], *extra) -> dict[str, float]:
    results: dict[str, float] = {}
    threads = [threading.Thread(target=fn, args=(n, *[e[i] for e in extra], results))
               for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main() -> None:
    a = c.args(__doc__.splitlines()[1])
    if os.geteuid() != 0:
        raise SystemExit("scripts/bench/pods.py needs root (the lab's network namespaces)")
    singles, burst, idle_s, deletions = (5, 30, 10, 5) if a.quick else (20, 30, 20, 10)
    env = {**os.environ, "LAB_DIR": c.tempdir("nabench-lab-"),
           "LAB_PREFIX": f"nb{uuid.uuid4().hex[:4]}", "LAB_SUBNET": "192.168.218.0/24"}
    subprocess.run([LAB, "up", "1"], env=env, check=True)
    peer = None
    try:
        node = Node(env)
        peer = BareRuntime(os.path.join(node.dir, "images"))
        res = c.Results()
        # --- one at a time
        ours1: list[float] = []
        peer1: list[float] = []
        for i in range(singles):
            r: dict[str, float] = {}
            ours1.append(node.create_ready([f"single-{i}"])[f"single-{i}"])
            node.delete_all()
            peer.start_and_wait(f"peer-single-{i}", c.free_port(), r)
            peer1.append(r[f"peer-single-{i}"])
            peer.remove_all()
        res.add("1 pod: create -> Ready, p50", "s", c.median(ours1), c.median(peer1),
                higher_is_better=False, n=singles, peer_name="bare runtime, same container",
                target="", runs_ours=[round(x, 3) for x in ours1])
        # --- 30 at once
        names = [f"burst-{i}" for i in range(burst)]
        ours30 = node.create_ready(names)
        peer30 = concurrently(peer.start_and_wait, [f"peer-{n}" for n in names],
                              [c.free_port() for _ in names])
        res.add(f"{burst} pods at once: create -> Ready, p50", "s",
                c.percentile(list(ours30.values()), 50), c.percentile(list(peer30.values()), 50),
                higher_is_better=False, n=burst, peer_name="bare runtime, same containers",
                target="<= 0.5 s")
        res.add(f"{burst} pods at once: create -> Ready, p99", "s",
                c.percentile(list(ours30.values()), 99), c.percentile(list(peer30.values()), 99),
                higher_is_better=False, n=burst, peer_name="bare runtime, same containers",
                target="<= 2 s")
        peer.remove_all()
        # --- footprint with 30 pods running and probed
        proc = node.agent()
        time.sleep(2)
        t0, cpu0 = time.monotonic(), proc.cpu_times()
        time.sleep(idle_s)
        t1, cpu1 = time.monotonic(), proc.cpu_times()
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0) * 100
        rss = proc.memory_info().rss / 2**20
        res.add(f"agent CPU, {burst} pods running (probes every 1 s)", "% core", cpu, None,
                higher_is_better=False, n=1, target="<= 2%")
        res.add(f"agent RSS, {burst} pods running", "MiB", rss, None, higher_is_better=False,
                n=1, target="<= 80 MiB")
        # --- endpoint change -> rules
        node.http.post("/api/v1/namespaces/default/services", json={
            "metadata": {"name": "bench"}, "spec": {"selector": {"app": "bench"},
                                                    "ports": [{"port": 80, "targetPort": 8080}]}})
        pods = node.http.get("/api/v1/namespaces/default/pods").json()["items"]
        deadline = time.monotonic() + 30
        while not all(p["status"]["podIP"] in node.rules_text() for p in pods):
            if time.monotonic() > deadline:
                raise SystemExit("the service's endpoints never reached the rules")
            time.sleep(0.1)
        delays = []
        for pod in random.Random(1).sample(pods, deletions):
            ip = pod["status"]["podIP"]
            t0 = time.monotonic()
            node.http.delete(f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}")
            while f"{ip} " in node.rules_text() or f"{ip}," in node.rules_text():
                if time.monotonic() - t0 > 30:
                    raise SystemExit(f"{ip} stayed in the rules")
                time.sleep(0.005)
            delays.append(time.monotonic() - t0)
        res.add("pod deleted -> gone from service rules, p99", "s", c.percentile(delays, 99),
                None, higher_is_better=False, n=deletions, target="<= 1 s",
                runs_ours=[round(x, 3) for x in delays])
        res.print_and_write(a.out)
        print(json.dumps({"30 pods (ours)": sorted(round(v, 3) for v in ours30.values()),
                          "30 pods (peer)": sorted(round(v, 3) for v in peer30.values())}),
              file=sys.stderr)
    finally:
        if peer is not None:
            peer.close()
        subprocess.run([LAB, "down"], env=env, check=False)
        shutil.rmtree(env["LAB_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
