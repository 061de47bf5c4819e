"""ClusterIP and NodePort allocation, in the same transaction as the Service write.

As in the Kubernetes apiserver, a Service gets its addresses when it is
created, so the answer to the create (and ``nodectl get svc`` right after)
shows them.  Each allocation is a key in the store
(``/registry/allocations/clusterip/10.96.0.10``, ``.../nodeport/TCP/30080``)
written with a "must not exist" compare in the Service's own transaction: two
Services can never get the same address, even from two API servers at once
(the loser's transaction fails and it picks again), and deleting a Service
deletes its keys in the deleting transaction, so nothing leaks.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.objects.codec import InvalidError
from nodeagent.objects.kinds import SERVICES
from nodeagent.objects.validation import FieldError
from nodeagent.store import Compare, Op, OpKind

__all__ = ["Allocations", "ServiceAllocator"]

PREFIX = "/registry/allocations/"
SERVICE_CIDR = "10.96.0.0/16"
NODE_PORTS = (30000, 32767)


@dataclass
class Allocations:
    """What one write of a Service claims and frees: compares and ops for its txn."""

    compares: list[Compare] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)


def _invalid(owner: str, path: str, value: Any, detail: str) -> ApiError:
    name = owner.split("/", 1)[1]
    return ApiError.from_invalid(SERVICES, InvalidError("Service", name, [
        FieldError(path, "FieldValueInvalid", detail, value)]))


def _ip_key(ip: str) -> str:
    return f"{PREFIX}clusterip/{ip}"


def _port_key(protocol: str, port: int) -> str:
    return f"{PREFIX}nodeport/{protocol}/{port}"


def _needs_ip(spec: dict[str, Any]) -> bool:
    return spec.get("type", "ClusterIP") != "ExternalName" and spec.get("clusterIP") != "None"


def _needs_node_ports(spec: dict[str, Any]) -> bool:
    kind = spec.get("type", "ClusterIP")
    return kind == "NodePort" or (kind == "LoadBalancer"
                                  and spec.get("allocateLoadBalancerNodePorts") is not False)


class ServiceAllocator:
    def __init__(self, store: Any, cidr: str = SERVICE_CIDR,
                 node_ports: tuple[int, int] = NODE_PORTS) -> None:
        self.store = store
        self.net = ipaddress.ip_network(cidr)
        self.node_ports = node_ports
        self.rng = random.Random()

    def _used(self, kind: str) -> set[str]:
        return {kv.key.rsplit("/", 1)[-1] if kind == "clusterip" else kv.key.split("/", 4)[-1]
                for kv in self.store.range(f"{PREFIX}{kind}/")[0]}

    def _holder(self, key: str) -> str | None:
        kv = self.store.get(key)
        return kv.value.decode() if kv is not None else None

    def claim(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> Allocations:
        """Fill in clusterIP(s) and nodePorts of ``obj`` (a Service being created, or
        updated from ``old``) and return the store writes that claim and free them."""
        spec = obj.setdefault("spec", {})
        meta = obj["metadata"]
        owner = f"{meta.get('namespace')}/{meta['name']}"
        out = Allocations()
        old_spec = (old or {}).get("spec") or {}
        # --- cluster IP
        if _needs_ip(spec):
            ip = spec.get("clusterIP") or None
            if old is not None and old_spec.get("clusterIP") not in (None, "", "None"):
                ip = old_spec["clusterIP"]  # immutable; already claimed
            else:
                ip = self._claim_ip(ip, owner, out)
            spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        elif old is not None and old_spec.get("clusterIP") not in (None, "", "None"):
            out.ops.append(Op(OpKind.DELETE, _ip_key(old_spec["clusterIP"])))
        # --- node ports
        old_ports = {(p.get("protocol", "TCP"), p["nodePort"]) for p in old_spec.get("ports") or []
                     if p.get("nodePort")} if _needs_node_ports(old_spec) else set()
        kept: set[tuple[str, int]] = set()
        if _needs_node_ports(spec):
            claimed_now: set[tuple[str, int]] = set()
            for i, p in enumerate(spec.get("ports") or []):
                proto = p.get("protocol", "TCP")
                want = p.get("nodePort")
                if want and (proto, want) in old_ports:
                    kept.add((proto, want))
                    continue
                p["nodePort"] = self._claim_port(proto, want, owner, out, claimed_now, i)
        else:
            for p in spec.get("ports") or []:
                p.pop("nodePort", None)
        for proto, port in old_ports - kept:
            out.ops.append(Op(OpKind.DELETE, _port_key(proto, port)))
        return out

    def release(self, obj: dict[str, Any]) -> list[Op]:
        """The deletes that free a Service's addresses when it is deleted."""
        spec = obj.get("spec") or {}
        ops = []
        if _needs_ip(spec) and spec.get("clusterIP"):
            ops.append(Op(OpKind.DELETE, _ip_key(spec["clusterIP"])))
        if _needs_node_ports(spec):
            ops += [Op(OpKind.DELETE, _port_key(p.get("protocol", "TCP"), p["nodePort"]))
                    for p in spec.get("ports") or [] if p.get("nodePort")]
        return ops

    def _claim_ip(self, requested: str | None, owner: str, out: Allocations) -> str:
        if requested:
            addr = ipaddress.ip_address(requested)
            if addr not in self.net or addr in (self.net.network_address,
                                                self.net.broadcast_address):
                raise _invalid(
                    owner, "spec.clusterIP", requested,
                    f"provided IP is not in the valid range. The range of valid IPs is {self.net}")
            if self._holder(_ip_key(requested)) is not None:
                raise _invalid(
                    owner, "spec.clusterIP", requested,
                    "provided IP is already allocated")
            ip = requested
        else:
            used = self._used("clusterip")
            size = self.net.num_addresses - 2
            if len(used) >= size:
                raise ApiError(500, "InternalError", "Internal error occurred: failed to "
                               f"allocate a serviceIP: range is full ({self.net})")
            start = self.rng.randrange(size)
            for i in range(size):
                ip = str(self.net.network_address + 1 + (start + i) % size)
                if ip not in used:
                    break
        key = _ip_key(ip)
        out.compares.append(Compare(key, "create", "=", 0))
        out.ops.append(Op(OpKind.PUT, key, owner.encode()))
        return ip

    def _claim_port(self, proto: str, requested: int | None, owner: str, out: Allocations,
                    claimed_now: set[tuple[str, int]], index: int) -> int:
        lo, hi = self.node_ports
        if requested:
            if not lo <= requested <= hi:
                raise _invalid(
                    owner, f"spec.ports[{index}].nodePort", requested,
                    f"provided port is not in the valid range. The range of valid ports is "
                    f"{lo}-{hi}")
            if (proto, requested) in claimed_now or self._holder(_port_key(proto, requested)):
                raise _invalid(
                    owner, f"spec.ports[{index}].nodePort", requested,
                    "provided port is already allocated")
            port = requested
        else:
            used = {int(k.split("/")[-1]) for k in self._used("nodeport") if k.startswith(proto)}
            used |= {p for pr, p in claimed_now if pr == proto}
            size = hi - lo + 1
            if len(used) >= size:
                raise ApiError(500, "InternalError", "Internal error occurred: failed to "
                               f"allocate a nodePort: range is full ({lo}-{hi})")
            start = self.rng.randrange(size)
            port = next(lo + (start + i) % size for i in range(size)
                        if lo + (start + i) % size not in used)
        claimed_now.add((proto, port))
        key = _port_key(proto, port)
        out.compares.append(Compare(key, "create", "=", 0))
        out.ops.append(Op(OpKind.PUT, key, owner.encode()))
        return port
