"""The agent's gossip: what it tells the others about itself, and what it learns from them.

Each agent's gossip metadata says its role (a Raft server or not), its API URL
and, for servers, its Raft id and address.  From the members alive the agent
learns where the servers are: an agent that is not a server follows one of them
(store/remote.py), and a server looking for the others to bootstrap with
(raftbootstrap.py) learns of them here without a seed list.  So a new agent
needs one gossip address to find everything (issue 9).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import trio

from nodeagent.config import AgentConfig, parse_host_port
from nodeagent.fsutil import write_atomic
from nodeagent.gossip import config as profiles
from nodeagent.gossip.driver import GossipNode
from nodeagent.gossip.keyring import Keyring, decode_key
from nodeagent.gossip.messages import Member, MemberState

__all__ = ["Membership", "NodeMeta"]

log = logging.getLogger("nodeagent.gossip")

KEYRING_FILE = "gossip-keyring.json"


@dataclass(frozen=True)
class NodeMeta:
    role: str = "client"  # "server": a Raft server
    api: str = ""
    raft_id: int = 0
    raft_addr: str = ""

    def encode(self) -> bytes:
        return msgpack.packb({"role": self.role, "api": self.api, "raft_id": self.raft_id,
                              "raft": self.raft_addr}, use_bin_type=True)

    @classmethod
    def decode(cls, data: bytes) -> NodeMeta | None:
        """None for metadata that is not ours (another version, garbage): ignored."""
        try:
            raw = msgpack.unpackb(data, raw=False)
            meta = cls(str(raw["role"]), str(raw["api"]), int(raw["raft_id"]), str(raw["raft"]))
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
                             cfg.raft_listen if cfg.raft_id else "")
        profile = {"lan": profiles.lan, "wan": profiles.wan, "local": profiles.local}
        self.keyring_path = Path(cfg.data_dir) / KEYRING_FILE
        self.node = GossipNode(profile[cfg.gossip_profile](), cfg.name, (host, port),
                               advertise=advertise, meta=self.meta.encode(),
                               keyring=self._load_keyring(), rng=random.Random())
        self.changed = trio.Event()  # replaced whenever the servers known change

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
        import base64
        ring = self.node.keyring
        if ring is not None:
            write_atomic(self.keyring_path, json.dumps(
                {"keys": [base64.b64encode(k).decode() for k in ring.keys]}).encode())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        events = self.node.subscribe()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.node.run)
            if self.node.keyring is not None:
                self.save_keyring()
            seeds = self.cfg.gossip_seeds()
            if seeds:
                self.node.join(seeds)
            task_status.started()
            async for _ in events:
                self.changed.set()
                self.changed = trio.Event()

    def announce(self, api_url: str) -> None:
        """The API is serving: tell the others where."""
        self.meta = NodeMeta(self.meta.role, api_url, self.meta.raft_id, self.meta.raft_addr)
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

    def rows(self) -> list[dict[str, Any]]:
        """What 'nodeagent members' shows."""
        rows = []
        for m in sorted(self.node.members(), key=lambda m: m.name):
            meta = NodeMeta.decode(m.meta) or NodeMeta(role="?")
            rows.append({"name": m.name, "address": f"{m.addr[0]}:{m.addr[1]}",
                         "status": m.state.name.lower(), "incarnation": m.incarnation,
                         "role": meta.role, "api": meta.api,
                         "raft": f"{meta.raft_id}={meta.raft_addr}" if meta.raft_id else ""})
        return rows

    async def feed_servers(self, store: Any) -> None:
        """Keep the store's view of the servers current: a copy's list of servers to
        follow, a bootstrapping server's list of servers found."""
        while True:
            servers = self.servers()
            if hasattr(store, "discovered"):  # a Raft server (raftbootstrap)
                for _, meta in servers:
                    if meta.raft_id and meta.raft_addr:
                        store.discovered.setdefault(meta.raft_id, (meta.raft_addr, meta.api))
            elif servers:  # a copy (RemoteStore)
                urls = [meta.api for _, meta in servers]
                if sorted(urls) != sorted(store.servers):
                    log.info("gossip: servers now %s", ", ".join(urls))
                    store.set_servers(urls)
            await self.changed.wait()
