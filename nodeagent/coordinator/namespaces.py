"""Namespace controller: empties Terminating namespaces, then removes them.

Level-triggered: every pass lists the namespaces and acts on each
Terminating one, so a missed event or a crash mid-way is repaired by the
next pass.  Deleting the contents uses the normal delete path, so pods still
get their grace period and objects with finalizers wait for them.
"""

from __future__ import annotations

import logging

import trio

from nodeagent.api.status import ApiError
from nodeagent.objects.access import Objects
from nodeagent.objects.kinds import NAMESPACES, RESOURCES
from nodeagent.store import Compare, Op, OpKind, Txn

log = logging.getLogger("nodeagent.namespaces")

RESYNC_S = 5.0


async def sync_once(objects: Objects) -> int:
    """One pass; returns how many namespaces are still terminating."""
    pending = 0
    listed = objects.list(NAMESPACES, None)
    for ns in listed["items"]:
        meta = ns["metadata"]
        if not meta.get("deletionTimestamp"):
            continue
        name = meta["name"]
        remaining = 0
        for res in RESOURCES:
            if not res.namespaced:
                continue
            for item in objects.list(res, name)["items"]:
                remaining += 1
                if item["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await objects.delete(res, name, item["metadata"]["name"])
                except ApiError as exc:
                    if exc.code != 404:
                        log.warning("namespace=%s delete %s/%s failed: %s", name, res.plural,
                                    item["metadata"]["name"], exc.message)
        # Count again: immediate deletions are gone now.
        remaining = sum(len(objects.list(r, name)["items"]) for r in RESOURCES if r.namespaced)
        if remaining:
            pending += 1
            continue
        key = NAMESPACES.key(None, name)
        kv = objects.store.get(key)
        if kv is not None and not meta.get("finalizers"):
            await objects.txn(Txn((Compare(key, "mod", "=", kv.mod_revision),),
                                  (Op(OpKind.DELETE, key),)))
            log.info("namespace=%s deleted", name)
    return pending


async def run(objects: Objects, *,
              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    watch, _ = objects.store.watch(NAMESPACES.prefix(None), 0)
    task_status.started()
    try:
        while True:
            try:
                await sync_once(objects)
            except ApiError as exc:
                log.warning("namespace sync failed: %s", exc.message)
            # Wake on a namespace change, or resync on a timer (pods leaving take time).
            with trio.move_on_after(RESYNC_S):
                try:
                    await watch.receive()
                except trio.EndOfChannel:
                    watch, _ = objects.store.watch(NAMESPACES.prefix(None), 0)
            await trio.sleep(0.05)  # coalesce bursts
    finally:
        watch.close()
