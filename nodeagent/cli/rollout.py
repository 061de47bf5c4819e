"""``nodectl rollout status|history|undo|restart|pause|resume``, as kubectl does them.

They work on the API like kubectl's: status reads the Deployment until its
rollout is complete (kubectl's messages), history lists the ReplicaSets it owns
by revision, undo copies an older ReplicaSet's template back into the
Deployment, restart stamps ``kubectl.kubernetes.io/restartedAt`` on the
template, pause and resume flip ``spec.paused``.  The controller does the rest.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import click

from nodeagent.api.client import Client
from nodeagent.objects.kinds import DEPLOYMENTS, REPLICASETS
from nodeagent.objects.podutil import revision_of

__all__ = ["history", "restart", "set_paused", "status", "undo"]

Obj = dict[str, Any]


class RolloutError(Exception):
    pass


def _owned(client: Client, ns: str, d: Obj) -> list[Obj]:
    items = client.list(REPLICASETS, ns)["items"]
    uid = d["metadata"]["uid"]
    return sorted((rs for rs in items if any(r.get("uid") == uid and r.get("controller")
                                             for r in rs["metadata"].get("ownerReferences") or [])),
                  key=revision_of)


def status_message(d: Obj) -> tuple[bool, str]:
    """(done, kubectl's line) for a Deployment's rollout."""
    name = d["metadata"]["name"]
    spec, st = d.get("spec") or {}, d.get("status") or {}
    if st.get("observedGeneration", 0) < d["metadata"].get("generation", 1):
        return False, "Waiting for deployment spec update to be observed..."
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            raise RolloutError(f'deployment "{name}" exceeded its progress deadline')
    want = int(spec.get("replicas", 1))
    updated, total = int(st.get("updatedReplicas") or 0), int(st.get("replicas") or 0)
    available = int(st.get("availableReplicas") or 0)
    if updated < want:
        return False, (f'Waiting for deployment "{name}" rollout to finish: {updated} out of '
                       f"{want} new replicas have been updated...")
    if total > updated:
        return False, (f'Waiting for deployment "{name}" rollout to finish: {total - updated} '
                       "old replicas are pending termination...")
    if available < updated:
        return False, (f'Waiting for deployment "{name}" rollout to finish: {available} of '
                       f"{updated} updated replicas are available...")
    return True, f'deployment "{name}" successfully rolled out'


def status(client: Client, ns: str, name: str, timeout_s: float | None, watch: bool) -> None:
    deadline = time.monotonic() + timeout_s if timeout_s else None
    last = ""
    while True:
        done, line = status_message(client.get(DEPLOYMENTS, ns, name))
        if line != last:
            click.echo(line)
            last = line
        if done or not watch:
            return
        if deadline is not None and time.monotonic() > deadline:
            raise RolloutError("timed out waiting for the condition")
        time.sleep(0.5)


def history(client: Client, ns: str, name: str, revision: int | None) -> str:
    d = client.get(DEPLOYMENTS, ns, name)
    sets = _owned(client, ns, d)
    if revision is not None:
        rs = next((r for r in sets if revision_of(r) == revision), None)
        if rs is None:
            raise RolloutError(f"unable to find the specified revision {revision}")
        import yaml
        template = rs["spec"].get("template") or {}
        return (f"deployment.apps/{name} with revision #{revision}\nPod Template:\n"
                + "\n".join("  " + ln for ln in yaml.safe_dump(template).splitlines()))
    rows = ["REVISION  CHANGE-CAUSE"]
    for rs in sets:
        cause = (rs["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause")
        rows.append(f"{revision_of(rs):<9} {cause or '<none>'}")
    return f"deployment.apps/{name} \n" + "\n".join(rows) + "\n"


def undo(client: Client, ns: str, name: str, to_revision: int | None) -> str:
    d = client.get(DEPLOYMENTS, ns, name)
    sets = _owned(client, ns, d)
    if to_revision:
        target = next((r for r in sets if revision_of(r) == to_revision), None)
        if target is None:
            raise RolloutError(f"unable to find specified revision {to_revision} in history")
    else:
        older = [r for r in sets if revision_of(r) < revision_of(d)]
        if not older:
            raise RolloutError("no rollout history found for deployment " + repr(name))
        target = older[-1]
    template = dict(target["spec"].get("template") or {})
    meta = dict(template.get("metadata") or {})
    meta["labels"] = {k: v for k, v in (meta.get("labels") or {}).items()
                      if k != "pod-template-hash"}
    template["metadata"] = meta
    if template == d["spec"].get("template"):
        return (f"deployment.apps/{name} skipped rollback (current template already matches "
                f"revision {revision_of(target)})")
    d["spec"]["template"] = template
    client.replace(DEPLOYMENTS, ns, name, d)
    return f"deployment.apps/{name} rolled back"


def restart(client: Client, ns: str, name: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.patch(DEPLOYMENTS, ns, name, {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": now}}}}})
    return f"deployment.apps/{name} restarted"


def set_paused(client: Client, ns: str, name: str, paused: bool) -> str:
    d = client.get(DEPLOYMENTS, ns, name)
    if bool((d.get("spec") or {}).get("paused")) == paused:
        return f"deployment.apps/{name} is already {'paused' if paused else 'resumed'}"
    client.patch(DEPLOYMENTS, ns, name, {"spec": {"paused": paused}})
    return f"deployment.apps/{name} {'paused' if paused else 'resumed'}"
