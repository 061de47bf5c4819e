#!/usr/bin/env python3
"""API benchmark: one agent against a single-member etcd, on loopback, in the same run.

Measures (ours with TLS and a client certificate, as every agent serves; etcd with TLS
and client certificates, --client-cert-auth):
  first   GET /version on a new connection, handshake included (median), and over plain
          HTTP for both (ours --insecure-http) as extra fields.
  create  N pods with 16 concurrent clients: ops/s, p50/p99 latency, against etcd puts of the
          same bytes (gRPC through python-etcd3, and the HTTP JSON gateway); ratio to the best.
          The same over plain HTTP for both (the ratio before TLS), and TLS's cost to ours
          (TLS against our plain HTTP; target at most 15%).
  list    N pods: latency (median of runs), against an etcd range over the same keys (gRPC);
          and the same list as a Table (kubectl get) and as protobuf (client-go's typed
          clients), each against the JSON list of the same agent.
  apply   kubectl apply -f examples/kubia.yaml into a fresh namespace, wall time, against
          the same objects made through the official Python client.
  watch   W watchers, U updates: p99 delay from write acknowledged to the event received by
          every watcher; etcd with the same watchers and writer (gRPC and HTTP gateway).
  rss     the agent's resident memory holding N pods, and etcd's holding the same values.
  caps    create ops/s and p99 with the hostile-input caps, against the same agent before
          them (a git worktree of _hostile.BEFORE), alternating, in the same run.
  abuse   p99 of /readyz and of a node heartbeat while one client sends the worst requests
          the caps allow (largest body, deepest nesting, alias bomb, most patch ops, widest
          body, 100 watches), against the agent before the caps under the same abuse.

Both sides are driven by the same Python load generator (threads for request/response,
trio for the watch streams), so the generator's own cost is shared.  Both fsync each
write (etcd always does; the agent by default).

Usage: scripts/bench/api.py [--quick] [--out FILE]
"""

from __future__ import annotations

import base64
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import _hostile

CLIENTS = 16


def pod_body(i: int) -> bytes:
    import orjson
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"kubia-{i:05d}", "labels": {"app": "kubia", "tier": "web",
                                                          "shard": str(i % 10)}},
        "spec": {"containers": [{
            "name": "kubia", "image": "luksa/kubia:v1",
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": "GREETING", "value": "You've hit"}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                          "limits": {"memory": "128Mi"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 2},
        }]},
    })


def run_clients(n: int, make_op: Callable[[], Callable[[int], None]]) -> tuple[float, list[float]]:
    """n operations over CLIENTS threads (each with its own client); (ops/s, latencies s)."""
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors: list[BaseException] = []
    ready = threading.Barrier(CLIENTS + 1)

    def worker(w: int) -> None:
        op = make_op()
        ready.wait()
        mine = latencies[w]
        try:
            while (i := next(counter)) < n:
                t0 = time.perf_counter()
                op(i)
                mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(CLIENTS)]
    for t in threads:
        t.start()
    ready.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    flat = [x for lst in latencies for x in lst]
    return len(flat) / wall, flat


# --- creates ----------------------------------------------------------------------------------


def ours_create(agent: c.Agent, bodies: list[bytes]) -> tuple[float, list[float]]:
    def make() -> Callable[[int], None]:
        http = agent.http(timeout=60)

        def op(i: int) -> None:
            r = http.post("/api/v1/namespaces/bench/pods", content=bodies[i],
                          headers={"Content-Type": "application/json"})
            if r.status_code != 201:
                raise RuntimeError(f"create failed: {r.status_code} {r.text[:200]}")
        return op
    return run_clients(len(bodies), make)


def etcd_grpc_create(etcd: c.Etcd, bodies: list[bytes], prefix: str) -> tuple[float, list[float]]:
    def make() -> Callable[[int], None]:
        client = etcd.grpc()

        def op(i: int) -> None:
            client.put(f"{prefix}kubia-{i:05d}", bodies[i])
        return op
    return run_clients(len(bodies), make)


def etcd_http_create(etcd: c.Etcd, bodies: list[bytes], prefix: str) -> tuple[float, list[float]]:
    def make() -> Callable[[int], None]:
        http = etcd.http(timeout=60)

        def op(i: int) -> None:
            key = base64.b64encode(f"{prefix}kubia-{i:05d}".encode()).decode()
            r = http.post("/v3/kv/put", json={"key": key,
                                              "value": base64.b64encode(bodies[i]).decode()})
            if r.status_code != 200:
                raise RuntimeError(f"etcd put failed: {r.status_code} {r.text[:200]}")
        return op
    return run_clients(len(bodies), make)


def ceiling_create(bodies: list[bytes]) -> float:
    """The same load against a trivial ASGI app on hypercorn: what the HTTP stack allows."""
    import httpx
    port = c.free_port()
    proc = c.spawn([sys.executable, str(Path(__file__).with_name("_asgi_ceiling.py")), str(port)],
                   os.path.join(c.tempdir("bench-ceiling-"), "log"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)

    def make() -> Callable[[int], None]:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

        def op(i: int) -> None:
            http.post("/x", content=bodies[i], headers={"Content-Type": "application/json"})
        return op
    rate, _ = run_clients(len(bodies), make)
    proc.kill()
    proc.wait()
    return rate


# --- lists ------------------------------------------------------------------------------------


def time_runs(fn: Callable[[], int], runs: int) -> tuple[float, int]:
    times, count = [], 0
    fn()  # warm up
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return c.median(times), count


def ours_list(http: Any) -> int:
    import orjson
    r = http.get("/api/v1/namespaces/bench/pods", timeout=60)
    return len(orjson.loads(r.content)["items"])


TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf, */*"


def ours_list_as(http: Any, accept: str) -> tuple[int, int]:
    """(status, bytes) of the pod list in the form ``accept`` asks for, read whole (not
    parsed: what the server and the wire cost, which is what the forms differ in)."""
    r = http.get("/api/v1/namespaces/bench/pods", headers={"Accept": accept}, timeout=60)
    r.raise_for_status()
    return r.status_code, len(r.content)


def apply_runs(agent: c.Agent, runs: int) -> tuple[float, float]:
    """Median wall time of ``kubectl apply -f examples/kubia.yaml`` into a fresh namespace,
    and of the same objects made through the official Python client (create_from_yaml)."""
    import shutil
    import subprocess

    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes import utils as k8s_utils
    kubeconfig = os.path.join(agent.data_dir, "admin.kubeconfig")
    # Without the NodePort Service's fixed port: each run applies into a new namespace,
    # and a node port is the cluster's, not the namespace's.
    text = (Path(__file__).resolve().parents[2] / "examples" / "kubia.yaml").read_text()
    examples = os.path.join(c.tempdir("bench-apply-"), "kubia.yaml")
    Path(examples).write_text("".join(line for line in text.splitlines(keepends=True)
                                      if "nodePort:" not in line))
    kubectl = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or "kubectl"
    cfg = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    env = {**os.environ, "KUBECONFIG": kubeconfig, "HOME": agent.data_dir}
    ours: list[float] = []
    peer: list[float] = []
    with agent.http() as h, k8s.ApiClient(cfg) as api:
        for i in range(runs + 1):  # the first of each warms caches (discovery, OpenAPI)
            for who in ("kubectl", "python"):
                ns = f"apply-{who}-{i}"
                h.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
                t0 = time.perf_counter()
                if who == "kubectl":
                    subprocess.run([kubectl, "apply", "-n", ns, "-f", examples], env=env,
                                   check=True, capture_output=True, timeout=60)
                else:
                    k8s_utils.create_from_yaml(api, examples, namespace=ns)
                took = time.perf_counter() - t0
                if i:
                    (ours if who == "kubectl" else peer).append(took)
    return c.median(ours), c.median(peer)


def etcd_list(client, prefix: str) -> int:
    return sum(1 for _ in client.get_prefix(prefix))


# --- watches ----------------------------------------------------------------------------------


async def watch_delays(n_watchers: int, n_updates: int, rate_hz: float,
                       open_stream: Callable, write: Callable
                       ) -> tuple[list[float], list[float]]:
    """Per update: (last watcher's receive - write acknowledged, ... - write sent)."""
    import trio
    acked: dict[int, float] = {}
    sent: dict[int, float] = {}
    received: list[dict[int, float]] = [{} for _ in range(n_watchers)]
    started = finished = 0
    all_finished = trio.Event()

    async def watcher(w: int, task_status: trio.TaskStatus[None]) -> None:
        nonlocal started, finished
        async with open_stream() as events:
            started += 1
            task_status.started()
            seen = received[w]
            async for rev in events:
                seen[rev] = time.perf_counter()
                if len(seen) >= n_updates:
                    break
        finished += 1
        if finished == n_watchers:
            all_finished.set()

    async with trio.open_nursery() as nursery:
        for w in range(n_watchers):
            await nursery.start(watcher, w)
        await trio.sleep(0.5)
        interval = 1.0 / rate_hz
        next_at = trio.current_time()
        for i in range(n_updates):
            t_sent = time.perf_counter()
            rev = await write(i)
            acked[rev] = time.perf_counter()
            sent[rev] = t_sent
            next_at += interval
            await trio.sleep_until(next_at)
        with trio.move_on_after(30) as scope:
            await all_finished.wait()
        if scope.cancelled_caught:
            missing = sum(n_updates - len(r) for r in received)
            raise RuntimeError(f"{missing} watch events never arrived")
        nursery.cancel_scope.cancel()
    return _delays(received, acked, sent)


def _delays(received: list[dict[int, float]], acked: dict[int, float],
            sent: dict[int, float]) -> tuple[list[float], list[float]]:
    last = {rev: max(r[rev] for r in received) for rev in acked}
    # An event can reach the watchers before the write's own response reaches the writer:
    # that is a delay of 0 from the acknowledgement.
    return ([max(0.0, last[rev] - t) for rev, t in acked.items()],
            [last[rev] - sent[rev] for rev in acked])


def ours_watch(agent: c.Agent, n_watchers: int, n_updates: int,
               rate_hz: float) -> tuple[list[float], list[float]]:
    import contextlib

    import httpx
    import orjson
    import trio

    async def main() -> tuple[list[float], list[float]]:
        limits = httpx.Limits(max_connections=n_watchers + 10, max_keepalive_connections=20)
        async with agent.ahttp(timeout=httpx.Timeout(60, read=None), limits=limits) as http:
            r = await http.post("/api/v1/namespaces/bench/configmaps",
                                json={"metadata": {"name": "watched"}, "data": {"n": "0"}})
            start_rv = r.json()["metadata"]["resourceVersion"]

            @contextlib.asynccontextmanager
            async def open_stream():
                async with http.stream("GET", "/api/v1/namespaces/bench/configmaps", params={
                        "watch": "true", "resourceVersion": start_rv,
                        "fieldSelector": "metadata.name=watched"}) as resp:
                    async def events():
                        async for line in resp.aiter_lines():
                            if line:
                                ev = orjson.loads(line)
                                yield int(ev["object"]["metadata"]["resourceVersion"])
                    yield events()

            async def write(i: int) -> int:
                r = await http.patch("/api/v1/namespaces/bench/configmaps/watched",
                                     content=b'{"data":{"n":"%d"}}' % (i + 1),
                                     headers={"Content-Type": "application/merge-patch+json"})
                return int(r.json()["metadata"]["resourceVersion"])

            return await watch_delays(n_watchers, n_updates, rate_hz, open_stream, write)
    return trio.run(main)


def etcd_http_watch(etcd: c.Etcd, n_watchers: int, n_updates: int,
                    rate_hz: float) -> tuple[list[float], list[float]]:
    import contextlib

    import httpx
    import orjson
    import trio

    key = base64.b64encode(b"/watched").decode()

    async def main() -> tuple[list[float], list[float]]:
        limits = httpx.Limits(max_connections=n_watchers + 10, max_keepalive_connections=20)
        async with etcd.ahttp(timeout=httpx.Timeout(60, read=None), limits=limits) as http:
            r = await http.post("/v3/kv/put", json={"key": key, "value": ""})
            start = int(r.json()["header"]["revision"]) + 1

            @contextlib.asynccontextmanager
            async def open_stream():
                body = {"create_request": {"key": key, "start_revision": start}}
                async with http.stream("POST", "/v3/watch", json=body) as resp:
                    async def events():
                        async for line in resp.aiter_lines():
                            if not line:
                                continue
                            res = orjson.loads(line).get("result") or {}
                            for ev in res.get("events") or []:
                                yield int(ev["kv"]["mod_revision"])
                    yield events()

            async def write(i: int) -> int:
                r = await http.post("/v3/kv/put", json={
                    "key": key, "value": base64.b64encode(b'{"n":"%d"}' % i).decode()})
                return int(r.json()["header"]["revision"])

            return await watch_delays(n_watchers, n_updates, rate_hz, open_stream, write)
    return trio.run(main)


def etcd_grpc_watch(etcd: c.Etcd, n_watchers: int, n_updates: int,
                    rate_hz: float) -> tuple[list[float], list[float]]:
    """python-etcd3: each watcher its own client (own gRPC channel), callbacks on its thread."""
    writer = etcd.grpc()
    start = writer.put("/watched-grpc", b"").header.revision + 1
    received: list[dict[int, float]] = [{} for _ in range(n_watchers)]
    clients = []
    for w in range(n_watchers):
        cl = etcd.grpc()
        seen = received[w]

        def cb(resp, seen=seen) -> None:
            now = time.perf_counter()
            for ev in getattr(resp, "events", ()):  # an error object when the watch ends
                seen[ev.mod_revision] = now
        cl.add_watch_callback("/watched-grpc", cb, start_revision=start)
        clients.append(cl)
    time.sleep(1.0)
    acked: dict[int, float] = {}
    sent: dict[int, float] = {}
    interval = 1.0 / rate_hz
    next_at = time.perf_counter()
    for i in range(n_updates):
        t_sent = time.perf_counter()
        rev = writer.put("/watched-grpc", b'{"n":"%d"}' % i).header.revision
        acked[rev] = time.perf_counter()
        sent[rev] = t_sent
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    deadline = time.perf_counter() + 30
    while any(len(r) < n_updates for r in received) and time.perf_counter() < deadline:
        time.sleep(0.05)
    for cl in clients:
        cl.close()
    if any(len(r) < n_updates for r in received):
        raise RuntimeError("etcd gRPC watch events never arrived")
    return _delays(received, acked, sent)


# --- main -------------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    import psutil
    return psutil.Process(pid).memory_info().rss / 2**20


def first_request(make: Callable[[], Any], runs: int) -> float:
    """Median seconds of one GET /version on a new connection (a new client each time: the
    TCP and, over TLS, the handshake with its certificates, then the request)."""
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        with make() as h:
            if h.get("/version").status_code != 200:
                raise RuntimeError("GET /version failed")
        times.append(time.perf_counter() - t0)
    return c.median(times[1:])


def tls_cost(n: int) -> tuple[float, float]:
    """Create ops/s of two agents that differ only in TLS: the same pods (no token volume,
    which only a TLS agent's admission would add) and no coordinator on either (its
    controllers list every pod at each change, a cost that grows with the store and is
    not TLS's, and that swamps it at this size)."""
    import orjson
    same = []
    for i in range(n):
        pod = orjson.loads(pod_body(i))
        pod["spec"]["automountServiceAccountToken"] = False
        same.append(orjson.dumps(pod))
    rates = []
    for extra in ((), ("--insecure-http",)):
        agent = c.start_agent("--no-coordinator", *extra)
        try:
            with agent.http() as h:
                h.post("/api/v1/namespaces", json={"metadata": {"name": "bench"}}
                       ).raise_for_status()
            rates.append(ours_create(agent, same)[0])
        finally:
            agent.proc.kill()
            agent.proc.wait()
    return rates[0], rates[1]


def create_rows(res: c.Results, n: int, agent: c.Agent, plain: c.Agent, etcd: c.Etcd,
                etcd_plain: c.Etcd, bodies: list[bytes]) -> float:
    """The create rows: ours with TLS against etcd with TLS and client certificates; ours
    over plain HTTP against plain etcd (the ratio before TLS); TLS's cost to each.
    Returns the best TLS peer's create rate."""
    def best(grpc: tuple[float, list[float]], http: tuple[float, list[float]],
             tls: str) -> tuple[float, list[float], str, float, str]:
        rows = sorted([(grpc[0], grpc[1], f"etcd gRPC{tls} (python-etcd3)"),
                       (http[0], http[1], f"etcd HTTP gateway{tls}")], key=lambda x: -x[0])
        return rows[0][0], rows[0][1], rows[0][2], rows[1][0], rows[1][2]

    print("create: ours (TLS, client certificate)", file=sys.stderr)
    ours_rate, ours_lat = ours_create(agent, bodies)
    print("create: ours (plain HTTP, --insecure-http)", file=sys.stderr)
    plain_rate, plain_lat = ours_create(plain, bodies)
    print("create: etcd gRPC (TLS, client certificate)", file=sys.stderr)
    grpc = etcd_grpc_create(etcd, bodies, "/registry/pods/bench/")
    print("create: etcd HTTP gateway (TLS, client certificate)", file=sys.stderr)
    http = etcd_http_create(etcd, bodies, "/gateway/pods/bench/")
    print("create: etcd gRPC and HTTP gateway (plain)", file=sys.stderr)
    grpc_plain = etcd_grpc_create(etcd_plain, bodies, "/registry/pods/bench/")
    http_plain = etcd_http_create(etcd_plain, bodies, "/gateway/pods/bench/")
    best_rate, best_lat, best_name, other_rate, other_name = best(grpc, http, " TLS")
    bp_rate, _bp_lat, bp_name, _, _ = best(grpc_plain, http_plain, "")
    res.add(f"create {n} pods, {CLIENTS} clients", "ops/s", ours_rate, best_rate,
            higher_is_better=True, n=n, peer_name=best_name,
            target="ratio to etcd with TLS >= ours plain / etcd plain",
            etcd_grpc=round(grpc[0], 1), etcd_http=round(http[0], 1), tls=True)
    res.add("create p50", "ms", c.percentile(ours_lat, 50) * 1e3, c.percentile(best_lat, 50) * 1e3,
            higher_is_better=False, n=n, peer_name=best_name)
    res.add("create p99", "ms", c.percentile(ours_lat, 99) * 1e3, c.percentile(best_lat, 99) * 1e3,
            higher_is_better=False, n=n, peer_name=best_name)
    res.add(f"create {n} pods (other etcd API)", "ops/s", ours_rate, other_rate,
            higher_is_better=True, n=n, peer_name=other_name)
    res.add(f"create {n} pods, {CLIENTS} clients, both plain HTTP", "ops/s", plain_rate, bp_rate,
            higher_is_better=True, n=n, peer_name=bp_name,
            note="ours --insecure-http against etcd without TLS: the ratio before TLS",
            ours_p99_ms=round(c.percentile(plain_lat, 99) * 1e3, 2))
    print("create: TLS against plain, nothing else different", file=sys.stderr)
    tls_rate, same_plain_rate = tls_cost(n)
    res.add("TLS's cost: our create ops/s with TLS against our plain HTTP", "ops/s", tls_rate,
            same_plain_rate, higher_is_better=True, n=n,
            peer_name="ours, plain HTTP; same pods, no coordinator on either",
            target="ratio >= 0.85 (at most 15% overhead)",
            overhead_pct=round((1 - tls_rate / same_plain_rate) * 100, 1),
            etcd_overhead_pct=round((1 - best_rate / bp_rate) * 100, 1),
            with_coordinator_ours_tls=round(ours_rate, 1),
            with_coordinator_ours_plain=round(plain_rate, 1),
            note="the agents of the rows above run their coordinator, and the TLS one's "
                 "admission adds each pod's token volume")
    return best_rate


def main() -> None:
    a = c.args(__doc__.splitlines()[1])
    c.ensure_bench_extra()

    n = 2_000 if a.quick else 10_000
    watchers, updates = (20, 200) if a.quick else (100, 1_000)
    rate_hz = 100.0
    list_runs = 5 if a.quick else 9
    first_runs = 20 if a.quick else 50
    res = c.Results()
    bodies = [pod_body(i) for i in range(n)]
    print(f"pods={n} (~{sum(map(len, bodies)) // n} bytes each), clients={CLIENTS}, "
          f"watchers={watchers}, updates={updates} at {rate_hz:g}/s", file=sys.stderr)

    agent, plain = c.start_agent(), c.start_agent("--insecure-http")
    etcd, etcd_plain = c.start_etcd(tls=True), c.start_etcd()
    for one in (agent, plain):
        with one.http() as h:
            h.post("/api/v1/namespaces", json={"metadata": {"name": "bench"}}).raise_for_status()

    print("first request on a new connection", file=sys.stderr)
    res.add("first request on a new connection (TLS handshake included)", "ms",
            first_request(lambda: agent.http(timeout=10), first_runs) * 1e3,
            first_request(lambda: etcd.http(timeout=10), first_runs) * 1e3,
            higher_is_better=False, n=first_runs, peer_name="etcd HTTP gateway, TLS",
            note="GET /version with the client certificate, a new client each time",
            ours_plain_ms=round(first_request(lambda: plain.http(timeout=10), first_runs) * 1e3, 2),
            etcd_plain_ms=round(first_request(lambda: etcd_plain.http(timeout=10), first_runs) * 1e3,
                                2))
    best_rate = create_rows(res, n, agent, plain, etcd, etcd_plain, bodies)
    for done in (plain, etcd_plain):  # the plain ones have said what they had to
        done.proc.kill()
        done.proc.wait()

    print("create: trivial ASGI app on hypercorn (HTTP stack ceiling)", file=sys.stderr)
    ceiling = ceiling_create(bodies)
    res.add("HTTP stack ceiling: trivial app on hypercorn", "ops/s", ceiling, best_rate,
            higher_is_better=True, n=n, peer_name="the best etcd with TLS",
            note="no store, no decoding, no TLS: what the HTTP server and this generator allow")

    print("list", file=sys.stderr)
    with agent.http(timeout=60) as h:
        ours_list_s, count = time_runs(lambda: ours_list(h), list_runs)
    assert count == n, f"listed {count} pods, created {n}"
    client = etcd.grpc(grpc_options=[
        ("grpc.max_receive_message_length", 256 * 2**20)])  # 10k pods is more than 4 MiB
    etcd_list_s, ecount = time_runs(lambda: etcd_list(client, "/registry/pods/bench/"), list_runs)
    assert ecount == n
    res.add(f"list {n} pods", "ms", ours_list_s * 1e3, etcd_list_s * 1e3, higher_is_better=False,
            n=list_runs, peer_name="etcd gRPC range, TLS", target="<= 300 ms")

    ours_rss, etcd_rss = rss_mib(agent.proc.pid), rss_mib(etcd.proc.pid)
    res.add(f"RSS holding {n} pods", "MiB", ours_rss, etcd_rss, higher_is_better=False, n=1,
            peer_name="etcd (same values)", target="<= 200 MiB")

    print("watch: ours", file=sys.stderr)
    ours_d = ours_watch(agent, watchers, updates, rate_hz)
    print("watch: etcd HTTP gateway", file=sys.stderr)
    http_d = etcd_http_watch(etcd, watchers, updates, rate_hz)
    print("watch: etcd gRPC", file=sys.stderr)
    grpc_d = etcd_grpc_watch(etcd, watchers, updates, rate_hz)
    best, best_dn = min([(grpc_d, "etcd gRPC TLS (python-etcd3)"), (http_d, "etcd HTTP gateway TLS")],
                        key=lambda x: c.percentile(x[0][1], 99))
    p99 = lambda d: c.percentile(d, 99) * 1e3  # noqa: E731
    p50 = lambda d: c.percentile(d, 50) * 1e3  # noqa: E731
    res.add(f"watch delay p99 from write ack, {watchers} watchers x {updates} updates", "ms",
            p99(ours_d[0]), p99(best[0]), higher_is_better=False, n=updates, peer_name=best_dn,
            target="<= 50 ms", etcd_grpc_ms=round(p99(grpc_d[0]), 2),
            etcd_http_ms=round(p99(http_d[0]), 2))
    res.add("watch delay p99 from write sent", "ms", p99(ours_d[1]), p99(best[1]),
            higher_is_better=False, n=updates, peer_name=best_dn,
            etcd_grpc_ms=round(p99(grpc_d[1]), 2), etcd_http_ms=round(p99(http_d[1]), 2))
    res.add("watch delay p50 from write sent", "ms", p50(ours_d[1]), p50(best[1]),
            higher_is_better=False, n=updates, peer_name=best_dn)
    ours_rss2 = rss_mib(agent.proc.pid)
    res.add(f"RSS after {watchers} watches", "MiB", ours_rss2, rss_mib(etcd.proc.pid),
            higher_is_better=False, n=1, peer_name="etcd")
    # After the RSS rows: these make large temporaries that the agent's RSS keeps.
    print("list as a Table and as protobuf", file=sys.stderr)
    with agent.http(timeout=60) as h:
        forms: dict[str, tuple[float, int]] = {}
        for name, accept in (("JSON", "application/json"), ("Table", TABLE),
                             ("protobuf", PROTOBUF)):
            def size_of(accept: str = accept) -> int:
                return ours_list_as(h, accept)[1]
            forms[name] = time_runs(size_of, list_runs)
    json_s, json_bytes = forms["JSON"]
    for name in ("Table", "protobuf"):
        took, size = forms[name]
        res.add(f"list {n} pods as {'a ' if name == 'Table' else ''}{name}", "ms", took * 1e3,
                json_s * 1e3, higher_is_better=False, n=list_runs,
                peer_name="the same list as JSON, same agent", bytes=size,
                json_bytes=json_bytes, note="received whole, not parsed")

    print("kubectl apply of the examples", file=sys.stderr)
    kubectl_s, python_s = apply_runs(agent, 3 if a.quick else 7)
    res.add("kubectl apply -f examples/kubia.yaml, wall time", "ms", kubectl_s * 1e3,
            python_s * 1e3, higher_is_better=False, n=3 if a.quick else 7,
            peer_name="the same objects through the official Python client",
            note="into a fresh namespace each run; kubectl's time includes its start")

    _hostile.rows(res, a.quick, bodies, ours_create)
    res.print_and_write(a.out)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
