"""``nodectl cordon|uncordon|drain``, as kubectl does them, over the API.

Cordon sets the Node's ``spec.unschedulable`` (the scheduler then leaves it out);
uncordon clears it.  Drain cordons, then evicts the node's pods one by one, each with
its own grace period (or ``--grace-period``), and waits until they are gone.  There
are no PodDisruptionBudgets here, so drain holds to what a rolling update of the
pod's Deployment would allow: a pod of a ReplicaSet is evicted only while fewer of
that ReplicaSet's pods are unavailable than the Deployment's maxUnavailable (25% by
default, at least one), so draining a node never takes more replicas down than
updating the app would; it waits for replacements to be Ready before going on.  Pods
no controller would replace are refused unless ``--force`` (they would be lost), as
kubectl does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nodeagent.api.client import Client, ClientError
from nodeagent.objects.podutil import controller_of, int_or_percent, is_active, is_ready

__all__ = ["DrainError", "cordon", "drain"]

Obj = dict[str, Any]


class DrainError(Exception):
    pass


def _res(kind: str) -> Any:
    from nodeagent.objects.kinds import by_kind
    res = by_kind(kind)
    assert res is not None
    return res


NODES, PODS, RS, DEPLOYMENTS = _res("Node"), _res("Pod"), _res("ReplicaSet"), _res("Deployment")


def cordon(client: Client, node: str, on: bool) -> bool:
    """Set or clear unschedulable; False if it already was so."""
    current = client.get(NODES, None, node)
    if bool((current.get("spec") or {}).get("unschedulable")) == on:
        return False
    client.patch(NODES, None, node, {"spec": {"unschedulable": True if on else None}})
    return True


def _budget(client: Client, ns: str, rs_name: str) -> tuple[int, Obj]:
    """(how many of this ReplicaSet's pods may be unavailable at once, the ReplicaSet)."""
    rs = client.get(RS, ns, rs_name)
    replicas = int((rs.get("spec") or {}).get("replicas", 1))
    owner = controller_of(rs)
    max_unavailable: Any = "25%"
    if owner and owner.get("kind") == "Deployment":
        try:
            d = client.get(DEPLOYMENTS, ns, owner["name"])
            rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
            max_unavailable = rolling.get("maxUnavailable", "25%")
        except ClientError:
            pass
    return max(1, int_or_percent(max_unavailable, replicas, round_up=False)), rs


def _may_evict(client: Client, pod: Obj) -> bool:
    ref = controller_of(pod)
    if not ref or ref.get("kind") != "ReplicaSet":
        return True
    ns = pod["metadata"]["namespace"]
    try:
        budget, rs = _budget(client, ns, ref["name"])
    except ClientError:
        return True  # its ReplicaSet is gone: nothing to keep available
    uid = rs["metadata"]["uid"]
    ready = sum(1 for p in client.list(PODS, ns)["items"]
                if is_active(p) and is_ready(p) and (controller_of(p) or {}).get("uid") == uid)
    replicas = int((rs.get("spec") or {}).get("replicas", 1))
    return (replicas - ready) + (1 if is_ready(pod) else 0) <= budget


def drain(client: Client, node: str, *, force: bool = False, grace_period_s: int | None = None,
          timeout_s: float = 300.0, say: Callable[[str], None] = print,
          poll_s: float = 0.5) -> None:
    if cordon(client, node, True):
        say(f"node/{node} cordoned")
    pods = [p for p in client.list(PODS, None, fieldSelector=f"spec.nodeName={node}")["items"]
            if not p["metadata"].get("deletionTimestamp")]
    orphans = [p for p in pods if controller_of(p) is None]
    if orphans and not force:
        names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in orphans)
        raise DrainError(f"cannot delete Pods that declare no controller (use --force to "
                         f"override): {names}")
    deadline = time.monotonic() + timeout_s
    waiting = list(pods)
    evicted: list[Obj] = []
    while waiting:
        for pod in list(waiting):
            if not _may_evict(client, pod):
                continue
            meta = pod["metadata"]
            try:
                client.delete(PODS, meta["namespace"], meta["name"], grace_period_s=grace_period_s)
            except ClientError as exc:
                if exc.status.get("code") != 404:
                    raise
            say(f"evicting pod {meta['namespace']}/{meta['name']}")
            waiting.remove(pod)
            evicted.append(pod)
        if waiting:
            if time.monotonic() > deadline:
                raise DrainError(f"timed out waiting for replacements before evicting "
                                 f"{len(waiting)} pod(s) from {node}")
            time.sleep(poll_s)
    for pod in evicted:  # kubectl waits for them to be gone
        meta = pod["metadata"]
        while True:
            try:
                current = client.get(PODS, meta["namespace"], meta["name"])
            except ClientError as exc:
                if exc.status.get("code") == 404:
                    break
                raise
            if current["metadata"]["uid"] != meta["uid"]:
                break
            if time.monotonic() > deadline:
                raise DrainError(f"timed out waiting for pod {meta['namespace']}/{meta['name']} "
                                 "to terminate")
            time.sleep(poll_s)
        say(f"pod/{meta['name']} evicted")
    say(f"node/{node} drained")
