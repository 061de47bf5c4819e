"""The hostile-input rows of scripts/bench/api.py: what the caps cost on the normal
path, and how a node's own calls fare while one client sends the worst the caps allow.

The peer for both is the agent as it was before the caps (``BEFORE``, checked out into a
temporary git worktree and run from it with the same venv), measured in the same run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import _common as c

# The last commit before the hostile-input work: the agent without caps.
BEFORE = "43670c0"
HAMMER_SOURCE = "127.0.0.2"  # the abusive client: an ordinary client address on loopback


def before_tree(rev: str = BEFORE) -> str | None:
    """A worktree of ``rev`` (removed at exit), or None where git or the commit is missing."""
    work = c.tempdir("bench-before-")
    tree = os.path.join(work, "tree")
    p = subprocess.run(["git", "-C", str(c.ROOT), "worktree", "add", "--detach", tree, rev],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(f"no tree of {rev}: {p.stderr.strip()}", file=sys.stderr)
        return None
    import atexit
    atexit.register(subprocess.run, ["git", "-C", str(c.ROOT), "worktree", "remove", "--force",
                                     tree], capture_output=True)
    return tree


def start_before(tree: str) -> c.Agent:
    """The old agent: run from its own tree (first on the path), the same venv for the
    rest.  A check that it is the old code: it serves a foreign Host, which ours refuses."""
    agent = c.start_agent(tree=tree)
    import httpx
    r = httpx.get(f"{agent.url}/version", headers={"host": "peer.example"})
    if r.status_code == 403:
        raise SystemExit(f"the peer at {tree} runs this tree's code, not {BEFORE}'s")
    return agent


# --- the worst the caps allow ------------------------------------------------------------------

def _worst_bodies() -> list[tuple[str, str, str, bytes]]:
    """(method, path, content type, body): the largest body, the deepest nesting, an alias
    bomb just under the expansion cap, the most patch operations, the widest body."""
    cap = 3 * (1 << 20) - 300
    half = "x" * (cap // 2 - 200)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
           "spec": {"containers": [{"name": "c", "image": "x", "args": [half, half]}]}}
    deep = ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":'
            + "[" * 398 + "]" * 398 + "}")
    leaf = "y" * 2000
    bomb = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n"
            f"a0: &a0 {json.dumps(leaf)}\n" + "".join(
                f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 4)))
    patch = [{"op": "test", "path": "/metadata/name", "value": "target"}] * 10_000
    wide = b"[" + b",".join([b"[]"] * (cap // 3)) + b"]"
    ns = "/api/v1/namespaces/abuse"
    return [("POST", f"{ns}/pods", "application/json", json.dumps(pod).encode()),
            ("POST", f"{ns}/configmaps", "application/json", deep.encode()),
            ("POST", f"{ns}/configmaps", "application/yaml", bomb.encode()),
            ("PATCH", f"{ns}/configmaps/target", "application/json-patch+json",
             json.dumps(patch).encode()),
            ("POST", f"{ns}/configmaps", "application/json", wide)]


def _hold_watches(url: str, n: int, held: list[socket.socket]) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    for i in range(n):
        s = socket.socket()
        s.bind((HAMMER_SOURCE, 0))
        try:
            s.connect((host, int(port)))
            s.sendall(f"GET /api/v1/namespaces/abuse/configmaps?watch=true&w={i} HTTP/1.1\r\n"
                      f"Host: {host}\r\n\r\n".encode())
        except OSError:
            s.close()
            continue
        held.append(s)  # never read: the server's writes to it back up, as a slow reader's


def _hammer(url: str, stop: threading.Event, counts: dict[str, int]) -> None:
    import httpx
    bodies = _worst_bodies()
    client = httpx.Client(base_url=url, timeout=30,
                          transport=httpx.HTTPTransport(local_address=HAMMER_SOURCE))
    i = 0
    while not stop.is_set():
        method, path, ctype, body = bodies[i % len(bodies)]
        i += 1
        try:
            r = client.request(method, path, content=body, headers={"content-type": ctype})
            counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
        except httpx.HTTPError as exc:
            counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1


def _probe(url: str, stop: threading.Event, call: Callable[..., object],
           out: list[float], timeout_s: float = 5.0) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            r = call()
            ok = getattr(r, "status_code", 0) < 400
        except Exception:
            ok = False
        out.append(time.perf_counter() - t0 if ok else timeout_s)
        time.sleep(0.05)


def under_abuse(agent: c.Agent, seconds: float, hammers: int = 4,
                watches: int = 100) -> tuple[list[float], list[float], dict[str, int]]:
    """Latencies of /readyz and of a Node's heartbeat (a status patch from this machine,
    as its agent sends) while one client holds ``watches`` watches and ``hammers``
    threads send it the worst bodies; a failed call counts as the 5 s timeout."""
    import httpx
    http = httpx.Client(base_url=agent.url, timeout=5)
    http.post("/api/v1/namespaces", json={"metadata": {"name": "abuse"}})
    http.post("/api/v1/namespaces/abuse/configmaps", json={"metadata": {"name": "target"}})
    http.post("/api/v1/nodes", json={"metadata": {"name": "bench-node"}})
    held: list[socket.socket] = []
    _hold_watches(agent.url, watches, held)
    stop = threading.Event()
    counts: dict[str, int] = {}
    ready: list[float] = []
    beats: list[float] = []

    def heartbeat() -> object:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return http.patch("/api/v1/nodes/bench-node/status", content=json.dumps(
            {"status": {"conditions": [{"type": "Ready", "status": "True",
                                        "lastHeartbeatTime": now}]}}),
            headers={"content-type": "application/merge-patch+json"})
    readyz_client = httpx.Client(base_url=agent.url, timeout=5)
    threads = [threading.Thread(target=_hammer, args=(agent.url, stop, counts), daemon=True)
               for _ in range(hammers)]
    threads += [threading.Thread(target=_probe, args=(agent.url, stop,
                                                      lambda: readyz_client.get("/readyz"), ready),
                                 daemon=True),
                threading.Thread(target=_probe, args=(agent.url, stop, heartbeat, beats),
                                 daemon=True)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(40)
    for s in held:
        s.close()
    return ready, beats, counts


def rows(res: c.Results, quick: bool, bodies: list[bytes],
         create: Callable[..., tuple[float, list[float]]]) -> None:
    """Adds the abuse rows and the caps-overhead rows to ``res``, each on a fresh agent of
    each kind doing the same work (alternately), so both hold the same state."""
    tree = before_tree()
    if tree is None:
        print("the peer (the agent before the caps) could not be checked out: rows skipped",
              file=sys.stderr)
        return
    peer_name = f"the same agent before the caps ({BEFORE})"
    seconds = 10.0 if quick else 30.0
    # Both over plain HTTP (ours --insecure-http): what is compared is the caps, not TLS
    # (whose cost api.py measures on its own).
    ours, before = c.start_agent("--insecure-http"), start_before(tree)
    print(f"abuse: ours, {seconds:g} s", file=sys.stderr)
    ready, beats, counts = under_abuse(ours, seconds)
    print(f"abuse: before the caps, {seconds:g} s", file=sys.stderr)
    ready_b, beats_b, counts_b = under_abuse(before, seconds)
    for name, mine, theirs in (("/readyz", ready, ready_b), ("node heartbeat", beats, beats_b)):
        res.add(f"{name} p99 under the worst requests the caps allow", "ms",
                c.percentile(mine, 99) * 1e3, c.percentile(theirs, 99) * 1e3,
                higher_is_better=False, n=len(mine), peer_name=peer_name + ", same abuse",
                target="<= 100 ms", peer_n=len(theirs), hammer_answers=counts,
                peer_hammer_answers=counts_b)

    # A fresh pair for the creates: the abuse left the first pair's stores unlike.
    import httpx
    ours, before = c.start_agent("--insecure-http"), start_before(tree)
    for agent in (ours, before):
        httpx.post(f"{agent.url}/api/v1/namespaces", json={"metadata": {"name": "bench"}})
    rounds = 2 if quick else 4
    ours_runs: list[tuple[float, list[float]]] = []
    before_runs: list[tuple[float, list[float]]] = []
    per_round = bodies[:len(bodies) // 2]
    for r in range(rounds):
        # Fresh names each round: both stores take creates of new pods every time; who goes
        # first alternates, so neither always meets the machine warmer.
        batch = [b.replace(b'"kubia-', b'"r%d-kubia-' % r) for b in per_round]
        order = [("ours", ours, ours_runs), (f"before the caps ({BEFORE})", before, before_runs)]
        for name, agent, runs in (order if r % 2 == 0 else order[::-1]):
            print(f"caps overhead, round {r + 1}: {name}", file=sys.stderr)
            runs.append(create(agent, batch))
    ours_rate = c.median([x[0] for x in ours_runs])
    before_rate = c.median([x[0] for x in before_runs])
    ours_p99 = c.median([c.percentile(x[1], 99) for x in ours_runs]) * 1e3
    before_p99 = c.median([c.percentile(x[1], 99) for x in before_runs]) * 1e3
    res.add(f"create {len(per_round)} pods x {rounds}, caps on vs off", "ops/s", ours_rate,
            before_rate,
            higher_is_better=True, n=rounds, peer_name=peer_name, target="ratio >= 0.97")
    res.add("create p99, caps on vs off", "ms", ours_p99, before_p99, higher_is_better=False,
            n=rounds, peer_name=peer_name, target="ratio >= 0.97")
