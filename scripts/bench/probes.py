#!/usr/bin/env python3
"""Probe benchmark: our prober against the obvious thread-per-probe loop, same run.

Inside a network namespace this script makes: an HTTP server and a TCP listener;
then 1000 probes per second for DURATION seconds (1000 workers, period 1 s), HTTP
and TCP separately, each in its own process so its CPU time and RSS are its own:
  ours   probes/worker.py Prober (Trio tasks, httpx / trio sockets)
  peer   one thread per probe, urllib.request / socket.create_connection
Reports CPU as % of one core, RSS, and schedule drift p99 (|interval - period| between
a worker's successive probes).  Needs root.  Usage: scripts/bench/probes.py [--quick] [--out F]
"""

from __future__ import annotations

import json
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
    from probes.handlers import http_get, tcp_socket
    from probes.state import Kind, ProbeParams
    from probes.worker import ContainerProbe, Prober
    kind, workers, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    calls = {}
    def handler_for(i):
        async def h(timeout_s):
            calls.setdefault(i, []).append(trio.current_time())
            if kind == "http":
                return await http_get("127.0.0.1", 8080, "/", timeout_s=timeout_s)
            return await tcp_socket("127.0.0.1", 9090, timeout_s)
        return h
    async def main():
        async with trio.open_nursery() as nursery:
            prober = Prober("/dev/null/none", lambda *a: None, seed=1)
            prober._save = lambda: None
            await nursery.start(prober.run)
            params = ProbeParams(period_s=%(period)s, timeout_s=1, failure_threshold=1000000)
            for i in range(workers):
                prober.add_pod(f"p{i}", [ContainerProbe("c", f"c{i}", Kind.READINESS, params,
                                                        handler_for(i))])
            await trio.sleep(2)  # warm up
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            await trio.sleep(duration)
            r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / (t1 - t0)
            drift = [abs(b - a - %(period)s) for ts in calls.values()
                     for a, b in zip(ts, ts[1:]) if a >= t0 - 1]
            print(json.dumps({"cpu": cpu, "rss_mib": r1.ru_maxrss / 1024, "drift": sorted(drift),
                              "probes": sum(len(v) for v in calls.values())}))
            nursery.cancel_scope.cancel()
    trio.run(main)
''') % {"period": PERIOD_S}

PEER = textwrap.dedent('''
    import json, resource, socket, sys, threading, time, urllib.request
    kind, workers, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    calls = {}
    stop = False
    def worker(i):
        due = time.monotonic() + (i %% 1000) / 1000 * %(period)s
        while not stop:
            time.sleep(max(0.0, due - time.monotonic()))
            calls.setdefault(i, []).append(time.monotonic())
            try:
                if kind == "http":
                    urllib.request.urlopen("http://127.0.0.1:8080/", timeout=1).read(10240)
                else:
                    socket.create_connection(("127.0.0.1", 9090), timeout=1).close()
            except OSError:
                pass
            due += %(period)s
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(2)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    time.sleep(duration)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    stop = True
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / (t1 - t0)
    drift = [abs(b - a - %(period)s) for ts in list(calls.values())
             for a, b in zip(ts, ts[1:]) if a >= t0 - 1]
    print(json.dumps({"cpu": cpu, "rss_mib": r1.ru_maxrss / 1024, "drift": sorted(drift),
                      "probes": sum(len(v) for v in list(calls.values()))}))
''') % {"period": PERIOD_S}

HTTP_SERVER = ("import http.server, socketserver\n"
               "class H(http.server.BaseHTTPRequestHandler):\n"
               "    def do_GET(self):\n"
               "        self.send_response(200); self.send_header('Content-Length', '2')\n"
               "        self.end_headers(); self.wfile.write(b'ok')\n"
               "    def log_message(self, *a): pass\n"
               "class S(http.server.ThreadingHTTPServer):\n"
               "    request_queue_size = 4096\n"
               "S(('127.0.0.1', 8080), H).serve_forever()\n")
TCP_SERVER = ("import socket\n"
              "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind(('127.0.0.1', 9090)); s.listen(4096)\n"
              "while True:\n"
              "    c, _ = s.accept(); c.close()\n")


def run(ns: str, code: str, kind: str, duration: float) -> dict:  # type: ignore[type-arg]
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
        for code in (HTTP_SERVER, TCP_SERVER):
            servers.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                             code]))
        time.sleep(1)
        res = c.Results()
        for kind, target in (("tcp", "<= 15% of a core"), ("http", "<= 30% of a core")):
            print(f"{kind}: ours", file=sys.stderr)
            ours = run(ns, OURS, kind, duration)
            print(f"{kind}: threads", file=sys.stderr)
            peer = run(ns, PEER, kind, duration)
            rate = ours["probes"] / (duration + 2)
            res.add(f"{kind.upper()} probes, {WORKERS}/s for {duration:g}s: CPU", "% core",
                    ours["cpu"] * 100, peer["cpu"] * 100, higher_is_better=False,
                    n=ours["probes"], peer_name="thread per probe (urllib/socket)",
                    target=target, probes_per_s=round(rate))
            res.add(f"{kind.upper()} probes: RSS", "MiB", ours["rss_mib"], peer["rss_mib"],
                    higher_is_better=False, n=1, peer_name="thread per probe")
            res.add(f"{kind.upper()} probes: schedule drift p99", "ms",
                    c.percentile(ours["drift"], 99) * 1e3, c.percentile(peer["drift"], 99) * 1e3,
                    higher_is_better=False, n=len(ours["drift"]), peer_name="thread per probe",
                    target="<= 100 ms")
        res.print_and_write(a.out)
    finally:
        for s in servers:
            s.kill()
            s.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    main()
