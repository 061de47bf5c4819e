#!/usr/bin/env python3
"""Probe benchmark: our prober against the obvious thread-per-probe loop, same run.

Inside a network namespace this script makes: an HTTP server and a TCP listener;
then 1000 probes per second for 60 s (15 s with --quick; 1000 workers, period 1 s),
HTTP and TCP separately, each in its own process so its CPU time and RSS are its own:
  ours   probes/worker.py Prober with the handlers probes/spec.py builds for a pod
  peer   one thread per probe, urllib.request / socket.create_connection
Reports medians of 3 runs (1 with --quick): CPU as % of one core, probes/s achieved,
RSS, and schedule drift p99 (|interval - period| between a worker's successive
probes).  Needs root.  Usage: scripts/bench/probes.py [--quick] [--out F]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

WORKERS = 1000
PERIOD_S = 1.0

OURS = textwrap.dedent('''
    import json, resource, sys, time, trio
    from probes.spec import handler_for
    from probes.state import Kind, ProbeParams
    from probes.worker import ContainerProbe, Prober
    kind, workers, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    calls, failed = {}, [0]
    spec = {"httpGet": {"port": 8080, "path": "/"}} if kind == "http" else {"tcpSocket": {"port": 9090}}
    def handler_for_worker(i):
        _, probe = handler_for(spec, {}, "127.0.0.1")  # as the pod manager builds them
        async def h(timeout_s):
            calls.setdefault(i, []).append(trio.current_time())
            ok, message = await probe(timeout_s)
            failed[0] += not ok
            return ok, message
        return h
    async def main():
        async with trio.open_nursery() as nursery:
            prober = Prober("/dev/null/none", lambda *a: None, seed=1)
            prober._save = lambda: None
            await nursery.start(prober.run)
            params = ProbeParams(period_s=%(period)s, timeout_s=1, failure_threshold=1000000)
            for i in range(workers):
                prober.add_pod(f"p{i}", [ContainerProbe("c", f"c{i}", Kind.READINESS, params,
                                                        handler_for_worker(i))])
            await trio.sleep(2)  # warm up
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            n0, f0 = sum(len(v) for v in calls.values()), failed[0]
            await trio.sleep(duration)
            r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            n1, f1 = sum(len(v) for v in calls.values()), failed[0]
            cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / (t1 - t0)
            drift = [abs(b - a - %(period)s) for ts in calls.values()
                     for a, b in zip(ts, ts[1:]) if a >= t0 - 1]
            print(json.dumps({"cpu": cpu, "rss_mib": r1.ru_maxrss / 1024, "drift": sorted(drift),
                              "rate": (n1 - n0) / (t1 - t0), "failed": f1 - f0}))
            nursery.cancel_scope.cancel()
    trio.run(main)
''') % {"period": PERIOD_S}

PEER = textwrap.dedent('''
    import json, resource, socket, sys, threading, time, urllib.request
    kind, workers, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    calls, failed = {}, [0]
    stop = False
    def worker(i):
        due = time.monotonic() + (i %% 1000) / 1000 * %(period)s
        while not stop:
            time.sleep(max(0.0, due - time.monotonic()))
            calls.setdefault(i, []).append(time.monotonic())
            try:
                if kind == "http":
                    with urllib.request.urlopen("http://127.0.0.1:8080/", timeout=1) as r:
                        r.read(10240)
                else:
                    socket.create_connection(("127.0.0.1", 9090), timeout=1).close()
            except OSError:
                failed[0] += 1
            due += %(period)s
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(2)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    n0, f0 = sum(len(v) for v in list(calls.values())), failed[0]
    time.sleep(duration)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    n1, f1 = sum(len(v) for v in list(calls.values())), failed[0]
    stop = True
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / (t1 - t0)
    drift = [abs(b - a - %(period)s) for ts in list(calls.values())
             for a, b in zip(ts, ts[1:]) if a >= t0 - 1]
    print(json.dumps({"cpu": cpu, "rss_mib": r1.ru_maxrss / 1024, "drift": sorted(drift),
                      "rate": (n1 - n0) / (t1 - t0), "failed": f1 - f0}))
''') % {"period": PERIOD_S}

# The targets: one asyncio process answering HTTP on 8080 and accepting TCP on 9090,
# cheap enough (a few % of a core at 1000 connections/s) not to starve either prober
# on a small machine.
SERVERS = textwrap.dedent('''
    import asyncio
    RESP = (b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: text/plain\\r\\n"
            b"Connection: close\\r\\n\\r\\nok")
    class Http(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport, self.head = transport, b""
        def data_received(self, data):
            self.head += data
            if b"\\r\\n\\r\\n" in self.head:
                self.transport.write(RESP)
                self.transport.close()
    class Tcp(asyncio.Protocol):
        def connection_made(self, transport):
            transport.close()
    async def main():
        loop = asyncio.get_running_loop()
        await loop.create_server(Http, "127.0.0.1", 8080, backlog=4096)
        await loop.create_server(Tcp, "127.0.0.1", 9090, backlog=4096)
        await asyncio.Event().wait()
    asyncio.run(main())
''')


def run(ns: str, code: str, kind: str, duration: float) -> dict:
    p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, kind, str(WORKERS),
                        str(duration)], capture_output=True, text=True, cwd=c.ROOT,
                       timeout=duration + 120)
    if p.returncode != 0:
        raise SystemExit(f"{kind} run failed: {p.stderr[-1500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    a = c.args(__doc__.splitlines()[1])
    duration = 15.0 if a.quick else 60.0
    ns = f"nabench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    servers = []
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        servers.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                         SERVERS]))
        time.sleep(1)
        res = c.Results()
        runs = 1 if a.quick else 3
        for kind, target in (("tcp", "<= 15% of a core"), ("http", "<= 30% of a core")):
            ours, peer = [], []
            for r in range(runs):  # alternated, so a disturbance hits both sides alike
                print(f"{kind} run {r + 1}/{runs}: ours", file=sys.stderr)
                ours.append(run(ns, OURS, kind, duration))
                print(f"{kind} run {r + 1}/{runs}: thread per probe", file=sys.stderr)
                peer.append(run(ns, PEER, kind, duration))

            def med(runs: list[dict], key: str) -> float:
                return statistics.median(x[key] for x in runs)
            K = kind.upper()
            res.add(f"{K} probes, {WORKERS}/s for {duration:g}s: CPU", "% core",
                    med(ours, "cpu") * 100, med(peer, "cpu") * 100, higher_is_better=False,
                    n=runs, peer_name="thread per probe (urllib/socket)", target=target,
                    runs_ours=[round(x["cpu"] * 100, 1) for x in ours],
                    runs_peer=[round(x["cpu"] * 100, 1) for x in peer])
            res.add(f"{K} probes: achieved rate", "probes/s", med(ours, "rate"),
                    med(peer, "rate"), higher_is_better=True, n=runs, peer_name="thread per probe",
                    failed_ours=sum(x["failed"] for x in ours),
                    failed_peer=sum(x["failed"] for x in peer))
            res.add(f"{K} probes: RSS", "MiB", med(ours, "rss_mib"), med(peer, "rss_mib"),
                    higher_is_better=False, n=runs, peer_name="thread per probe")
            res.add(f"{K} probes: schedule drift p99", "ms",
                    statistics.median(c.percentile(x["drift"], 99) for x in ours) * 1e3,
                    statistics.median(c.percentile(x["drift"], 99) for x in peer) * 1e3,
                    higher_is_better=False, n=runs, peer_name="thread per probe",
                    target="<= 100 ms")
        res.print_and_write(a.out)
    finally:
        for s in servers:
            s.kill()
            s.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    main()
