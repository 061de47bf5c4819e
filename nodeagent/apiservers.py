"""The servers' own registry, and what the servers do together with it.

Each server writes its API URL and Raft id under ``/registry/apiservers/<name>`` once its
store takes writes (kube-apiserver keeps a Lease per server in kube-system for the same
purpose).  The registry, read against the Raft membership, is how one server reaches all
the others:

- ``rotate_key``: ``nodeagent secrets rotate-key`` on one server makes a new primary key
  for Secrets at rest, hands the new configuration to every other server (over their
  APIs, with this server's node credential; only Raft servers may), then rewrites every
  Secret under it.  The old keys stay, to read older snapshots and backups.
"""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any

import httpx
import trio

from nodeagent.api import encryption
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import AgentPki
from nodeagent.objects.kinds import SECRETS
from nodeagent.store.base import SERVERS_PREFIX
from nodeagent.store.errors import StoreError
from nodeagent.store.mvcc import Compare, Op, OpKind, Txn

__all__ = ["announce", "rotate_key", "servers", "take_config", "to_other_servers"]

log = logging.getLogger("nodeagent.apiservers")
CONFIG_PATH = "/encryption-config"  # POST: a server hands another its new configuration


async def announce(store: Any, name: str, url: str, raft_id: int = 0) -> None:
    """Write this server's API URL into the registry (retried until the store takes it)."""
    key = SERVERS_PREFIX + name
    value = json.dumps({"url": url, "raft": raft_id}, sort_keys=True).encode()
    while True:
        try:
            current = store.get(key)
            if current is not None and current.value == value:
                return
            await store.txn(Txn((), (Op(OpKind.PUT, key, value),)))
            log.info("registered this server's API at %s", url)
            return
        except StoreError:
            await trio.sleep(0.5)


def servers(store: Any) -> dict[str, str]:
    """The API URL of every server in the cluster now, by name: registered, and (with
    Raft) a member.  ApiError 503 while a member has not registered yet."""
    items, _more, _rev = store.range(SERVERS_PREFIX)
    found: dict[str, tuple[str, int]] = {}
    for kv in items:
        try:
            row = json.loads(kv.value)
            found[kv.key[len(SERVERS_PREFIX):]] = (str(row["url"]), int(row["raft"]))
        except (ValueError, KeyError, TypeError):
            continue
    raft = getattr(getattr(store, "node", None), "raft", None)
    if raft is None:
        return {name: url for name, (url, _) in found.items()}
    members = raft.voters | raft.learners
    current = {name: url for name, (url, ident) in found.items() if ident in members}
    missing = members - {ident for _, ident in found.values()}
    if missing:
        raise ApiError(503, "ServiceUnavailable", f"Raft server(s) {sorted(missing)} have not "
                       "registered their API yet; try again in a moment")
    return current


def take_config(agent_pki: AgentPki, body: bytes) -> dict[str, Any]:
    """Another server's new encryption configuration: kept and used from now on.  It must
    still hold every key this server has (a rotation adds, never drops)."""
    try:
        keys = encryption.Keys.from_yaml(body, "the configuration sent")
    except encryption.EncryptionError as exc:
        raise ApiError.bad_request(str(exc)) from exc
    current = encryption.Keys.load(agent_pki.encryption_config)
    missing = {n for n, _ in current.keys} - {n for n, _ in keys.keys}
    if missing or any(dict(keys.keys)[n] != k for n, k in current.keys):
        raise ApiError(409, "Conflict", f"the configuration sent drops or changes keys this "
                       f"server holds ({sorted(missing) or 'a changed key'})")
    keys.save(agent_pki.encryption_config)
    encryption.install(keys)
    return {"primary": keys.primary, "keys": [n for n, _ in keys.keys]}


async def to_other_servers(objects: Any, me: str, tls: ssl.SSLContext, path: str, body: bytes,
                           content_type: str, what: str) -> list[str]:
    """POST ``body`` to ``path`` on every server but this one, with this server's node
    credential; their names.  ApiError 503 naming the first that did not take it (those
    before it did: the caller's step must be one that can be sent again)."""
    others = {n: u for n, u in servers(objects.store).items() if n != me}
    async with httpx.AsyncClient(verify=tls, timeout=30.0) as client:
        for name, url in sorted(others.items()):
            try:
                r = await client.post(url + path, content=body,
                                      headers={"Content-Type": content_type})
            except httpx.HTTPError as exc:
                raise ApiError(503, "ServiceUnavailable", f"server {name} ({url}) did not take "
                               f"{what}: {exc}; run it again") from exc
            if r.status_code != 200:
                raise ApiError(503, "ServiceUnavailable", f"server {name} ({url}) refused "
                               f"{what}: HTTP {r.status_code} {r.text[:300]}; run it again")
    return sorted(others)


async def rotate_key(objects: Any, agent_pki: AgentPki, me: str,
                     tls: ssl.SSLContext) -> dict[str, Any]:
    """A new primary key on every server, then every Secret sealed again under it (nothing
    is rewritten unless every server took the key)."""
    keys = encryption.Keys.load(agent_pki.encryption_config).rotated()
    others = await to_other_servers(objects, me, tls, CONFIG_PATH, keys.to_yaml(),
                                    "application/yaml", "the new key")
    keys.save(agent_pki.encryption_config)
    encryption.install(keys)
    rewritten = await _reseal(objects)
    log.info("secrets: primary key now %s; %d Secrets sealed again", keys.primary, rewritten)
    return {"primary": keys.primary, "keys": [n for n, _ in keys.keys],
            "servers": sorted([me, *others]), "rewritten": rewritten}


async def _reseal(objects: Any) -> int:
    """Rewrite every Secret whose stored value is not sealed with the primary key (each a
    compare-and-put on its revision: one changed meanwhile is already sealed anew)."""
    transformer = encryption.active()
    assert transformer is not None
    store = objects.store
    items, _more, _rev = store.range(SECRETS.prefix(None))
    count = 0
    for kv in items:
        if transformer.sealed_with(kv.value) == transformer.keys.primary:
            continue
        opened = encryption.unseal(kv.key, kv.value)
        if opened is None:
            log.warning("secrets: %s does not open with any key; left as it is", kv.key)
            continue
        result = await objects.txn(Txn(
            (Compare(kv.key, "mod", "=", kv.mod_revision),),
            (Op(OpKind.PUT, kv.key, encryption.seal(kv.key, opened)),)))
        count += int(result.succeeded)
    return count
