#!/usr/bin/env python3
"""Service-rules benchmark: our nftables rules against kube-proxy-style iptables-restore.

Inside a network namespace this script makes (and removes), for K services x 10
endpoints, K in 100, 1000, 5000 (--quick: 100, 1000):
  full      load the whole ruleset: our table through libnftables in-process (as the
            agent does; an `nft -f` process is shown too) vs `iptables-restore` of
            kube-proxy's chains (KUBE-SERVICES -> KUBE-SVC-* with statistic random ->
            KUBE-SEP-* with DNAT)
  update    one service changes one endpoint: our element-level transaction vs
            `iptables-restore --noflush` of that service's chains, as kube-proxy does
  render    our Python renderer alone (full and update), so its cost is visible
Medians of several runs.  Needs root; installs nftables and iptables with apt if missing.
Usage: scripts/bench/rules.py [--quick] [--out FILE]
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import _common as c

from netns.libnft import Nft
from netns.rules import IP, Applied, ServicePort, render_delta, render_full, render_update

ENDPOINTS = 10


def make_ports(k: int) -> list[ServicePort]:
    ports = []
    for i in range(k):
        ip = f"10.96.{i // 250}.{i % 250 + 1}"
        eps = tuple((IP(f"10.{244 + (i * ENDPOINTS + e) // 65000}."
                        f"{((i * ENDPOINTS + e) // 250) % 256}.{(i * ENDPOINTS + e) % 250 + 1}"), 8080)
                    for e in range(ENDPOINTS))
        ports.append(ServicePort("bench", f"svc{i}", "http", "TCP", 80, IP(ip), None, None,
                                 tuple(sorted(eps))))
    return ports


def iptables_service(sp: ServicePort) -> tuple[list[str], list[str]]:
    """(chain declarations, rules) of one service, kube-proxy iptables mode."""
    sid = hashlib.sha256(sp.key.encode()).hexdigest()[:16].upper()
    svc = f"KUBE-SVC-{sid}"
    chains = [f":{svc} - [0:0]"]
    rules = [f"-A KUBE-SERVICES -d {sp.cluster_ip}/32 -p tcp -m tcp --dport {sp.port} -j {svc}"]
    n = len(sp.endpoints)
    for j, (ip, port) in enumerate(sp.endpoints):
        sep = f"KUBE-SEP-{hashlib.sha256(f'{sid}{ip}'.encode()).hexdigest()[:16].upper()}"
        chains.append(f":{sep} - [0:0]")
        if j < n - 1:
            rules.append(f"-A {svc} -m statistic --mode random --probability {1 / (n - j):.10f} "
                         f"-j {sep}")
        else:
            rules.append(f"-A {svc} -j {sep}")
        rules.append(f"-A {sep} -s {ip}/32 -j KUBE-MARK-MASQ")
        rules.append(f"-A {sep} -p tcp -m tcp -j DNAT --to-destination {ip}:{port}")
    return chains, rules


def iptables_full(ports: list[ServicePort]) -> str:
    chains = [":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]"]
    rules = ["-A PREROUTING -j KUBE-SERVICES", "-A OUTPUT -j KUBE-SERVICES",
             "-A POSTROUTING -j KUBE-POSTROUTING",
             "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
             "-A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE"]
    for sp in ports:
        ch, ru = iptables_service(sp)
        chains += ch
        rules += ru
    return "*nat\n" + "\n".join(chains + rules) + "\nCOMMIT\n"


def iptables_update(old: ServicePort, new: ServicePort) -> str:
    """--noflush: re-declaring a chain flushes it; the old endpoint's chain is deleted."""
    ch, ru = iptables_service(new)
    old_ch, _ = iptables_service(old)
    gone = [x for x in old_ch if x not in ch]  # declared (so flushed), then deleted
    return ("*nat\n" + "\n".join(ch + gone + ru[1:] + [f"-X {g.split()[0][1:]}" for g in gone])
            + "\nCOMMIT\n")


def timed(fn, arg: str) -> float:
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0


def run_in(ns: str, argv: list[str], data: str) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(["ip", "netns", "exec", ns, *argv], input=data, capture_output=True,
                       text=True)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {p.stderr[:500]}")
    return elapsed


def bench_k(k: int, runs: int, res: c.Results) -> None:
    ns = f"nabench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ports = make_ports(k)
        t0 = time.perf_counter()
        full = render_full(ports, [])
        render_s = time.perf_counter() - t0
        target = ports[k // 2]
        changed = dataclasses.replace(target, endpoints=(  # ServicePort sorts them
            *target.endpoints[1:], (IP("10.250.0.1"), 8080)))
        new_ports = [changed if p is target else p for p in ports]
        t0 = time.perf_counter()
        update = render_update(ports, new_ports)
        render_update_s = time.perf_counter() - t0
        back = render_update(new_ports, ports)
        assert update and back
        lib = Nft(ns)  # what the agent uses: libnftables in-process, in the node's namespace
        try:
            ours_full = [timed(lib.run, full) for _ in range(runs)]
            # The agent's update path: the changed service is known from the watch event;
            # render its delta against what is applied, then apply -- timed together.
            state = Applied.of(ports)
            ours_update = []
            for i in range(runs * 2):
                t0 = time.perf_counter()
                delta = render_delta(state, {target.key: changed if i % 2 == 0 else target})
                assert delta is not None, "one endpoint changed: a delta, not a full render"
                lib.run(delta)
                ours_update.append(time.perf_counter() - t0)
        finally:
            lib.close()
        proc_full = [run_in(ns, ["nft", "-f", "-"], full) for _ in range(runs)]
        proc_update = [run_in(ns, ["nft", "-f", "-"], update if i % 2 == 0 else back)
                       for i in range(runs * 2)]
        ipt_full_text = iptables_full(ports)
        ipt_full = [run_in(ns, ["iptables-restore"], ipt_full_text) for _ in range(runs)]
        ipt_fwd, ipt_back = iptables_update(target, changed), iptables_update(changed, target)
        ipt_update = []
        for i in range(runs * 2):
            ipt_update.append(run_in(ns, ["iptables-restore", "--noflush"],
                                     ipt_fwd if i % 2 == 0 else ipt_back))
        ms = 1e3
        res.add(f"full apply, K={k} x {ENDPOINTS} endpoints", "ms", c.median(ours_full) * ms,
                c.median(ipt_full) * ms, higher_is_better=False, n=runs,
                peer_name="iptables-restore, kube-proxy chains",
                target="<= 100 ms at K=1000; ratio <= 0.5 at K=5000" if k in (1000, 5000) else "")
        res.add(f"one-service update (render + apply), K={k}", "ms", c.median(ours_update) * ms,
                c.median(ipt_update) * ms, higher_is_better=False, n=runs * 2,
                peer_name="iptables-restore --noflush",
                target="<= 10 ms, independent of K" if k == 5000 else "")
        res.add(f"  same via an nft -f process, full K={k}", "ms", c.median(proc_full) * ms,
                c.median(ipt_full) * ms, higher_is_better=False, n=runs,
                peer_name="iptables-restore")
        res.add(f"  same via an nft -f process, update K={k}", "ms", c.median(proc_update) * ms,
                c.median(ipt_update) * ms, higher_is_better=False, n=runs * 2,
                peer_name="iptables-restore --noflush")
        res.add(f"render alone, K={k} (full; update from whole lists in update_ms)", "ms",
                render_s * ms, None, higher_is_better=False, n=1,
                update_ms=round(render_update_s * ms, 3))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    a = c.args(__doc__.splitlines()[1])
    c.ensure_apt("nftables", "nft")
    c.ensure_apt("iptables", "iptables-restore")
    res = c.Results()
    for k in ((100, 1000) if a.quick else (100, 1000, 5000)):
        print(f"K={k}", file=sys.stderr)
        bench_k(k, 3 if k >= 5000 else 5, res)
    res.print_and_write(a.out)


if __name__ == "__main__":
    main()
