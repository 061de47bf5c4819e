"""bootstrap_expect: new servers find each other and form the first cluster themselves.

Consul and Nomad start servers with ``-bootstrap-expect N`` instead of a static
member list (etcd's ``--initial-cluster``, our ``raft_peers``).  A server with
no membership says who it is to the servers it knows of (``raft_seeds`` first,
then whomever they heard of: POST /raft/hello) and collects the answers.  Then:

- once it knows N servers, none in a cluster yet, it takes all of them as the
  first voters; each of them does the same with the same set, so they agree
  without anyone to tell them, and an election follows;
- if a server it asks is in a cluster that counts it as a voter (another server
  bootstrapped a moment earlier), it takes that cluster's membership;
- if a server it asks is in a cluster without it, it asks to be added (POST
  /raft/peers, forwarded to the leader) and is promoted once caught up.

The outcome is written to ``raft-members.json`` in the data directory before
it is used, so a restarted server neither bootstraps again nor forgets where
the others are.  As in Consul, start exactly N servers with the same N: more
could bootstrap two clusters.  Gossip (issue 9) will replace the seed list.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import trio

from nodeagent.config import parse_host_port
from nodeagent.fsutil import write_atomic
from nodeagent.store.raftstore import RaftStore

__all__ = ["MEMBERS_FILE", "bootstrap", "load_members"]

log = logging.getLogger("nodeagent.raft")

MEMBERS_FILE = "raft-members.json"
ROUND_S = 0.5


def load_members(data_dir: str) -> tuple[dict[int, tuple[str, int]], bool]:
    """What an earlier bootstrap decided: (servers' Raft addresses, whether they are the
    first voters -- False: this server joined a cluster, its membership is in its log)."""
    try:
        saved = json.loads((Path(data_dir) / MEMBERS_FILE).read_text())
    except FileNotFoundError:
        return {}, False
    peers = {}
    for ident, address in saved["servers"].items():
        parsed = parse_host_port(address)
        assert parsed is not None, f"{MEMBERS_FILE}: bad address {address!r}"
        peers[int(ident)] = parsed
    return peers, bool(saved["bootstrapped"])


def _save(data_dir: str, servers: dict[int, str], bootstrapped: bool) -> None:
    write_atomic(Path(data_dir) / MEMBERS_FILE, json.dumps(
        {"servers": {str(i): a for i, a in sorted(servers.items())},
         "bootstrapped": bootstrapped}).encode())


def _addresses(servers: dict[int, str]) -> dict[int, tuple[str, int]]:
    out = {}
    for ident, address in servers.items():
        parsed = parse_host_port(address)
        if parsed is not None:
            out[ident] = parsed
    return out


async def bootstrap(store: RaftStore, expect: int, seeds: list[str], api_url: str,
                    data_dir: str) -> None:
    """Run until this server has a membership (returns at once if it has one)."""
    node = store.node
    raft = node.raft
    assert raft is not None
    if raft.voters or raft.learners or raft.log.last_index():
        return  # a member, or a joined server whose membership is in its log
    me = raft.id
    address = f"{node.transport.listen[0]}:{node.transport.port}"
    store.discovered[me] = (address, api_url)
    log.info("raft: looking for %d servers (bootstrap_expect) through %s", expect,
             ", ".join(seeds) or "no one")
    async with httpx.AsyncClient(timeout=2.0) as client:
        while not (raft.voters or raft.learners):
            urls = {*seeds, *(api for _, api in store.discovered.values() if api)} - {api_url}
            cluster: dict[str, Any] | None = None
            cluster_url = ""
            for url in sorted(urls):
                status = await _hello(client, url, me, address, api_url)
                if status is None:
                    continue
                for row in status.get("known", []):
                    _remember(store, row)
                if status.get("members") and cluster is None:
                    cluster, cluster_url = status, url
            if cluster is not None:
                members = {m["id"]: m["address"] for m in cluster["members"] if m["address"]}
                members[cluster["id"]] = cluster["address"]  # its own row has no address
                voters = {m["id"] for m in cluster["members"] if m["voter"]}
                if me in voters:  # bootstrapped by the others a moment ago: take theirs
                    _take(store, data_dir, {i: members[i] for i in voters}, address)
                else:
                    await _join(client, store, data_dir, cluster_url, members, address)
            elif len(store.discovered) >= expect:
                _take(store, data_dir, {i: a for i, (a, _) in store.discovered.items()}, address)
            await trio.sleep(ROUND_S)
    log.info("raft: a member now (voters %s, learners %s)", sorted(raft.voters),
             sorted(raft.learners))


def _take(store: RaftStore, data_dir: str, voters: dict[int, str], address: str) -> None:
    voters[store.node.config.id] = address
    log.info("raft: bootstrapping with %d servers: %s", len(voters),
             ", ".join(f"{i}={a}" for i, a in sorted(voters.items())))
    _save(data_dir, voters, bootstrapped=True)
    store.node.bootstrap(_addresses(voters))


async def _join(client: httpx.AsyncClient, store: RaftStore, data_dir: str, url: str,
                members: dict[int, str], address: str) -> None:
    node = store.node
    log.info("raft: found a cluster at %s (members %s); asking to be added", url,
             sorted(members))
    _save(data_dir, members, bootstrapped=False)
    node.set_peers(_addresses(members))
    try:
        resp = await client.post(f"{url}/raft/peers", json={"id": node.config.id,
                                                            "address": address})
        if resp.status_code not in (202, 409):
            log.info("raft: %s did not add us yet: %s", url, resp.text[:200])
    except httpx.HTTPError as exc:
        log.info("raft: %s: %s", url, exc)


async def _hello(client: httpx.AsyncClient, url: str, me: int, address: str,
                 api_url: str) -> dict[str, Any] | None:
    try:
        resp = await client.post(f"{url}/raft/hello",
                                 json={"id": me, "address": address, "api": api_url})
        status = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return status if isinstance(status, dict) and isinstance(status.get("id"), int) else None


def _remember(store: RaftStore, row: Any) -> None:
    if not isinstance(row, dict):
        return
    ident, address, api = row.get("id"), row.get("address"), row.get("api", "")
    if type(ident) is int and ident > 0 and isinstance(address, str) \
            and parse_host_port(address) and isinstance(api, str):
        store.discovered.setdefault(ident, (address, api))
