"""The agent's start-up sequence: store, API, controllers; signals; sd_notify.

Read top to bottom, ``run_agent`` is the order things start in.  Everything
runs in one nursery: SIGTERM or SIGINT cancels it, which stops the API
(hypercorn drains connections for a few seconds) and then the store, whose
log is already durable for every acknowledged write.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import psutil
import trio

from nodeagent import apiservers, carotation
from nodeagent.api import rbacdefaults
from nodeagent.api.audit import AuditLog
from nodeagent.api.authn import Authenticator, BootstrapTokens, StaticTokens
from nodeagent.api.listen import (
    ConnectionGate,
    ConnectionLimits,
    NodeAddresses,
    TlsPeers,
    raise_fd_limit,
)
from nodeagent.api.objects import ObjectStore
from nodeagent.api.operator import OperatorApp
from nodeagent.api.podlogs import PodLogs
from nodeagent.api.raftadmin import add_peer
from nodeagent.api.ratelimit import RateLimits
from nodeagent.api.satokens import ServiceAccountTokens, TokenSigner
from nodeagent.api.server import ApiApp, serve_api
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import AgentPki, Contexts, raft_peer
from nodeagent.config import AgentConfig
from nodeagent.containers import ensure_launcher
from nodeagent.coordinator.run import run_coordinator
from nodeagent.credentials import CaFollower, ensure_credentials, renew, renew_now
from nodeagent.errors import ConfigError
from nodeagent.fsutil import make_private_dir
from nodeagent.join import JoinService, RenewService
from nodeagent.loopwatch import SlowSteps
from nodeagent.membership import Membership
from nodeagent.nodestatus import NodeReporter
from nodeagent.objects.kinds import NAMESPACES, NODES, SECRETS, by_kind
from nodeagent.podmanager.manager import PodManager
from nodeagent.podmanager.metrics import Metrics
from nodeagent.podmanager.runtime import RuntimeClient
from nodeagent.podmanager.satokens import PodTokens
from nodeagent.podmanager.secrets import RemoteSecrets
from nodeagent.proxy.service import RulesProgress
from nodeagent.raft.transport import PeerTls
from nodeagent.raftbootstrap import bootstrap, load_members
from nodeagent.reconcile import reconcile
from nodeagent.store import LocalStore
from nodeagent.store.raftstore import RaftStore
from nodeagent.store.remote import RemoteStore
from runtime.images import ImageStore
from runtime.protocol import Op

log = logging.getLogger("nodeagent.agent")

BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(message.encode(), path)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)


async def ensure_namespaces(objects: ObjectStore) -> None:
    """The built-in namespaces and the default RBAC policy, whichever is missing."""
    res = NAMESPACES
    assert res is not None
    for name in BUILTIN_NAMESPACES:
        try:
            await objects.create(res, None, {"metadata": {"name": name}})
        except ApiError as exc:
            if exc.code != 409:
                raise
    await rbacdefaults.ensure_defaults(objects)


async def run_agent(cfg: AgentConfig, *,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until cancelled or signalled.  Reports the API's bound addresses once serving."""
    make_private_dir(cfg.data_dir)  # the store, Raft's log and keys: root's alone
    # Work moved off the loop to a thread (large bodies, fsync waits) still shares the
    # GIL: the loop waits up to this long for it each time it wants it back.  Python's 5 ms
    # default stretched a request's steps past 50 ms while a thread parsed a large body.
    sys.setswitchinterval(0.001)
    if cfg.loop_warn_ms:
        trio.lowlevel.add_instrument(SlowSteps(cfg.loop_warn_ms))
    addresses = node_addresses(cfg.pod_cidr or cfg.cluster_cidr)
    # Credentials before anything that talks: the gossip key may come with them.
    agent_pki = None if cfg.insecure_http else await ensure_credentials(cfg, addresses,
                                                                        cfg.raft_listen)
    contexts = Contexts(agent_pki) if agent_pki is not None else None
    store = _store(cfg, contexts)
    membership = Membership(cfg, addresses) if cfg.gossip_listen else None
    async with trio.open_nursery() as nursery:
        if membership is not None:  # first: a copy finds its servers through it
            await nursery.start(membership.run)
            nursery.start_soon(membership.feed_servers, store)
        await nursery.start(store.run)
        nursery.start_soon(_signals, nursery.cancel_scope, store, membership)
        objects = ObjectStore(store)
        if isinstance(store, LocalStore):
            await ensure_namespaces(objects)  # with Raft the leader does it (_lead)
        rules_applied = RulesProgress() if cfg.proxy else None
        tls = TlsPeers(lambda: contexts.server) if contexts is not None else None
        app = ApiApp(objects, ready=lambda: store.ready.is_set(),
                     body_timeout_s=cfg.request_timeout_s, gossip=membership,
                     server_names=frozenset({cfg.name.lower(), socket.gethostname().lower()}),
                     tls=tls, **_security(cfg, agent_pki, objects, store, membership, contexts,
                                          addresses))
        # With a PKI, pods get ServiceAccount tokens; a copy holds no Secrets.
        objects.service_account_tokens = contexts is not None
        objects.default_toleration_s = cfg.unreachable_toleration_s
        if isinstance(store, RemoteStore) and contexts is not None:
            app.secrets_at = lambda: store.server
        gate = ConnectionGate(ConnectionLimits.for_descriptors(raise_fd_limit()),
                              trusted=NodeAddresses(objects))
        addrs = await nursery.start(partial(serve_api, app, cfg.api_listen,
                                            request_timeout_s=cfg.request_timeout_s, gate=gate,
                                            tls=tls))
        operator = OperatorApp(objects, gossip=membership)
        operator.pki, operator.name = agent_pki, cfg.name
        if contexts is not None:
            operator.peer_tls = lambda: contexts.client
            app.agent_tls = lambda: contexts.client  # nodes/proxy, to another node's agent
            operator.ca_changed = partial(renew_now, cfg, addresses, contexts,
                                          trust_changed=True)
        await nursery.start(partial(serve_api, operator, "unix:" + cfg.operator_socket_path()))
        if contexts is not None:
            follower = CaFollower(cfg, addresses, contexts, objects,
                                  (lambda: store.server) if isinstance(store, RemoteStore)
                                  else (lambda: ""))
            await nursery.start(partial(reconcile, coalesce_s=0.1, resync_s=3600.0),
                                "certificates", store, follower.prefixes, follower.sync)
        if agent_pki is not None and contexts is not None and agent_pki.is_signer():
            agent_pki.write_kubeconfig(_reachable(addrs[0], addresses))
            nursery.start_soon(renew, cfg, addresses, contexts)
            if not isinstance(store, RemoteStore):  # a server: in the servers' registry
                nursery.start_soon(apiservers.announce, store, cfg.name,
                                   _reachable(addrs[0], addresses), cfg.raft_id)
        if membership is not None:
            membership.announce(_reachable(addrs[0], addresses))
        if isinstance(store, RaftStore):
            if cfg.raft_bootstrap_expect or cfg.raft_joins():
                nursery.start_soon(partial(
                    bootstrap, store, cfg.raft_bootstrap_expect, cfg.raft_seed_urls(),
                    _reachable(addrs[0], addresses), cfg.data_dir,
                    verify=contexts.client if contexts is not None else True,
                    joined=cfg.raft_joins()))
            await nursery.start(_lead, store, objects, _coordinator(cfg, membership, agent_pki))
        elif isinstance(store, LocalStore) and cfg.coordinator:
            await nursery.start(_coordinator(cfg, membership, agent_pki), objects)
        # Started, for systemd, once the API serves: the pods wait for the cluster (a pod
        # CIDR from its coordinator), and a server booting while the others are still down
        # must not be killed for a start timeout (etcd's long-standing trap with Type=notify).
        serving = f"serving API on {','.join(addrs)}"
        sd_notify(f"READY=1\nSTATUS={serving}" + ("; starting the node" if cfg.launcher_socket else ""))
        nursery.start_soon(_watchdog, store)
        if cfg.launcher_socket:
            await _run_pods(cfg, objects, app, addresses, rules_applied, nursery, contexts,
                            _reachable(addrs[0], addresses))
        if cfg.proxy:
            await nursery.start(_proxy, objects, cfg.proxy, addresses, rules_applied)
        # What start-up made (modules, classes, the store as recovered) lives as long as the
        # agent: out of the collector's sight, a full collection no longer walks its 80,000
        # objects, which held the event loop for 50 ms each time.
        gc.collect()
        gc.freeze()
        log.info("agent ready node=%s api=%s data_dir=%s revision=%d", cfg.name,
                 ",".join(addrs), cfg.data_dir, store.revision)
        if cfg.launcher_socket:
            sd_notify(f"STATUS={serving}; node up")
        task_status.started(addrs)
    log.info("agent stopped node=%s", cfg.name)


Store = LocalStore | RaftStore | RemoteStore


def _security(cfg: AgentConfig, agent_pki: AgentPki | None, objects: ObjectStore,
              store: Store, membership: Membership | None, contexts: Contexts | None,
              addresses: list[str]) -> dict[str, Any]:
    """The API's authenticator, its CA bundle for /cacerts and, on a server, the join
    service; nothing with --insecure-http."""
    if agent_pki is None or contexts is None:
        return {}

    def secret(namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return objects.get(SECRETS, namespace, name)
        except ApiError:
            return None

    def gossip_keys() -> list[bytes]:
        ring = membership.node.keyring if membership is not None else None
        return ring.keys if ring is not None else []

    async def add_server(raft: Any) -> None:
        try:
            add_peer(store, raft)
        except ApiError as exc:
            if exc.code != 409 or "a member already" not in exc.message:
                raise

    def find(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        res = by_kind(kind)
        return objects.find(res, namespace, name) if res is not None else None

    tokens = StaticTokens.load(cfg.token_auth_file) if cfg.token_auth_file else None
    signer = agent_pki.is_signer()
    # The servers sign and check ServiceAccount tokens (api/satokens.py).
    token_signer = TokenSigner(agent_pki.ca_keys) if signer else None
    service_accounts = ServiceAccountTokens(token_signer, find) if token_signer else None
    return {"authenticator": Authenticator(tokens=tokens, bootstrap=BootstrapTokens(secret),
                                           service_accounts=service_accounts),
            "token_signer": token_signer,
            "ca_bundle": agent_pki.ca_cert.read_bytes,
            "join": JoinService(agent_pki, gossip_keys, add_server),
            "take_encryption": partial(apiservers.take_config, agent_pki) if signer else None,
            "take_ca_step": partial(carotation.take, agent_pki, changed=partial(
                renew_now, cfg, addresses, contexts, trust_changed=True)) if signer else None,
            "renew": RenewService(agent_pki) if signer else None,
            "audit": AuditLog(os.path.join(cfg.data_dir, "audit.log")),
            "rate_limits": RateLimits()}


def _store(cfg: AgentConfig, contexts: Contexts | None) -> Store:
    """The agent's own store; with a Raft id the replicated one; with servers a copy of
    theirs."""
    if cfg.servers or (cfg.gossip_listen and not cfg.raft_id):  # gossip tells the servers
        return RemoteStore(cfg.server_urls(), history_revisions=cfg.history_revisions,
                           verify=(lambda: contexts.client) if contexts is not None else True)
    if not cfg.raft_id:
        return LocalStore(cfg.data_dir, fsync=cfg.fsync, snapshot_every=cfg.snapshot_every,
                          history_revisions=cfg.history_revisions)
    peers = cfg.raft_peer_addresses()
    voters = tuple(sorted(set(peers) if cfg.raft_join else {cfg.raft_id, *peers}))
    if cfg.raft_bootstrap_expect or cfg.raft_joins():  # what an earlier start found, if any
        peers, bootstrapped = load_members(cfg.data_dir)
        voters = tuple(sorted(peers)) if bootstrapped else ()
        peers.pop(cfg.raft_id, None)
    return RaftStore(cfg.data_dir, node_id=cfg.raft_id, listen=cfg.raft_listen_address(),
                     peers=peers, voters=voters, tls=_raft_tls(contexts),
                     fsync=cfg.fsync,
                     snapshot_every=cfg.snapshot_every, history_revisions=cfg.history_revisions,
                     tick_s=cfg.raft_tick_ms / 1000)


def _raft_tls(contexts: Contexts | None) -> PeerTls | None:
    """Mutual TLS for Raft, with the contexts as renewed (None: --insecure-http)."""
    if contexts is None:
        return None
    if contexts.raft_server is None:
        raise ConfigError("raft_id", "this server has no Raft certificate (pki/raft.crt): is "
                          "the CA's key in its pki directory?")

    def server() -> ssl.SSLContext:
        assert contexts.raft_server is not None
        return contexts.raft_server

    def client() -> ssl.SSLContext:
        assert contexts.raft_client is not None
        return contexts.raft_client
    return PeerTls(server=server, client=client, identify=raft_peer)


async def _lead(store: RaftStore, objects: ObjectStore,
                coordinator: Callable[..., Awaitable[None]], *,
                task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The coordinator runs while this server is the Raft leader, under a cancel scope
    that leadership's end cancels (DESIGN: leadership is a cancel scope)."""
    node = store.node
    task_status.started()
    while True:
        while not node.is_leader:
            await node.wait_changed()
        log.info("raft leader term=%d: starting the coordinator", node.raft.term if node.raft else 0)
        async with trio.open_nursery() as nursery:
            async def step_down() -> None:
                while node.is_leader:
                    await node.wait_changed()
                nursery.cancel_scope.cancel()
            nursery.start_soon(step_down)
            while True:  # the built-in namespaces, once there is a leader to take them
                try:
                    await ensure_namespaces(objects)
                    break
                except ApiError as exc:
                    if exc.code != 503:
                        raise
                    await trio.sleep(0.1)
            await nursery.start(coordinator, objects)
        log.info("raft leadership lost: coordinator stopped")


def _coordinator(cfg: AgentConfig, membership: Membership | None,
                 agent_pki: AgentPki | None) -> Callable[..., Awaitable[None]]:
    members = membership.states if membership is not None else None
    changed = membership.wait_changed if membership is not None else None
    return partial(run_coordinator, members=members, members_changed=changed,
                   cluster_cidr=cfg.cluster_cidr,
                   node_cidr_mask=cfg.node_cidr_mask,
                   unreachable_toleration_s=cfg.unreachable_toleration_s,
                   ca_bundle=agent_pki.ca_cert.read_bytes if agent_pki is not None else None)


async def _run_pods(cfg: AgentConfig, objects: ObjectStore, app: ApiApp, addresses: list[str],
                    rules_applied: RulesProgress | None, nursery: trio.Nursery,
                    contexts: Contexts | None, api_url: str) -> None:
    """This node's pod manager, its usage metrics, its Node and, in a cluster with a pod
    network, its routes to the other nodes' pods.  The Node is offered to the scheduler
    after the pod manager runs -- unless the coordinator must first give the Node its
    pod CIDR, which needs the Node."""
    reporter = NodeReporter(objects, cfg.name, cfg.data_dir, addresses, labels=cfg.labels(),
                            pod_cidr=cfg.pod_cidr, reserved_cpu_m=cfg.reserved_cpu_m,
                            reserved_memory=cfg.reserved_memory_mib * 1024 * 1024,
                            agent_port=urlsplit(api_url).port or 0)
    cidr = cfg.pod_cidr
    registered_first = bool(cfg.cluster_cidr and not cidr)
    if registered_first:
        await nursery.start(reporter.run)
        cidr = await _assigned_cidr(objects, cfg.name)
    if cidr:
        await _fence_pods(cfg, cfg.cluster_cidr or cidr, api_url)
    pods = await _pod_manager(cfg, objects, addresses, rules_applied, cidr, contexts, api_url)
    usage = Metrics(cfg.name, pods.runtime)
    app.logs = PodLogs(cfg.name, os.path.join(cfg.data_dir, "kubelet", "logs"))
    app.exec, app.attach, app.dial, app.metrics = pods.exec, pods.attach, pods.dial, usage
    app.node_name = cfg.name
    await nursery.start(pods.run)
    await nursery.start(usage.run)
    if not registered_first:
        await nursery.start(reporter.run)
    if cfg.cluster_cidr and cidr:
        from nodeagent import noderoutes  # pyroute2: only for nodes that route
        await nursery.start(noderoutes.run, objects, cfg.name, cidr)


async def _fence_pods(cfg: AgentConfig, cidr: str, api_url: str) -> None:
    """Pods reach this node's API only as the kubernetes Service, and its Raft and gossip
    ports not at all (netns/podguard.py)."""
    from netns import podguard
    from netns.libnft import NftError
    guard = podguard.Guard(cidr=cidr, bridge="cni0",
                           api_port=urlsplit(api_url).port or 443,
                           closed_ports=podguard.ports_of([cfg.raft_listen, cfg.gossip_listen]))
    try:
        await trio.to_thread.run_sync(podguard.apply, guard)
    except (NftError, OSError, ValueError) as exc:
        log.error("pods are NOT fenced off this node's agent ports: %s", exc)
        return
    log.info("pods fenced: API port %d only as the kubernetes Service, ports %s closed to %s",
             guard.api_port, ",".join(map(str, guard.closed_ports)) or "none", cidr)


async def _assigned_cidr(objects: ObjectStore, name: str) -> str:
    """The pod CIDR the coordinator gave this node's Node (waits for it)."""
    res = NODES
    assert res is not None
    logged = False
    while True:
        try:
            cidr = (objects.get(res, None, name).get("spec") or {}).get("podCIDR")
        except ApiError:
            cidr = None
        if cidr:
            log.info("pod CIDR %s (given by the coordinator)", cidr)
            return str(cidr)
        if not logged:
            log.info("waiting for the coordinator to give node %s a pod CIDR", name)
            logged = True
        await trio.sleep(0.1)


async def _pod_manager(cfg: AgentConfig, objects: ObjectStore, addresses: list[str],
                       rules_applied: RulesProgress | None, cidr: str,
                       contexts: Contexts | None, api_url: str) -> PodManager:
    """Connect to (or start) the launcher and build the pod manager around it."""
    launcher = await ensure_launcher(cfg.launcher_socket, os.path.join(cfg.data_dir, "containers"))
    known = (await launcher.call(Op.LIST)).get("containers") or []
    log.info("launcher connected socket=%s containers=%d running=%d exited=%d",
             cfg.launcher_socket, len(known), sum(1 for c in known if c["status"] == "running"),
             sum(1 for c in known if c["status"] == "exited"))
    net = {"cidr": cidr, "bridge": "cni0", "netns_prefix": f"nodeagent-{cfg.name}-",
           "ipam_dir": os.path.join(cfg.data_dir, "ipam")} if cidr else None
    return PodManager(objects, cfg.name, RuntimeClient(launcher, cfg.launcher_socket),
                      ImageStore(cfg.images_dir or os.path.join(cfg.data_dir, "images")),
                      os.path.join(cfg.data_dir, "kubelet"), net=net,
                      node_ip=addresses[0] if addresses else "127.0.0.1",
                      cgroup_parent=cfg.cgroup_parent, rules_applied=rules_applied,
                      secrets=_remote_secrets(objects.store, contexts),
                      tokens=_pod_tokens(objects.store, contexts, api_url))


def _remote_secrets(store: Any, contexts: Contexts | None) -> RemoteSecrets | None:
    """A node that is not a server asks a server for its pods' Secrets (its copy holds
    none: api/replica.py)."""
    if not isinstance(store, RemoteStore) or contexts is None:
        return None
    return RemoteSecrets(lambda: store.server, lambda: contexts.client)


def _pod_tokens(store: Any, contexts: Contexts | None, api_url: str) -> PodTokens | None:
    """Pods' ServiceAccount tokens, asked of this agent's own API on a server, of the
    server a copy follows otherwise (None with --insecure-http: no tokens)."""
    if contexts is None:
        return None
    remote = isinstance(store, RemoteStore)
    return PodTokens(lambda: store.server if remote else api_url, lambda: contexts.client)


def _reachable(url: str, addresses: list[str]) -> str:
    """The API URL others can use: a wildcard listen address becomes the node's own."""
    for wildcard in ("0.0.0.0", "[::]"):
        if f"//{wildcard}:" in url:
            return url.replace(wildcard, addresses[0] if addresses else "127.0.0.1")
    return url


def node_addresses(pod_cidr: str = "") -> list[str]:
    """This node's IPv4 addresses but loopback and the pod bridge's: where NodePorts
    answer, what the Node shows."""
    pods = ipaddress.ip_network(pod_cidr) if pod_cidr else None
    return sorted({a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                   if a.family == socket.AF_INET and not a.address.startswith("127.")
                   and not (pods and ipaddress.ip_address(a.address) in pods)})


async def _proxy(objects: ObjectStore, backend: str, addresses: list[str], applied: RulesProgress, *,
                 task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Service rules for this node's own addresses (NodePort answers on each)."""
    from netns.iptables import IptablesRules
    from netns.nft import NftRules
    from nodeagent.proxy import service as proxy
    rules = NftRules(addresses) if backend == "nft" else IptablesRules(addresses)
    log.info("proxy backend=%s node_addresses=%s", backend, ",".join(addresses))
    try:
        await proxy.run(objects, rules, applied=applied, task_status=task_status)
    finally:
        rules.close()


async def _watchdog(store: Store) -> None:
    """systemd's watchdog (WatchdogSec=): WATCHDOG=1 at half the interval while the event
    loop runs and the store answers, so a wedged agent is restarted."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return
    interval = int(usec) / 1e6 / 2
    while True:
        if store.ready.is_set():
            sd_notify("WATCHDOG=1")
        await trio.sleep(interval)


async def _signals(scope: trio.CancelScope, store: Store,
                   membership: Membership | None) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("signal=%s stopping", signal.Signals(signum).name)
            sd_notify("STOPPING=1")
            if isinstance(store, RaftStore):
                await _hand_over(store)
            if membership is not None:  # a leave, not a failure, for the others
                await membership.node.leave()
            scope.cancel()
            return


async def _hand_over(store: RaftStore, timeout_s: float = 3.0) -> None:
    """A leader that is stopping hands leadership to its most caught-up voter first
    (thesis §3.10), so the cluster does not wait out an election timeout."""
    node, raft = store.node, store.node.raft
    if raft is None or not node.is_leader:
        return
    peers = [(pr.match, peer) for peer, pr in raft.progress.items()
             if peer != raft.id and peer in raft.voters]
    if not peers:
        return
    target = max(peers)[1]
    log.info("raft: handing leadership to %d before stopping", target)
    node.transfer_leadership(target)
    with trio.move_on_after(timeout_s):
        while node.is_leader:
            await node.wait_changed()
