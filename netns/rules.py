"""Service rules: a pure renderer from service ports to one nftables table, and its diff.

Layout (one table of our own, ``ip nodeagent``), chosen for load time: the
number of chains, not of elements, is what makes a ruleset slow to load here
(../shared/baselines.md), so ordinary services live in maps keyed by
``daddr . l4proto . dport . numgen random mod N`` -- one map per endpoint
count N, so a service with N endpoints has exactly N elements and an even
spread -- and one rule per map; a service change is then a few element
deletes and adds.  Only services with ClientIP affinity get chains of
their own (a per-endpoint dynamic set remembers clients, with the timeout).

- ClusterIP: ``@svc-backends`` from the ``services`` chain (prerouting and
  output, dstnat).  NodePort: ``@np-backends`` for traffic to a node address,
  marked for masquerade.  A service with no ready endpoint is in
  ``@no-endpoints`` / ``@np-no-endpoints`` and rejected before routing
  (prerouting, and output for the node's own connections: TCP reset, else
  ICMP port unreachable), so a node without a default route answers too.  Hairpin (a pod reaching itself
  through its service) is masqueraded with an ``@hairpin`` set of ep . ep.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["IP", "Applied", "ServicePort", "render_delta", "render_full", "render_update",
           "service_ports"]

TABLE = "nodeagent"
MASQ_MARK = 0x4000
PROTOS = {"TCP": "tcp", "UDP": "udp"}
SVC_KEY = "ip daddr . meta l4proto . th dport . numgen random mod {n}"
NP_KEY = "meta l4proto . th dport . numgen random mod {n}"


class IP(ipaddress.IPv4Address):
    """An IPv4 address that keeps its text: a ruleset renders tens of thousands of them,
    and ipaddress builds the string anew each time (4x the render's time)."""

    __slots__ = ("_text",)

    def __init__(self, address: object) -> None:
        super().__init__(address)
        self._text = super().__str__()

    def __str__(self) -> str:
        return self._text

    def __format__(self, spec: str) -> str:
        return self._text if not spec else super().__format__(spec)


def _port(field: str, value: object, low: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 65535:
        raise ValueError(f"{field}: {value!r} is not a port number")
    return value


def _by_address(endpoint: tuple[IP, int]) -> tuple[int, int]:
    return int(endpoint[0]), endpoint[1]  # ipaddress compares in Python, ints in C


@functools.lru_cache(maxsize=1 << 16)
def _parse_ip(text: str) -> IP:
    """A dotted quad as an IP: inet_pton is strict and C-fast where ipaddress parses octet
    by octet in Python (9x the cost of building a sync's service ports); and the same
    endpoints come back on every sync."""
    return IP(int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big"))


def _ip(field: str, value: object) -> IP:
    try:
        if isinstance(value, IP):
            return value
        return _parse_ip(value) if isinstance(value, str) else IP(value)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{field}: {value!r} is not an IPv4 address") from exc


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, in types that can only render as what they are: every
    value that reaches the ruleset is an ``IPv4Address`` or a port number checked here,
    never a string from the store (a string once carried a whole extra table into
    ``nft -f``).  Construction raises ValueError naming the field."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # TCP | UDP
    port: int
    cluster_ip: IP | None
    node_port: int | None = None
    affinity_timeout_s: int | None = None  # ClientIP affinity
    endpoints: tuple[tuple[IP, int], ...] = ()  # ready (ip, port), sorted

    def __post_init__(self) -> None:
        if self.protocol not in PROTOS:
            raise ValueError(f"protocol: {self.protocol!r} is not one of {sorted(PROTOS)}")
        _port("port", self.port)
        if self.cluster_ip is not None:
            object.__setattr__(self, "cluster_ip", _ip("clusterIP", self.cluster_ip))
        if self.node_port is not None:
            _port("nodePort", self.node_port)
        if self.affinity_timeout_s is not None and (
                not isinstance(self.affinity_timeout_s, int)
                or isinstance(self.affinity_timeout_s, bool)
                or not 1 <= self.affinity_timeout_s <= 86400):
            raise ValueError(f"sessionAffinityConfig.clientIP.timeoutSeconds: "
                             f"{self.affinity_timeout_s!r} is not in 1..86400")
        object.__setattr__(self, "endpoints", tuple(sorted(
            ((_ip("endpoints address", ip), _port("endpoints port", port))
             for ip, port in self.endpoints), key=_by_address)))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name or self.port}/{self.protocol}"

    @property
    def chain_id(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:12]

    @property
    def proto(self) -> str:
        return PROTOS[self.protocol]


def service_ports(services: Iterable[Mapping[str, Any]],
                  endpoints: Mapping[tuple[str, str], Mapping[str, Any]],
                  rejected: list[tuple[Mapping[str, Any], str]] | None = None) -> list[ServicePort]:
    """Services and Endpoints objects (as the API serves them) -> the renderer's input.

    Endpoint ports come from the Endpoints object, where named targetPorts are
    already resolved per pod, matched to the service port by name.  A Service with a
    value that is no address or port (one planted past validation) is left out whole,
    and appended to ``rejected`` with the reason, so the rest of the ruleset stands.
    """
    out: list[ServicePort] = []
    for svc in services:
        try:
            out.extend(_one_service(svc, endpoints))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            if rejected is not None:
                rejected.append((svc, str(exc)))
    return sorted(out, key=lambda s: s.key)


def _one_service(svc: Mapping[str, Any],
                 endpoints: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[ServicePort]:
    out = []
    meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ns, name = str(meta.get("namespace", "default")), str(meta.get("name", ""))
    if spec.get("type") == "ExternalName":
        return []
    cluster_ip = spec.get("clusterIP")
    if cluster_ip in (None, "", "None"):
        cluster_ip = None
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        affinity = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}) \
            .get("timeoutSeconds") or 10800
    ep = endpoints.get((ns, name)) or {}
    for p in spec.get("ports") or []:
        protocol = p.get("protocol", "TCP")
        if protocol not in PROTOS:
            continue  # SCTP is not served
        backends = set()
        for subset in ep.get("subsets") or []:
            for port in subset.get("ports") or []:
                if (port.get("name") or "") != (p.get("name") or "") or \
                        port.get("protocol", "TCP") != protocol:
                    continue
                for addr in subset.get("addresses") or []:
                    backends.add((_ip("endpoints address", addr["ip"]),
                                  _port("endpoints port", port["port"])))
        if cluster_ip is None and not p.get("nodePort"):
            continue
        out.append(ServicePort(ns, name, str(p.get("name") or ""), protocol, p["port"],
                               cluster_ip, p.get("nodePort"), affinity, tuple(backends)))
    return out


# --- elements --------------------------------------------------------------------------------


MIN_MAPS = 16  # maps for 1..16 endpoints always exist, so scaling within them stays incremental


def _counts(ports: Iterable[ServicePort]) -> set[int]:
    """Endpoint counts that need a backends map (services without affinity)."""
    return {len(sp.endpoints) for sp in ports if sp.endpoints and sp.affinity_timeout_s is None}


def _map_counts(ports: Iterable[ServicePort]) -> range:
    """The backends maps a full render creates: every count up to the largest in use."""
    return range(1, max([MIN_MAPS, *_counts(ports)]) + 1)


def _elements(sp: ServicePort) -> dict[str, list[str]]:
    """Map/set elements this service port contributes, by map/set name."""
    out: dict[str, list[str]] = {"no-endpoints": [], "np-no-endpoints": [], "svc-affinity": [],
                                 "np-affinity": []}
    n = len(sp.endpoints)
    if sp.endpoints and sp.affinity_timeout_s is None:
        svc, np = out.setdefault(f"svc-backends-{n}", []), out.setdefault(f"np-backends-{n}", [])
        for slot, (ip, port) in enumerate(sp.endpoints):
            if sp.cluster_ip:
                svc.append(f"{sp.cluster_ip} . {sp.proto} . {sp.port} . {slot} : {ip} . {port}")
            if sp.node_port:
                np.append(f"{sp.proto} . {sp.node_port} . {slot} : {ip} . {port}")
    elif sp.endpoints:
        if sp.cluster_ip:
            out["svc-affinity"].append(f"{sp.cluster_ip} . {sp.proto} . {sp.port} : "
                                       f"goto aff-{sp.chain_id}")
        if sp.node_port:
            out["np-affinity"].append(f"{sp.proto} . {sp.node_port} : goto aff-{sp.chain_id}")
    else:
        if sp.cluster_ip:
            out["no-endpoints"].append(f"{sp.cluster_ip} . {sp.proto} . {sp.port}")
        if sp.node_port:
            out["np-no-endpoints"].append(f"{sp.proto} . {sp.node_port}")
    return out


def _affinity_chains(sp: ServicePort) -> list[str]:
    """Chains and sets of one ClientIP-affinity service port."""
    cid = sp.chain_id
    lines = []
    for i, _ in enumerate(sp.endpoints):
        lines.append(f"\tset aff-{cid}-{i} {{ type ipv4_addr; flags dynamic,timeout; "
                     f"timeout {sp.affinity_timeout_s}s; }}")
    lines.append(f"\tchain aff-{cid} {{")
    for i, (ip, port) in enumerate(sp.endpoints):
        lines.append(f"\t\tip saddr @aff-{cid}-{i} meta l4proto {sp.proto} dnat ip to {ip}:{port}")
    vmap = ", ".join(f"{i} : goto aff-{cid}-ep{i}" for i in range(len(sp.endpoints)))
    lines.append(f"\t\tnumgen random mod {len(sp.endpoints)} vmap {{ {vmap} }}")
    lines.append("\t}")
    for i, (ip, port) in enumerate(sp.endpoints):
        lines.append(f"\tchain aff-{cid}-ep{i} {{")
        lines.append(f"\t\tupdate @aff-{cid}-{i} {{ ip saddr }} meta l4proto {sp.proto} "
                     f"dnat ip to {ip}:{port}")
        lines.append("\t}")
    return lines


def _hairpins(ports: Iterable[ServicePort]) -> list[str]:
    return sorted({f"{ip} . {ip}" for sp in ports for ip, _ in sp.endpoints})


def render_full(ports: list[ServicePort], node_addresses: Iterable[str]) -> str:
    """The whole table as one ``nft -f`` transaction that replaces the previous one."""
    elems: dict[str, list[str]] = {}
    for sp in ports:
        for k, v in _elements(sp).items():
            elems.setdefault(k, []).extend(v)

    def elements(values: list[str]) -> str:
        return f"\t\telements = {{ {', '.join(values)} }}\n" if values else ""
    addrs = sorted(set(node_addresses))
    out = [f"table ip {TABLE} {{}}", f"delete table ip {TABLE}", f"table ip {TABLE} {{"]
    counts = list(_map_counts(ports))
    for n in counts:
        out.append(f"\tmap svc-backends-{n} {{\n\t\ttypeof {SVC_KEY.format(n=n)} : ip daddr . th dport\n"
                   + elements(elems.get(f"svc-backends-{n}", [])) + "\t}")
        out.append(f"\tmap np-backends-{n} {{\n\t\ttypeof {NP_KEY.format(n=n)} : ip daddr . th dport\n"
                   + elements(elems.get(f"np-backends-{n}", [])) + "\t}")
    out.append("\tmap svc-affinity {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
               + elements(elems.get("svc-affinity", [])) + "\t}")
    out.append("\tmap np-affinity {\n\t\ttype inet_proto . inet_service : verdict\n"
               + elements(elems.get("np-affinity", [])) + "\t}")
    out.append("\tset no-endpoints {\n\t\ttype ipv4_addr . inet_proto . inet_service\n"
               + elements(elems.get("no-endpoints", [])) + "\t}")
    out.append("\tset np-no-endpoints {\n\t\ttype inet_proto . inet_service\n"
               + elements(elems.get("np-no-endpoints", [])) + "\t}")
    out.append("\tset hairpin {\n\t\ttype ipv4_addr . ipv4_addr\n"
               + elements(_hairpins(ports)) + "\t}")
    out.append("\tset node-addresses {\n\t\ttype ipv4_addr\n" + elements(addrs)
               + "\t}")
    for sp in ports:
        if sp.endpoints and sp.affinity_timeout_s is not None:
            out.extend(_affinity_chains(sp))
    svc_rules = "".join(f"\t\tmeta l4proto {{ tcp, udp }} dnat ip to {SVC_KEY.format(n=n)} "
                        f"map @svc-backends-{n}\n" for n in counts)
    np_rules = "".join(f"\t\tmeta l4proto {{ tcp, udp }} dnat ip to {NP_KEY.format(n=n)} "
                       f"map @np-backends-{n}\n" for n in counts)
    out.append(f"""\tchain services {{
\t\tip daddr . meta l4proto . th dport vmap @svc-affinity
{svc_rules}\t\tip daddr @node-addresses jump nodeports
\t}}
\tchain nodeports {{
\t\tmeta mark set meta mark | {MASQ_MARK:#x}
\t\tmeta l4proto . th dport vmap @np-affinity
{np_rules}\t}}
\tchain nat-prerouting {{
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}}
\tchain nat-output {{
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}}
\tchain nat-postrouting {{
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tct status dnat ip saddr . ip daddr @hairpin masquerade
\t\tct status dnat meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade
\t}}
\tchain reject-no-endpoints {{
\t\tmeta l4proto tcp ip daddr . meta l4proto . th dport @no-endpoints reject with tcp reset
\t\tip daddr . meta l4proto . th dport @no-endpoints reject
\t\tfib daddr type local meta l4proto tcp meta l4proto . th dport @np-no-endpoints reject with tcp reset
\t\tfib daddr type local meta l4proto . th dport @np-no-endpoints reject
\t}}
\tchain filter-prerouting {{
\t\ttype filter hook prerouting priority -110; policy accept;
\t\tjump reject-no-endpoints
\t}}
\tchain filter-output {{
\t\ttype filter hook output priority -110; policy accept;
\t\tjump reject-no-endpoints
\t}}""")
    out.append("}")
    return "\n".join(out) + "\n"


@dataclass
class Applied:
    """What the kernel holds after a render: kept by the applier so an update costs
    work in proportion to what changed, not to the number of services."""

    ports: dict[str, ServicePort]
    map_max: int  # backends maps exist for 1..map_max endpoints
    hairpin_refs: Counter[IP]  # endpoint ip -> service ports using it

    @classmethod
    def of(cls, ports: Iterable[ServicePort]) -> Applied:
        plist = list(ports)
        refs: Counter[IP] = Counter(ip for sp in plist for ip, _ in set(sp.endpoints))
        return cls({sp.key: sp for sp in plist}, _map_counts(plist)[-1], refs)


def render_delta(state: Applied, changes: Mapping[str, ServicePort | None]) -> str | None:
    """The transaction for ``changes`` (key -> new port, None = removed), updating ``state``;
    None when only a full render will do (affinity chains, more endpoints than any map)."""
    pairs = [(k, state.ports.get(k), new) for k, new in sorted(changes.items())
             if state.ports.get(k) != new]
    if not pairs:
        return ""
    for _, old, new in pairs:
        for sp in (old, new):
            if sp is not None and sp.endpoints and (sp.affinity_timeout_s is not None or
                                                    len(sp.endpoints) > state.map_max):
                return None
    lines: list[str] = []
    for verb, side in (("delete", [old for _, old, _ in pairs]), ("add", [new for _, _, new in pairs])):
        for sp in side:
            if sp is None:
                continue
            for name, values in _elements(sp).items():
                if verb == "delete":  # a map element is deleted by its key alone
                    values = [v.split(" : ", 1)[0] for v in values]
                if values:
                    lines.append(f"{verb} element ip {TABLE} {name} {{ {', '.join(values)} }}")
    refs = state.hairpin_refs
    gone, new_ips = [], []
    for k, old, new in pairs:
        for ip in {ip for ip, _ in old.endpoints} if old else set():
            refs[ip] -= 1
            if refs[ip] == 0:
                del refs[ip]
                gone.append(ip)
        for ip in {ip for ip, _ in new.endpoints} if new else set():
            refs[ip] += 1
            if refs[ip] == 1:
                new_ips.append(ip)
        if new is None:
            state.ports.pop(k, None)
        else:
            state.ports[k] = new
    dropped = sorted(set(gone) - set(new_ips))
    added = sorted(set(new_ips) - set(gone))
    if dropped:
        lines.append(f"delete element ip {TABLE} hairpin {{ "
                     f"{', '.join(f'{ip} . {ip}' for ip in dropped)} }}")
    if added:
        lines.append(f"add element ip {TABLE} hairpin {{ "
                     f"{', '.join(f'{ip} . {ip}' for ip in added)} }}")
    return "\n".join(lines) + "\n"


def render_update(old: list[ServicePort], new: list[ServicePort]) -> str | None:
    """The transaction taking ``old`` to ``new`` (both whole lists); see render_delta."""
    after = {sp.key: sp for sp in new}
    before = {sp.key: sp for sp in old}
    changes = {k: after.get(k) for k in before.keys() | after.keys()
               if before.get(k) != after.get(k)}
    return render_delta(Applied.of(old), changes)
