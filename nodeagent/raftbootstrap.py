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
- if a server it asks is in a cluster without it, it follows that cluster and logs the
  command for an operator to add it (``nodeagent raft add-peer`` on the operator socket);
  it is promoted once caught up.

A server is counted only once it answered a hello itself: the URLs others name (in a
hello, a list, a gossip packet) are only places to ask, and at most MAX_HEARD of them
are kept.

The outcome is written to ``raft-members.json`` in the data directory before
it is used, so a restarted server neither bootstraps again nor forgets where
the others are.  As in Consul, start exactly N servers with the same N: more
could bootstrap two clusters.  Servers that gossip learn of each other there
(membership.py feeds them in), so the seed list may be a single address.
"""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path
from typing import Any

import httpx
import trio

from nodeagent.fsutil import write_atomic
from nodeagent.hostport import parse_host_port
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
                    data_dir: str, *, verify: ssl.SSLContext | bool = True,
                    joined: bool = False) -> None:
    """Run until this server has a membership (returns at once if it has one).  With
    ``expect`` 0 (a server that joined with a token, and was added by the join) it never
    bootstraps a cluster itself: it only finds the one it joined.  ``verify``: the TLS
    context of the hellos (the cluster's CA, this server's certificate)."""
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
    told = False
    async with httpx.AsyncClient(timeout=2.0, verify=verify) as client:
        while not (raft.voters or raft.learners):
            urls = {*seeds, *store.heard, *(api for _, api in store.discovered.values() if api)}
            cluster: dict[str, Any] | None = None
            cluster_url = ""
            for url in sorted(urls - {api_url}):
                status = await _hello(client, url, me, address, api_url)
                if status is None:
                    continue
                _confirm(store, status, url)
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
                    if not told and not joined:
                        log.warning("raft: found a cluster at %s (members %s) that does not "
                                    "count this server; on its leader, run: nodeagent raft "
                                    "add-peer %d %s", cluster_url, sorted(members), me, address)
                        told = True
                    _follow(store, data_dir, members)
            elif expect and len(store.discovered) >= expect:
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


def _follow(store: RaftStore, data_dir: str, members: dict[int, str]) -> None:
    """A cluster without us: its members are our peers from now on, and an operator adds
    us (membership changes are the operator socket's alone until the servers
    authenticate each other)."""
    _save(data_dir, members, bootstrapped=False)
    store.node.set_peers(_addresses(members))


async def _hello(client: httpx.AsyncClient, url: str, me: int, address: str,
                 api_url: str) -> dict[str, Any] | None:
    try:
        resp = await client.post(f"{url}/raft/hello",
                                 json={"id": me, "address": address, "api": api_url})
        status = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return status if isinstance(status, dict) and isinstance(status.get("id"), int) else None


def _confirm(store: RaftStore, status: dict[str, Any], url: str) -> None:
    """A server that answered our hello at ``url`` is one: counted from now on.  Nothing
    is counted on anyone's word alone -- a hello sent to us, another server's list, a
    gossip packet -- since anyone can say those (a forged one once became a voter)."""
    ident, address = status.get("id"), status.get("address")
    if type(ident) is int and ident > 0 and isinstance(address, str) and parse_host_port(address):
        store.discovered.setdefault(ident, (address, url))


def _remember(store: RaftStore, row: Any) -> None:
    """A server another one knows: its URL to ask (see _confirm)."""
    if isinstance(row, dict) and isinstance(row.get("api"), str) and \
            row["api"].startswith(("http://", "https://")):
        store.hear_of(row["api"])
