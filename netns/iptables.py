"""The iptables backend (kube-proxy's iptables mode), for kernels without nftables.

Same input and the same ``sync`` as netns/nft.py.  It renders kube-proxy's
chains -- ``KUBE-SERVICES`` -> ``KUBE-SVC-*`` choosing an endpoint with
``statistic --mode random`` -> ``KUBE-SEP-*`` doing the DNAT, ``recent`` lists
for ClientIP affinity, ``KUBE-NODEPORTS`` for node addresses, ``KUBE-MARK-MASQ``
for hairpin and NodePort traffic, and ``REJECT`` in the filter table for
services without endpoints -- and loads them with one ``iptables-restore`` (a
transaction per table).  Every sync rewrites our chains whole; with far fewer
services on a node than the nftables backend is built for, that is its whole
design, as it was kube-proxy's for years.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable

from netns.nft import RulesError, flush_udp
from netns.rules import ServicePort

__all__ = ["IptablesRules", "render_iptables"]

MASQ_MARK = "0x4000/0x4000"


def _id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:16].upper()}"


def render_iptables(ports: list[ServicePort]) -> str:
    nat_chains = [":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]",
                  ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]"]
    nat = ["-A PREROUTING -j KUBE-SERVICES", "-A OUTPUT -j KUBE-SERVICES",
           "-A POSTROUTING -j KUBE-POSTROUTING",
           f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}",
           f"-A KUBE-POSTROUTING -m mark --mark {MASQ_MARK} -j MASQUERADE"]
    filt_chains = [":KUBE-SVC-REJECT - [0:0]"]
    filt = ["-A INPUT -j KUBE-SVC-REJECT", "-A FORWARD -j KUBE-SVC-REJECT",
            "-A OUTPUT -j KUBE-SVC-REJECT"]
    for sp in ports:
        proto = sp.proto
        match = f"-p {proto} -m {proto}"
        reject = "tcp-reset" if proto == "tcp" else "icmp-port-unreachable"
        if not sp.endpoints:
            if sp.cluster_ip:
                filt.append(f"-A KUBE-SVC-REJECT -d {sp.cluster_ip}/32 {match} --dport {sp.port} "
                            f"-j REJECT --reject-with {reject}")
            if sp.node_port:
                filt.append(f"-A KUBE-SVC-REJECT -m addrtype --dst-type LOCAL {match} "
                            f"--dport {sp.node_port} -j REJECT --reject-with {reject}")
            continue
        svc = _id("KUBE-SVC", sp.key)
        nat_chains.append(f":{svc} - [0:0]")
        if sp.cluster_ip:
            nat.append(f"-A KUBE-SERVICES -d {sp.cluster_ip}/32 {match} --dport {sp.port} -j {svc}")
        if sp.node_port:
            ext = _id("KUBE-EXT", sp.key)
            nat_chains.append(f":{ext} - [0:0]")
            nat.append(f"-A KUBE-NODEPORTS {match} --dport {sp.node_port} -j {ext}")
            nat.append(f"-A {ext} -j KUBE-MARK-MASQ")
            nat.append(f"-A {ext} -j {svc}")
        seps = [_id("KUBE-SEP", f"{sp.key}{ip}:{port}") for ip, port in sp.endpoints]
        if sp.affinity_timeout_s is not None:
            for sep in seps:
                nat.append(f"-A {svc} -m recent --name {sep} --mask 255.255.255.255 --rsource "
                           f"--rcheck --seconds {sp.affinity_timeout_s} --reap -j {sep}")
        n = len(seps)
        for i, sep in enumerate(seps):
            if i < n - 1:
                nat.append(f"-A {svc} -m statistic --mode random --probability "
                           f"{1 / (n - i):.11f} -j {sep}")
            else:
                nat.append(f"-A {svc} -j {sep}")
        for sep, (ip, port) in zip(seps, sp.endpoints, strict=True):
            nat_chains.append(f":{sep} - [0:0]")
            nat.append(f"-A {sep} -s {ip}/32 -j KUBE-MARK-MASQ")  # hairpin
            recent = (f"-m recent --name {sep} --mask 255.255.255.255 --rsource --set "
                      if sp.affinity_timeout_s is not None else "")
            nat.append(f"-A {sep} {match} {recent}-j DNAT --to-destination {ip}:{port}")
    nat.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    return ("*nat\n" + "\n".join(nat_chains + nat) + "\nCOMMIT\n"
            "*filter\n" + "\n".join(filt_chains + filt) + "\nCOMMIT\n")


class IptablesRules:
    """The same contract as NftRules: ``sync(ports)``; a failed restore keeps the old rules."""

    def __init__(self, node_addresses: Iterable[str], netns_name: str | None = None) -> None:
        self.node_addresses = tuple(node_addresses)
        self.netns_name = netns_name
        self.applied: list[ServicePort] | None = None

    def close(self) -> None:
        pass

    def sync(self, ports: list[ServicePort], changed: set[str] | None = None) -> str:
        if self.applied == list(ports):
            return "noop"
        prefix = ["ip", "netns", "exec", self.netns_name] if self.netns_name else []
        # Without --noflush the tables named in the input are replaced whole, atomically.
        p = subprocess.run([*prefix, "iptables-restore", "-w", "5"], input=render_iptables(ports),
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RulesError(p.stderr.strip()[:2000] or f"iptables-restore exited {p.returncode}")
        before = {sp.key: sp for sp in self.applied or []}
        after: dict[str, ServicePort | None] = {sp.key: sp for sp in ports}
        after.update({k: None for k in before if k not in after})
        self.applied = list(ports)
        flush_udp(before, after, self.netns_name)
        return "full"
