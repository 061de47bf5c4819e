"""An agent's credentials at start: make the cluster's, join with a token, or use those
it has; then keep its certificates fresh.

- No CA in <data_dir>/pki and no join token: this agent is the first server (or a
  standalone agent) and makes the cluster's CA -- and, if it gossips, the gossip key --
  as ``docker swarm init`` does.  A server of a cluster formed at once (raft_peers,
  raft_bootstrap_expect above 1) must instead be given the first one's ``pki/ca.crt``
  and ``pki/ca.key`` (kubeadm's manual certificate distribution) or a join token.
- A join token: join.py gets the CA, this node's certificates and the gossip keys.
- A server (it holds the CA's key) issues or renews its own certificates at every
  start and hourly after (``renew``); a node's are renewed by a new join for now.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import trio

from nodeagent.api import encryption
from nodeagent.clusterpki import AgentPki, Contexts
from nodeagent.config import AgentConfig
from nodeagent.errors import ConfigError
from nodeagent.fsutil import write_atomic
from nodeagent.gossip.keyring import KEYRING_FILE
from nodeagent.join import join, parse_join_token

__all__ = ["ensure_credentials", "renew"]

log = logging.getLogger("nodeagent.credentials")

RENEW_CHECK_S = 3600.0


def _keyring_path(cfg: AgentConfig) -> Path:
    return Path(cfg.data_dir) / KEYRING_FILE


def _save_keyring(cfg: AgentConfig, keys: list[bytes]) -> None:
    write_atomic(_keyring_path(cfg), json.dumps(
        {"keys": [base64.b64encode(k).decode() for k in keys]}).encode())


def _listen_host(cfg: AgentConfig) -> list[str]:
    host = cfg.api_listen.rpartition(":")[0].strip("[]")
    return [host] if host and host not in ("0.0.0.0", "::", "localhost") else []


async def ensure_credentials(cfg: AgentConfig, addresses: list[str],
                             raft_address: str = "") -> AgentPki:
    """The agent's PKI, ready to serve with.  Raises ConfigError (an agent that cannot
    get credentials) or JoinError (a join refused)."""
    agent_pki = AgentPki(cfg.data_dir)
    if not agent_pki.has_ca():
        if cfg.join_token:
            raft = {"id": cfg.raft_id, "address": raft_address} if cfg.raft_id else None
            keys = await join(agent_pki, cfg.join_urls(),
                              parse_join_token(cfg.join_token), cfg.name, addresses, raft)
            if keys and cfg.gossip_listen and not _keyring_path(cfg).exists():
                _save_keyring(cfg, keys)
        elif cfg.servers or (cfg.gossip_listen and not cfg.raft_id):
            raise ConfigError("join_token", "an agent that is not a server joins the cluster "
                              "with a token: 'nodeagent token create' on a server, then "
                              "join_token_file (or NODEAGENT_JOIN_TOKEN)")
        elif cfg.raft_peers or cfg.raft_bootstrap_expect > 1 or cfg.raft_join:
            raise ConfigError("join_token", "the servers of a cluster formed at once share "
                              "one CA: start the first alone and join the others with "
                              "'nodeagent token create --role server', or copy its "
                              f"pki/ca.crt and pki/ca.key into {agent_pki.dir}")
        else:
            agent_pki.init_ca()
            log.info("made the cluster's CA (%s)", agent_pki.ca_hash())
            encryption.Keys.new().save(agent_pki.encryption_config)
            log.info("made the key Secrets are encrypted with (%s)", encryption.CONFIG_FILE)
            if cfg.gossip_listen and not cfg.gossip_key and not cfg.gossip_insecure:
                _save_keyring(cfg, [os.urandom(32)])
                log.info("made the gossip key (%s)", KEYRING_FILE)
    if agent_pki.is_signer():
        if not agent_pki.encryption_config.exists():
            if cfg.raft_peers or cfg.raft_bootstrap_expect > 1 or cfg.raft_join:
                raise ConfigError("raft_id", "the servers of a cluster formed at once share "
                                  "the key Secrets are encrypted with: copy the first one's "
                                  f"pki/{encryption.CONFIG_FILE} into {agent_pki.dir}")
            encryption.Keys.new().save(agent_pki.encryption_config)  # a lone agent's
        encryption.install(encryption.Keys.load(agent_pki.encryption_config))
        issued = agent_pki.ensure_leaves(cfg.name, addresses, _listen_host(cfg),
                                         raft_id=cfg.raft_id)
        if issued:
            log.info("issued certificates: %s", ", ".join(issued))
    else:
        missing = [w for w in ("server", "node") if not agent_pki.cert(w).exists()]
        if missing:
            raise ConfigError("join_token", f"{agent_pki.dir} has the CA but not this agent's "
                              f"{' and '.join(missing)} certificate: join again with a token")
    if cfg.gossip_listen and not cfg.gossip_key and not cfg.gossip_insecure \
            and not _keyring_path(cfg).exists():
        raise ConfigError("gossip_key_file", "gossip needs the cluster's gossip key: it comes "
                          "with a join token, or give gossip_key_file")
    return agent_pki


async def renew(cfg: AgentConfig, addresses: list[str], contexts: Contexts,
                renewed: Callable[[], None] = lambda: None,
                every_s: float = RENEW_CHECK_S) -> None:
    """On a server: renew what is due, hourly, and reload the contexts so that new
    connections get the new certificates and open ones keep theirs."""
    agent_pki = contexts.pki
    while True:
        await trio.sleep(every_s)
        if not agent_pki.is_signer():
            continue
        try:
            issued = await trio.to_thread.run_sync(functools.partial(
                agent_pki.ensure_leaves, cfg.name, addresses, _listen_host(cfg),
                raft_id=cfg.raft_id))
        except (OSError, ValueError) as exc:
            log.warning("certificate renewal failed (retrying in %.0fs): %s", every_s, exc)
            continue
        if issued:
            contexts.reload()
            if "admin" in issued and agent_pki.api_url:
                agent_pki.write_kubeconfig(agent_pki.api_url)
            renewed()
            log.info("renewed certificates: %s", ", ".join(issued))

