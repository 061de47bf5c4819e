"""An agent's credentials at start: make the cluster's, join with a token, or use those
it has; then keep its certificates fresh.

- No CA in <data_dir>/pki and no join token: this agent is the first server (or a
  standalone agent) and makes the cluster's CA -- and, if it gossips, the gossip key --
  as ``docker swarm init`` does.  A server of a cluster formed at once (raft_peers,
  raft_bootstrap_expect above 1) must instead be given the first one's ``pki/ca.crt``
  and ``pki/ca.key`` (kubeadm's manual certificate distribution) or a join token.
- A join token: join.py gets the CA, this node's certificates and the gossip keys.
- A server (it holds the CA's key) issues or renews its own certificates at every
  start and hourly after (``renew``), and at once when a CA rotation reaches it.
- Every agent follows the cluster's CA bundle (``CaFollower``): a node takes a changed
  bundle from its copy of the store (kube-system's ``kube-root-ca.crt``, which a CA
  rotation writes) and asks a server for new certificates (``POST /renew``, a CSR for a
  key it keeps) when its own are due or were signed by a CA that no longer signs; each
  agent says on its Node which CAs it trusts and which one signed it (carotation.py).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import trio
from cryptography import x509

from nodeagent import pki
from nodeagent.api import encryption
from nodeagent.api.status import ApiError
from nodeagent.carotation import BUNDLE, node_annotations
from nodeagent.clusterpki import AgentPki, Contexts, due
from nodeagent.config import AgentConfig
from nodeagent.errors import ConfigError
from nodeagent.fsutil import write_atomic
from nodeagent.gossip.keyring import KEYRING_FILE
from nodeagent.join import join, parse_join_token
from nodeagent.objects.kinds import CONFIGMAPS, NODES

__all__ = ["CaFollower", "ensure_credentials", "renew", "renew_now"]

log = logging.getLogger("nodeagent.credentials")

RENEW_CHECK_S = 3600.0
FOLLOW_CHECK_S = 60.0  # a node looks at its certificates' age this often


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


def renew_now(cfg: AgentConfig, addresses: list[str], contexts: Contexts,
              trust_changed: bool = False) -> list[str]:
    """On a server: issue what is due or no longer of the signing CA, and reload the
    contexts so that new connections get the new certificates and open ones keep theirs.
    ``trust_changed``: the CAs trusted changed (a CA rotation's step), so the contexts and
    the admin kubeconfig are made again even if no certificate is.  Returns what was
    issued."""
    agent_pki = contexts.pki
    if not agent_pki.is_signer():
        return []
    issued = agent_pki.ensure_leaves(cfg.name, addresses, _listen_host(cfg),
                                     raft_id=cfg.raft_id)
    if issued or trust_changed:
        contexts.reload()
    if agent_pki.api_url and ("admin" in issued or trust_changed):
        agent_pki.write_kubeconfig(agent_pki.api_url)
    if issued:
        log.info("renewed certificates: %s", ", ".join(issued))
    return issued


async def renew(cfg: AgentConfig, addresses: list[str], contexts: Contexts,
                every_s: float = RENEW_CHECK_S) -> None:
    """On a server: renew_now, hourly."""
    while True:
        await trio.sleep(every_s)
        try:
            await trio.to_thread.run_sync(functools.partial(renew_now, cfg, addresses, contexts))
        except (OSError, ValueError, pki.PkiError) as exc:
            log.warning("certificate renewal failed (retrying in %.0fs): %s", every_s, exc)


class CaFollower:
    """Every agent's watch on the cluster's CA (see the module's docstring).  ``server()``:
    the API a node renews through (a server's, which signs)."""

    def __init__(self, cfg: AgentConfig, addresses: list[str], contexts: Contexts,
                 objects: Any, server: Callable[[], str]) -> None:
        self.cfg, self.addresses, self.contexts = cfg, addresses, contexts
        self.objects, self.server = objects, server

    @property
    def prefixes(self) -> list[str]:
        return [CONFIGMAPS.key("kube-system", BUNDLE), NODES.key(None, self.cfg.name)]

    async def sync(self) -> float | None:
        agent_pki = self.contexts.pki
        if not agent_pki.is_signer():
            await self._take_bundle()
            if self._due():
                await self._renew()
        await self._annotate()
        return RENEW_CHECK_S if agent_pki.is_signer() else FOLLOW_CHECK_S

    async def _take_bundle(self) -> None:
        """A changed kube-system/kube-root-ca.crt is only the signal: the bundle itself is
        asked of a server over TLS this agent already trusts (whoever may write ConfigMaps
        in kube-system must not be able to make nodes trust a CA of theirs)."""
        try:
            published = (self.objects.get(CONFIGMAPS, "kube-system", BUNDLE).get("data") or {}
                         ).get("ca.crt") or ""
        except ApiError:
            return
        agent_pki = self.contexts.pki
        if not published or published == agent_pki.ca_cert.read_text():
            return
        url = self.server()
        try:
            async with httpx.AsyncClient(verify=self.contexts.client, timeout=10.0) as client:
                resp = await client.get(f"{url}/cacerts")
        except httpx.HTTPError as exc:
            log.warning("the cluster's CA changed; asking %s for it failed: %s", url, exc)
            return
        bundle = resp.text if resp.status_code == 200 and len(resp.content) <= 65536 else ""
        if bundle != published:
            log.warning("kube-system/%s differs from the CAs the server %s serves: ignored "
                        "until they agree", BUNDLE, url)
            return
        try:
            cas = x509.load_pem_x509_certificates(bundle.encode())
        except ValueError:
            return
        if len(cas) > 2 or not {pki.ca_hash(c) for c in cas} & set(agent_pki.trusted_hashes()):
            log.warning("the server %s serves CAs that share none with the ones this agent "
                        "trusts: ignored", url)
            return
        write_atomic(agent_pki.ca_cert, bundle.encode())
        self.contexts.reload()
        log.info("now trusting the CA(s) %s", ", ".join(agent_pki.trusted_hashes()))

    def _due(self) -> bool:
        agent_pki = self.contexts.pki
        signing = agent_pki.ca_hash()
        for which in ("node", "server"):
            try:
                cert = x509.load_pem_x509_certificate(agent_pki.cert(which).read_bytes())
            except (OSError, ValueError):
                return True
            if agent_pki.leaf_ca_hash(which) != signing or due(cert):
                return True
        return False

    async def _renew(self) -> None:
        from nodeagent.join import JoinError, csr_for, key_pem, renewed_leaves
        agent_pki = self.contexts.pki
        key, csr = csr_for(self.cfg.name)
        url = self.server()
        if not url:
            return
        try:
            async with httpx.AsyncClient(verify=self.contexts.client, timeout=10.0) as client:
                resp = await client.post(f"{url}/renew", json={"csr": csr,
                                                               "addresses": self.addresses})
            if resp.status_code != 200:
                raise JoinError(f"HTTP {resp.status_code} {resp.text[:200]}")
            node, server = renewed_leaves(agent_pki, self.cfg.name, key, resp.json())
        except (httpx.HTTPError, ValueError, JoinError) as exc:
            log.warning("certificate renewal through %s failed: %s", url, exc)
            return
        agent_pki.write_leaf("node", node, key_pem(key))
        agent_pki.write_leaf("server", server, key_pem(key))
        self.contexts.reload()
        log.info("renewed certificates: node, server (signed by %s)", agent_pki.leaf_ca_hash())

    async def _annotate(self) -> None:
        wanted = node_annotations(self.contexts.pki)
        try:
            node = self.objects.get(NODES, None, self.cfg.name)
        except ApiError:
            return  # no Node (an agent without pods): the servers' pushes cover servers
        if all((node["metadata"].get("annotations") or {}).get(k) == v
               for k, v in wanted.items()):
            return
        try:
            await self.objects.patch(NODES, None, self.cfg.name,
                                     {"metadata": {"annotations": wanted}},
                                     "application/merge-patch+json")
        except ApiError as exc:
            log.warning("could not say on Node %s which CAs it trusts: %s", self.cfg.name,
                        exc.message)

