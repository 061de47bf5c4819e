"""A 3-node lab cluster made by scripts/lab (every node a Raft server, pods, proxy, gossip)
in its own directory, namespace prefix and subnet, and what the fault tests do to it and
ask of it.  Also used by scripts/bench/cluster.py."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from waiting import until

ROOT = Path(__file__).resolve().parents[2]


class LabCluster:
    def __init__(self, state_dir: Path, *, prefix: str, subnet: str, nodes: int = 3,
                 agent_args: str = "") -> None:
        self.dir, self.prefix, self.subnet, self.n = state_dir, prefix, subnet, nodes
        self.env = {**os.environ, "LAB_DIR": str(state_dir), "LAB_PREFIX": prefix,
                    "LAB_SUBNET": subnet, "LAB_AGENT_ARGS": agent_args}
        base = subnet.rsplit(".", 1)[0]
        self.addresses = {i: f"{base}.{10 + i}" for i in range(1, nodes + 1)}
        self._http: httpx.Client | None = None

    # --- the lab script ---------------------------------------------------------------

    def lab(self, *args: str, timeout_s: float = 300) -> str:
        p = subprocess.run([str(ROOT / "scripts" / "lab"), *args], env=self.env,
                           capture_output=True, text=True, timeout=timeout_s)
        if p.returncode != 0:
            raise AssertionError(f"scripts/lab {' '.join(args)} failed:\n{p.stderr[-3000:]}")
        return p.stdout + p.stderr

    def up(self) -> None:
        self.lab("up", str(self.n))
        until(self.settled, 60, "every agent up, one leader, every node Ready")

    def down(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self.lab("down")

    def api(self, i: int) -> str:
        return f"https://{self.addresses[i]}:6443"

    @property
    def kubeconfig(self) -> Path:
        """The cluster admin's kubeconfig, which node1 wrote (every node trusts its CA)."""
        return self.dir / "node1" / "data" / "admin.kubeconfig"

    def tls(self) -> ssl.SSLContext:
        """The cluster admin's TLS: trusts the cluster's CA, shows the admin certificate."""
        from nodeagent.api.kubeconfig import load
        ctx = load(str(self.kubeconfig)).ssl_context()
        assert isinstance(ctx, ssl.SSLContext)
        return ctx

    @property
    def http(self) -> httpx.Client:
        """The cluster's admin, for any node's API (absolute URLs)."""
        if self._http is None:
            self._http = httpx.Client(verify=self.tls())
        return self._http

    def agent_pid(self, i: int) -> int:
        return int((self.dir / f"node{i}" / "pid").read_text())

    def agent_alive(self, i: int) -> bool:
        """Running and not a zombie (a killed agent waits for PID 1 to reap it)."""
        try:
            return psutil.Process(self.agent_pid(i)).status() != psutil.STATUS_ZOMBIE
        except (psutil.Error, OSError, ValueError):
            return False

    def stop_agent(self, i: int, sig: int = signal.SIGTERM, timeout_s: float = 30) -> None:
        os.kill(self.agent_pid(i), sig)
        until(lambda: not self.agent_alive(i), timeout_s, f"node{i}'s agent to exit")

    # --- asking the cluster -----------------------------------------------------------

    def get(self, path: str, via: int | None = None, timeout_s: float = 2) -> Any:
        """GET from node ``via``, or the first node that answers."""
        for i in ([via] if via else self.addresses):
            try:
                r = self.http.get(self.api(i) + path, timeout=timeout_s)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                continue
        raise ConnectionError(f"no node answered GET {path}")  # until() tries again

    def raft(self, i: int) -> dict[str, Any] | None:
        try:
            r = self.http.get(self.api(i) + "/raft", timeout=1)
            return r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def leader(self, among: set[int] | None = None) -> int:
        """The node whose server says it leads in the newest term any answering server
        knows; 0 if none does."""
        states = {i: st for i in (among or set(self.addresses)) if (st := self.raft(i))}
        if not states:
            return 0
        term = max(st["term"] for st in states.values())
        return next((i for i, st in states.items()
                     if st["role"] == "leader" and st["term"] == term), 0)

    def leaders(self) -> list[int]:
        """Every node that says it leads, whatever its term (two would be a split brain
        only in the same term)."""
        return [i for i in self.addresses if (st := self.raft(i)) and st["role"] == "leader"]

    def settled(self) -> bool:
        """Every agent answers, every server follows the same leader, every node Ready."""
        states = [self.raft(i) for i in self.addresses]
        leaders = {st.get("leader") for st in states if st}
        return None not in states and len(leaders) == 1 and 0 not in leaders and \
            self.ready_nodes() == set(self.addresses)

    def ready_nodes(self) -> set[int]:
        out: set[int] = set()
        for node in self.get("/api/v1/nodes")["items"]:
            ready: dict[str, Any] = next((c for c in node["status"].get("conditions") or []
                                          if c["type"] == "Ready"), {})
            if ready.get("status") == "True":
                out.add(int(node["metadata"]["name"].removeprefix("node")))
        return out

    def pods(self, selector: str = "app=kubia", via: int | None = None) -> list[dict[str, Any]]:
        return self.get(f"/api/v1/namespaces/default/pods?labelSelector={selector}", via)["items"]

    def ready_pods(self, selector: str = "app=kubia") -> list[dict[str, Any]]:
        return [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True"
                        for c in p["status"].get("conditions") or [])]

    def nodectl(self, *args: str, stdin: str | None = None, via: int = 1) -> str:
        p = subprocess.run([str(ROOT / ".venv" / "bin" / "nodectl"), *args], input=stdin,
                           env={**self.env, "NODECTL_SERVER": self.api(via),
                                "KUBECONFIG": str(self.kubeconfig)},
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"nodectl {' '.join(args)}: {p.stdout}\n{p.stderr}")
        return p.stdout

    def in_node(self, i: int, *argv: str, timeout_s: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", f"{self.prefix}-node{i}", *argv],
                              capture_output=True, text=True, timeout=timeout_s)


@dataclass
class Client:
    """Requests to a URL the whole time, each on a new connection with a short timeout:
    what a user of the Service would notice."""
    url: str
    timeout_s: float = 1.0
    pause_s: float = 0.05
    ok: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    answered_by: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Client:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()  # a failure is dated by when its request was sent
            try:
                r = httpx.get(self.url, timeout=self.timeout_s)
                if r.status_code == 200:
                    self.ok += 1
                    who = r.text.strip().rsplit(" ", 1)[-1]
                    self.answered_by[who] = self.answered_by.get(who, 0) + 1
                else:
                    self.failures.append((started, f"HTTP {r.status_code}"))
            except httpx.HTTPError as exc:
                self.failures.append((started, type(exc).__name__))
            time.sleep(self.pause_s)
