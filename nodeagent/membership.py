"""The agent's gossip: what it tells the others about itself, and what it learns from them.

Each agent's gossip metadata says its role (a Raft server or not), its API URL
and, for servers, its Raft id and address.  From the members alive the agent
learns where the servers are: an agent that is not a server follows one of them
(store/remote.py), and a server looking for the others to bootstrap with
(raftbootstrap.py) learns of them here without a seed list.  So a new agent
needs one gossip address to find everything.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import trio

from nodeagent.config import AgentConfig
from nodeagent.fsutil import write_atomic
from nodeagent.gossip import config as profiles
from nodeagent.gossip.driver import GossipNode
from nodeagent.gossip.keyring import KEYRING_FILE, Keyring, KeyringError, decode_key, fingerprint
from nodeagent.gossip.messages import EventKind, Member, MemberState
from nodeagent.hostport import parse_host_port

__all__ = ["Membership", "NodeMeta"]

log = logging.getLogger("nodeagent.gossip")

PEERS_FILE = "gossip-peers.json"
KEY_EVENT = "_keyring"  # a user event carrying a key change (sealed with the current key)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@dataclass(frozen=True)
class NodeMeta:
    role: str = "client"  # "server": a Raft server
    api: str = ""
    raft_id: int = 0
    raft_addr: str = ""
    pod_cidr: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        return msgpack.packb({"role": self.role, "api": self.api, "raft_id": self.raft_id,
                              "raft": self.raft_addr, "cidr": self.pod_cidr,
                              "labels": dict(self.labels)}, use_bin_type=True)

    @classmethod
    def decode(cls, data: bytes) -> NodeMeta | None:
        """None for metadata that is not ours (another version, garbage): ignored."""
        try:
            raw = msgpack.unpackb(data, raw=False)
            meta = cls(str(raw["role"]), str(raw["api"]), int(raw["raft_id"]), str(raw["raft"]),
                       str(raw.get("cidr", "")),
                       tuple(sorted((str(k), str(v)) for k, v in raw.get("labels", {}).items())))
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            return None
        return meta


class Membership:
    def __init__(self, cfg: AgentConfig, addresses: list[str]) -> None:
        self.cfg = cfg
        host, port = parse_host_port(cfg.gossip_listen) or ("0.0.0.0", 0)
        advertise = parse_host_port(cfg.gossip_advertise) if cfg.gossip_advertise else None
        if advertise is None and host in ("0.0.0.0", ""):
            advertise = (addresses[0] if addresses else "127.0.0.1", port)
        self.meta = NodeMeta("server" if cfg.raft_id else "client", "", cfg.raft_id,
                             cfg.raft_listen if cfg.raft_id else "", cfg.pod_cidr,
                             tuple(sorted(cfg.labels().items())))
        self.keyring_path = Path(cfg.data_dir) / KEYRING_FILE
        self.peers_path = Path(cfg.data_dir) / PEERS_FILE
        self.node = GossipNode(profiles.PROFILES[cfg.gossip_profile](), cfg.name, (host, port),
                               advertise=advertise, meta=self.meta.encode(),
                               keyring=self._load_keyring(), rng=random.Random())
        self.changed = trio.Event()  # set and replaced on every gossip event

    def _load_keyring(self) -> Keyring | None:
        """The keyring saved by an earlier run (rotations survive restarts), else the
        configured key."""
        try:
            saved = json.loads(self.keyring_path.read_text())
            return Keyring([decode_key(k) for k in saved["keys"]])
        except FileNotFoundError:
            pass
        return Keyring([decode_key(self.cfg.gossip_key)]) if self.cfg.gossip_key else None

    def save_keyring(self) -> None:
        ring = self.node.keyring
        if ring is not None:
            write_atomic(self.keyring_path, json.dumps({"keys": [_b64(k) for k in ring.keys]})
                         .encode())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        events = self.node.subscribe()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.node.run)
            if self.node.keyring is not None and not self.keyring_path.exists():
                self.save_keyring()  # the configured key, kept for the next start
            seeds = self.cfg.gossip_seeds()
            seeds += [a for a in self._load_peers() if a not in seeds]
            if seeds:
                self.node.join(seeds)
            task_status.started()
            saved = set(self._load_peers())
            async for ev in events:
                if ev.kind != "user":  # a member came, went or moved
                    saved = self._save_peers(saved)
                if ev.kind is EventKind.USER and ev.user is not None and ev.user.name == KEY_EVENT:
                    self._key_event(ev.user.payload)
                elif ev.kind is EventKind.USER and ev.user is not None:
                    log.info("gossip: user event %s ltime=%d payload=%r", ev.user.name,
                             ev.user.ltime, ev.user.payload[:64])
                self.changed.set()
                self.changed = trio.Event()

    async def wait_changed(self) -> None:
        """Return when gossip's view of the members changes next."""
        await self.changed.wait()

    # --- the members known, kept for the next start (serf's snapshot) ------------------

    def _load_peers(self) -> list[tuple[str, int]]:
        try:
            return [(str(h), int(p)) for h, p in json.loads(self.peers_path.read_text())]
        except (OSError, ValueError, TypeError):
            return []

    def _save_peers(self, saved: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """The other members' addresses when they change: an agent that restarts (after a
        leave, which the others do not reconnect to, or as the first seed of the others)
        rejoins through them instead of staying alone."""
        now = {m.addr for m in self.node.members()
               if m.name != self.cfg.name and m.state is not MemberState.LEFT}
        if now and now != saved:
            write_atomic(self.peers_path, json.dumps(sorted(now)).encode())
            return now
        return saved

    # --- keys (serf's keys command): install, use, remove everywhere ---------------------

    def keys(self) -> dict[str, Any]:
        """The keyring as fingerprints: the keys themselves never leave the agent."""
        ring = self.node.keyring
        if ring is None:
            return {"encrypted": False, "keys": [], "primary": ""}
        return {"encrypted": True, "keys": [fingerprint(k) for k in ring.keys],
                "primary": fingerprint(ring.primary)}

    def key_op(self, op: str, key_text: str) -> None:
        """Apply here, then to every member through an (encrypted) gossip event.  ``use``
        and ``remove`` take a key or its fingerprint, ``install`` the key.  Raises
        KeyringError for a bad key or an operation the keyring refuses."""
        ring = self.node.keyring
        if ring is None:
            raise KeyringError("gossip is not encrypted here (no gossip key): no keyring")
        if op not in ("install", "use", "remove"):
            raise KeyringError(f"op: {op!r} is not install, use or remove")
        by_print = {fingerprint(k): k for k in ring.keys}
        if op != "install" and key_text in by_print:
            key = by_print[key_text]
        else:
            key = decode_key(key_text)
        getattr(self.node.keyring, op)(key)
        self.save_keyring()
        self.node.user_event(KEY_EVENT, msgpack.packb([op, key], use_bin_type=True))

    def _key_event(self, payload: bytes) -> None:
        try:
            op, key = msgpack.unpackb(payload, raw=False)
            ring = self.node.keyring
            if ring is None or op not in ("install", "use", "remove"):
                raise KeyringError(f"no keyring, or an unknown op {op!r}")
            getattr(ring, op)(key)
        except (ValueError, TypeError, KeyringError, msgpack.UnpackException) as exc:
            log.warning("gossip: key change not applied here: %s", exc)
            return
        self.save_keyring()
        log.info("gossip: key %s applied (%d keys)", op, len(ring.keys))

    def user_event(self, name: str, payload: bytes) -> None:
        """Send an event to every member (serf event).  Raises ValueError for a name or
        payload the codec would refuse."""
        from nodeagent.gossip.codec import MAX_NAME, MAX_USER_EVENT_BYTES
        if not name or len(name) > MAX_NAME or name.startswith("_"):
            raise ValueError(f"name: {name!r} must be 1 to {MAX_NAME} characters, not "
                             "starting with _ (kept for nodeagent's own)")
        if len(payload) > MAX_USER_EVENT_BYTES:
            raise ValueError(f"payload: {len(payload)} bytes is over {MAX_USER_EVENT_BYTES}")
        self.node.user_event(name, payload)

    def announce(self, api_url: str) -> None:
        """The API is serving: tell the others where."""
        self.meta = dataclasses.replace(self.meta, api=api_url)
        self.node.set_meta(self.meta.encode())

    def servers(self) -> list[tuple[Member, NodeMeta]]:
        """Raft servers alive (or suspect) with their metadata, by name."""
        out = []
        for m in sorted(self.node.members(), key=lambda m: m.name):
            meta = NodeMeta.decode(m.meta)
            if meta and meta.role == "server" and meta.api and \
                    m.state in (MemberState.ALIVE, MemberState.SUSPECT):
                out.append((m, meta))
        return out

    def states(self) -> dict[str, str]:
        """Member states by name as Kubernetes people say them: alive, suspect, failed,
        left (the node lifecycle controller's input)."""
        names = {MemberState.ALIVE: "alive", MemberState.SUSPECT: "suspect",
                 MemberState.DEAD: "failed", MemberState.LEFT: "left"}
        return {m.name: names[m.state] for m in self.node.members()}

    def rows(self) -> list[dict[str, Any]]:
        """What 'nodeagent members' shows."""
        rows = []
        for m in sorted(self.node.members(), key=lambda m: m.name):
            meta = NodeMeta.decode(m.meta) or NodeMeta(role="?")
            rows.append({"name": m.name, "address": f"{m.addr[0]}:{m.addr[1]}",
                         "status": "failed" if m.state is MemberState.DEAD else
                         m.state.name.lower(), "incarnation": m.incarnation,
                         "role": meta.role, "api": meta.api,
                         "raft": f"{meta.raft_id}={meta.raft_addr}" if meta.raft_id else "",
                         "podCIDR": meta.pod_cidr, "labels": dict(meta.labels)})
        return rows

    async def feed_servers(self, store: Any) -> None:
        """Keep the store's view of the servers current: a copy's list of servers to
        follow, a bootstrapping server's list of servers found."""
        while True:
            servers = self.servers()
            if hasattr(store, "hear_of"):  # a Raft server (raftbootstrap asks them)
                for _, meta in servers:
                    if meta.raft_id and meta.raft_addr and meta.api:
                        store.hear_of(meta.api)
            elif servers:  # a copy (RemoteStore)
                urls = [meta.api for _, meta in servers]
                if sorted(urls) != sorted(store.servers):
                    log.info("gossip: servers now %s", ", ".join(urls))
                    store.set_servers(urls)
            await self.changed.wait()
