"""The pods' network sandboxes as launcher ops (runtime/protocol.py: ``sandbox_*``).

Making a network namespace forks, and the agent's Trio process must not, so the
launcher runs these for it.  The launcher does not import this module: whoever
starts it hands these ops in (``python -m runtime launcher``), which keeps the
runtime free of the network code.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from netns.ipam import Ipam, IpamError
from netns.sandbox import NodeNet, SandboxError, SandboxManager
from runtime.protocol import LauncherFailed, Op

__all__ = ["SANDBOX_OPS"]

_MANAGERS: dict[str, SandboxManager] = {}  # one per node network: it keeps a netlink socket open


@contextlib.contextmanager
def _sandboxes(req: dict[str, Any]) -> Iterator[SandboxManager]:
    """A SandboxManager for the request's node network; its errors as launcher errors."""
    net = req.get("net")
    if not isinstance(net, dict) or not isinstance(net.get("cidr"), str) or \
            not isinstance(net.get("ipam_dir"), str):
        raise LauncherFailed("BadRequest", "net must be an object with cidr and ipam_dir")
    try:
        key = json.dumps(net, sort_keys=True)
        mgr = _MANAGERS.get(key)
        if mgr is None:
            node = NodeNet(cidr=net["cidr"], bridge=str(net.get("bridge") or "cni0"),
                           netns_prefix=str(net.get("netns_prefix") or "nodeagent-"),
                           mtu=int(net.get("mtu") or 1500))
            # The launcher is single-threaded: namespaces are made in-process, without forks.
            mgr = SandboxManager(node, Ipam(net["ipam_dir"], node.cidr), in_process=True)
            _MANAGERS[key] = mgr
        yield mgr
    except (IpamError, SandboxError, OSError, ValueError) as exc:
        raise LauncherFailed("SandboxError", str(exc)) from exc


def _pod_uid(req: dict[str, Any]) -> str:
    uid = req.get("pod_uid")
    if not isinstance(uid, str) or not uid or "/" in uid or uid.startswith("."):
        raise LauncherFailed("BadRequest", f"invalid pod_uid {uid!r}")
    return uid


def _bridge(req: dict[str, Any]) -> dict[str, Any]:
    with _sandboxes(req) as mgr:
        mgr.ensure_bridge()
    return {}


def _create(req: dict[str, Any]) -> dict[str, Any]:
    with _sandboxes(req) as mgr:
        return {"sandbox": asdict(mgr.create(_pod_uid(req)))}


def _delete(req: dict[str, Any]) -> dict[str, Any]:
    with _sandboxes(req) as mgr:
        mgr.delete(_pod_uid(req))
    return {}


def _reconcile(req: dict[str, Any]) -> dict[str, Any]:
    live = req.get("live")
    if not isinstance(live, list):
        raise LauncherFailed("BadRequest", "live must be a list of pod uids")
    with _sandboxes(req) as mgr:
        return {"removed": mgr.reconcile({str(u) for u in live})}


SANDBOX_OPS: dict[Op, Callable[[dict[str, Any]], dict[str, Any]]] = {
    Op.SANDBOX_BRIDGE: _bridge, Op.SANDBOX_CREATE: _create, Op.SANDBOX_DELETE: _delete,
    Op.SANDBOX_RECONCILE: _reconcile,
}
