"""The service proxy: keeps this node's service rules equal to the Services and their
EndpointSlices.

Level-triggered, in reconcile's loop like the controllers: every pass lists Services
and EndpointSlices (their ready endpoints), turns them into service ports
(netns/rules.py) and syncs the rules backend, which applies only what changed.  Store
events wake it (coalesced for a moment so a rollout's burst is one sync); a timer
resyncs anyway.  A failed apply leaves the previous rules in force (the backends are
transactional) and is retried with back-off.  The backend's calls block (netlink,
libnftables), so they run in a worker thread; the event loop never waits on the kernel.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import trio

from netns.nft import RulesError
from netns.rules import ServicePort, service_ports
from nodeagent.events import EventRecorder
from nodeagent.objects.access import Objects
from nodeagent.objects.discovery import SERVICE_NAME
from nodeagent.objects.kinds import ENDPOINT_SLICES, SERVICES
from nodeagent.reconcile import reconcile

log = logging.getLogger("nodeagent.proxy")

COALESCE_S = 0.05


class RulesBackend(Protocol):
    def sync(self, ports: list[ServicePort], changed: set[str] | None = None) -> str: ...


def desired_ports(objects: Objects,
                  rejected: list[tuple[Mapping[str, Any], str]] | None = None) -> list[ServicePort]:
    """The service ports of every Service; one whose values are no addresses or ports
    is left out and appended to ``rejected`` with the reason."""
    services = objects.list(SERVICES, None)["items"]
    return service_ports(services, endpoints_of(objects.list(ENDPOINT_SLICES, None)["items"]),
                         rejected)


def endpoints_of(slices: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each Service's slices as the subsets the rules are made from: the ready endpoints
    (a condition left out means ready, as Kubernetes reads it) with the slice's ports."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME)
        if not service or sl.get("addressType") != "IPv4":
            continue
        ready = [{"ip": address} for e in sl.get("endpoints") or []
                 if (e.get("conditions") or {}).get("ready") is not False
                 for address in e.get("addresses") or []]
        ports = [{"name": p.get("name") or "", "port": p["port"],
                  "protocol": p.get("protocol") or "TCP"}
                 for p in sl.get("ports") or [] if p.get("port") is not None]
        out.setdefault((meta.get("namespace", ""), service), {"subsets": []})["subsets"].append(
            {"addresses": ready, "ports": ports})
    return out


class RejectedServices:
    """A Warning Event on each Service the rules leave out, once per version of it: the
    person who owns it learns why it does not answer, and the proxy does not write an
    event on every pass."""

    def __init__(self, objects: Objects) -> None:
        self.events = EventRecorder(objects, "nodeagent-proxy")
        self._told: dict[str, str] = {}  # uid -> the resourceVersion reported

    async def report(self, rejected: list[tuple[Mapping[str, Any], str]]) -> None:
        for svc, reason in rejected:
            meta = svc.get("metadata") or {}
            uid, version = str(meta.get("uid")), str(meta.get("resourceVersion"))
            if self._told.get(uid) == version:
                continue
            self._told[uid] = version
            log.warning("service %s/%s left out of the rules: %s", meta.get("namespace"),
                        meta.get("name"), reason)
            await self.events.record({**svc, "kind": "Service", "apiVersion": "v1"}, "Warning",
                                     "InvalidService", f"left out of the service rules: {reason}")


class RulesProgress:
    """The store revision this node's rules reflect: every Service and EndpointSlice change
    up to it is in the kernel.  The pod manager waits on it before stopping a pod, so no
    request of this node is sent to a pod that is going away."""

    def __init__(self) -> None:
        self.revision = 0
        self._changed = trio.Event()

    def set(self, revision: int) -> None:
        self.revision = revision
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, revision: int) -> None:
        while self.revision < revision:
            await self._changed.wait()


async def run(objects: Objects, rules: RulesBackend, *, resync_s: float = 60.0,
              retry_max_s: float = 5.0, applied: RulesProgress | None = None,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Keep the rules in step with the store, in reconcile's loop like every controller:
    woken by Services and EndpointSlices, coalesced, resynced, a failed apply retried with
    back-off."""
    rejected_services = RejectedServices(objects)

    async def sync() -> None:
        revision = objects.store.revision  # what the listing below reflects
        rejected: list[tuple[Mapping[str, Any], str]] = []
        ports = desired_ports(objects, rejected)
        await rejected_services.report(rejected)
        mode = await trio.to_thread.run_sync(rules.sync, ports)
        if applied is not None:
            applied.set(revision)
        if mode != "noop":
            log.info("service rules %s ports=%d", mode, len(ports))

    await reconcile("proxy", objects.store, (SERVICES.prefix(None),
                                             ENDPOINT_SLICES.prefix(None)),
                    sync, resync_s=resync_s, coalesce_s=COALESCE_S, retry_max_s=retry_max_s,
                    expected=(RulesError,), task_status=task_status)
