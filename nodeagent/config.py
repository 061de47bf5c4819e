"""AgentConfig: defaults, then a TOML file, then NODEAGENT_* environment, then flags.

Each later source overrides the earlier ones field by field.  Validation
happens once, at construction, and names the field that is wrong.

Example file::

    name = "node-1"
    data_dir = "/var/lib/nodeagent"
    api_listen = "127.0.0.1:6443"
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodeagent.errors import ConfigError
from nodeagent.gossip import config as gossip_profiles
from nodeagent.hostport import parse_host_port

__all__ = ["AgentConfig", "load_config"]


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    name: str = dataclasses.field(default_factory=socket.gethostname)
    """Node name: how this agent's Node object and log lines are named."""

    data_dir: str = "/var/lib/nodeagent"
    """Directory for the store's log and snapshots.  Must be on a disk that honours fsync."""

    api_listen: str = "127.0.0.1:6443"
    """HOST:PORT the API listens on: HTTPS, with the certificate of the cluster's CA
    (<data_dir>/pki), every caller authenticated and authorized."""

    insecure_http: bool = False
    """Serve the API as plain HTTP with no authentication: anyone who reaches the port
    may do anything.  For a throwaway agent on loopback only; no documented deployment
    uses it."""

    join_token: str = ""
    """A token from 'nodeagent token create' on a server (NA1-...): how a new agent gets
    its certificates and the gossip key.  Better given as join_token_file or in the
    environment than on the command line (argv is world-readable in /proc)."""

    join_token_file: str = ""
    """A file holding join_token."""

    join_url: str = ""
    """The API URL of a server to join through.  Default: the first of servers (a node)
    or raft_seeds (a server); an agent that finds the servers by gossip needs it."""

    token_auth_file: str = ""
    """Static bearer tokens for the API, as kube-apiserver's --token-auth-file: CSV lines
    token,user,uid,"group1,group2"."""

    fsync: bool = True
    """fsync the log before acknowledging a write.  Off only for throwaway test stores:
    without it a power loss can lose acknowledged writes."""

    snapshot_every: int = 10_000
    """Log records between snapshots.  Lower: faster start-up, more snapshot writes."""

    history_revisions: int = 100_000
    """Revisions of history kept for watches and paginated lists.  A client further behind
    than this gets 410 Gone and relists.  Memory grows with it."""

    launcher_socket: str = ""
    """Unix socket of the container launcher.  When set, the agent starts a launcher there
    if none answers (it keeps the node's containers and outlives the agent); needs root."""

    proxy: str = ""
    """Service rules on this node: "nft" (nftables, the default choice), "iptables"
    (kube-proxy's iptables mode) or "" (none).  They are programmed in the agent's own
    network namespace, so run the agent in the node's namespace (the lab does)."""

    request_timeout_s: int = 30
    """Seconds a client gets to send a whole request (headers and body).  Slower or
    half-sent requests get 408 or are dropped, so they cannot pin connections."""

    log_level: str = "info"
    """debug, info, warning or error."""

    coordinator: bool = True
    """Run the scheduler and the controllers in this agent.  One agent alone must; with
    Raft (servers) only the leader does, whatever this says."""

    reserved_cpu_m: int = 100
    """Millicores of the node kept from pods (kubelet's --system-reserved): allocatable
    is capacity minus this."""

    reserved_memory_mib: int = 256
    """MiB of memory kept from pods, as reserved_cpu_m."""

    pod_cidr: str = ""
    """This node's pod network (e.g. 10.244.1.0/24): each pod gets a network namespace
    and an address from it on bridge cni0.  Empty: pods share the agent's network
    namespace and address (as hostNetwork pods do).  Pods run only with launcher_socket."""

    cluster_cidr: str = ""
    """The whole cluster's pod network (e.g. 10.244.0.0/16; every agent the same).  The
    coordinator gives each Node a block of it (spec.podCIDR, node_cidr_mask bits) unless
    it has one; an agent without pod_cidr waits for its block and makes its pod network
    from it, and every agent routes the other nodes' blocks via their addresses (nodes
    on one layer-2 network).  Empty: no CIDRs are handed out and no routes are made."""

    node_cidr_mask: int = 24
    """Size of each node's block of cluster_cidr (24: 254 pods per node)."""

    unreachable_toleration_s: int = 30
    """Seconds a pod stays bound to a node gossip declared failed before it is evicted
    and replaced elsewhere, unless the pod tolerates node.kubernetes.io/unreachable
    itself (Kubernetes' default-unreachable-toleration-seconds, 300 there).  Its
    endpoints are dropped at once either way."""

    images_dir: str = ""
    """The image store (OCI layouts, unpacked layers).  Default: <data_dir>/images."""

    cgroup_parent: str = "nodeagent"
    """Pods' cgroups go below this one (kubelet's kubepods), by QoS class."""

    raft_id: int = 0
    """This agent's id among the Raft servers (1, 2, ...).  0: no Raft -- the agent keeps
    its own store (one-node clusters).  With an id the store is replicated and only the
    Raft leader runs the coordinator."""

    raft_listen: str = ""
    """HOST:PORT for Raft traffic between servers (plain TCP: a private network only)."""

    raft_peers: str = ""
    """The other servers at bootstrap: "2=10.0.0.2:7000,3=10.0.0.3:7000"."""

    raft_join: bool = False
    """Start as a server that is not yet a member (raft_peers are the current members):
    it votes and campaigns only after 'nodeagent raft add-peer' on the leader made it a
    learner and the leader promoted it."""

    raft_tick_ms: int = 100
    """Raft's clock: heartbeats every tick, elections after 10 to 20 ticks without a
    leader (so 100 ms gives 1-2 s failover, as etcd's defaults).  Lower fails over faster
    and costs more idle traffic."""

    raft_bootstrap_expect: int = 0
    """Form the first cluster without a static list (Consul's and Nomad's
    bootstrap_expect): a new server finds the others through raft_seeds and, once it
    knows this many servers none of which is in a cluster, they all take that set as the
    first members.  One that finds a cluster asks to be added instead.  Start exactly
    this many servers with it; instead of raft_peers."""

    raft_seeds: str = ""
    """With raft_bootstrap_expect, or a server's join_token: API URLs of other servers to
    find the rest through ("https://10.0.0.1:6443,..."); one is enough, each server passes
    on whom it heard of, and a server that others name needs none."""

    node_labels: str = ""
    """Labels for this node, "key=value,key2=value2" (kubelet's --node-labels): on its
    Node object, and in its gossip metadata."""

    gossip_listen: str = ""
    """HOST:PORT for gossip with the other agents (UDP and TCP on the same port, e.g.
    0.0.0.0:7946).  Empty: no gossip.  Gossip is how agents find the servers and how
    a node's failure is noticed."""

    gossip_advertise: str = ""
    """HOST:PORT the other agents reach this one at, when gossip_listen's host is not
    it (0.0.0.0, NAT).  Default: gossip_listen, or the node's first address."""

    gossip_join: str = ""
    """Gossip addresses of agents already in the cluster (HOST:PORT,...); one is
    enough.  Tried until one answers (serf's retry_join)."""

    gossip_profile: str = "lan"
    """Timings: lan (a data centre, memberlist's defaults), wan, local (loopback), or lab
    (a few nodes on one bridge, failures found within 5 s)."""

    gossip_key: str = ""
    """Encrypt gossip: a base64 AES key (16, 24 or 32 bytes, 'nodeagent keys generate'),
    in agent.toml or the environment, never on the command line (argv is world-readable
    in /proc); gossip_key_file is the better place.  Every agent needs it; plaintext is
    refused.  Rotated later with 'nodeagent keys'; the keyring is kept in
    <data_dir>/gossip-keyring.json."""

    gossip_key_file: str = ""
    """A file holding gossip_key (mode 0600, root's): how the key reaches the agent."""

    gossip_insecure: bool = False
    """Gossip without a key on an address other than loopback.  Without a key anyone who
    can send the agent a UDP packet can add members to its cluster, so the agent refuses
    to start that way unless this says so."""

    loop_warn_ms: int = 0
    """Log every task step that holds the event loop longer than this (loopwatch.py); 0:
    off.  A diagnosis aid: the fuzz tier runs agents with 50, DESIGN's bound."""

    operator_socket: str = ""
    """Unix socket (mode 0600) for operators' calls that change the cluster or read all
    of it: Raft membership and leadership, snapshots, gossip keys and events ('nodeagent
    raft|snapshot|keys|event').  Default: <data_dir>/operator.sock."""

    servers: str = ""
    """An agent that is not a Raft server: the servers' API URLs, comma-separated
    ("https://10.0.0.1:6443,https://10.0.0.2:6443").  The agent keeps a copy of the store
    fed by one of them and writes through it; the servers' leader runs the coordinator."""

    def server_urls(self) -> list[str]:
        """servers parsed (validated at construction)."""
        return _urls("servers", self.servers)

    def operator_socket_path(self) -> str:
        return self.operator_socket or os.path.join(self.data_dir, "operator.sock")

    def raft_seed_urls(self) -> list[str]:
        """raft_seeds parsed (validated at construction)."""
        return _urls("raft_seeds", self.raft_seeds)

    def labels(self) -> dict[str, str]:
        """node_labels parsed (validated at construction)."""
        from nodeagent.objects.validation import label_key_errors, label_value_errors
        out = {}
        for item in (x.strip() for x in self.node_labels.split(",")):
            if not item:
                continue
            key, eq, value = item.partition("=")
            errors = label_key_errors(key) + label_value_errors(value) if eq else ["no '='"]
            if errors:
                raise ConfigError("node_labels", f"{item!r}: {'; '.join(errors)}")
            out[key] = value
        return out

    def gossip_seeds(self) -> list[tuple[str, int]]:
        """gossip_join parsed (validated at construction)."""
        seeds = []
        for item in (x.strip() for x in self.gossip_join.split(",")):
            if item:
                address = parse_host_port(item)
                if address is None or address[1] == 0:
                    raise ConfigError("gossip_join", f"{item!r} is not HOST:PORT")
                seeds.append(address)
        return seeds

    def raft_peer_addresses(self) -> dict[int, tuple[str, int]]:
        """raft_peers parsed (validated at construction)."""
        return _raft_peers(self.raft_peers, self.raft_id)

    def join_urls(self) -> list[str]:
        """Where to join through (validated at construction)."""
        return _urls("join_url", self.join_url) or self.server_urls() or self.raft_seed_urls()

    def raft_joins(self) -> bool:
        """A server that joins a running cluster with a token: it finds the members
        through raft_seeds and is added by the join, never bootstrapping one itself."""
        return bool(self.raft_id and self.join_token)

    def raft_listen_address(self) -> tuple[str, int]:
        """raft_listen parsed (validated at construction)."""
        address = parse_host_port(self.raft_listen)
        assert address is not None
        return address

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("name", "must not be empty")
        if parse_host_port(self.api_listen) is None:
            raise ConfigError("api_listen", f"{self.api_listen!r} is not HOST:PORT")
        if self.snapshot_every < 1:
            raise ConfigError("snapshot_every", "must be at least 1")
        if self.history_revisions < 1:
            raise ConfigError("history_revisions", "must be at least 1")
        if self.proxy not in ("", "nft", "iptables"):
            raise ConfigError("proxy", f"{self.proxy!r} is not one of nft, iptables or empty")
        if self.request_timeout_s < 1:
            raise ConfigError("request_timeout_s", "must be at least 1")
        if self.reserved_cpu_m < 0 or self.reserved_memory_mib < 0:
            raise ConfigError("reserved_cpu_m" if self.reserved_cpu_m < 0 else
                              "reserved_memory_mib", "must not be negative")
        if self.pod_cidr:
            try:
                net = ipaddress.ip_network(self.pod_cidr)
            except ValueError:
                raise ConfigError("pod_cidr", f"{self.pod_cidr!r} is not a network") from None
            if net.num_addresses < 4:
                raise ConfigError("pod_cidr", f"{self.pod_cidr} is too small")
        if self.cluster_cidr:
            try:
                cluster = ipaddress.ip_network(self.cluster_cidr)
            except ValueError:
                raise ConfigError("cluster_cidr", f"{self.cluster_cidr!r} is not a network") from None
            if not cluster.prefixlen < self.node_cidr_mask <= cluster.max_prefixlen - 2:
                raise ConfigError("node_cidr_mask", f"{self.node_cidr_mask} does not cut "
                                  f"{self.cluster_cidr} into blocks of at least 4 addresses")
        if self.unreachable_toleration_s < 0:
            raise ConfigError("unreachable_toleration_s", "must not be negative")
        if not self.cgroup_parent or self.cgroup_parent.startswith("/") or ".." in self.cgroup_parent:
            raise ConfigError("cgroup_parent", f"{self.cgroup_parent!r} must be a relative path")
        if self.raft_id < 0:
            raise ConfigError("raft_id", "must not be negative")
        if self.raft_id:
            address = parse_host_port(self.raft_listen)
            if address is None or address[1] == 0:
                raise ConfigError("raft_listen", f"{self.raft_listen!r} is not HOST:PORT")
            _raft_peers(self.raft_peers, self.raft_id)
            if self.raft_tick_ms < 1:
                raise ConfigError("raft_tick_ms", "must be at least 1")
        if self.servers and self.raft_id:
            raise ConfigError("servers", "a Raft server (raft_id) keeps the store itself; "
                              "servers is for agents that are not servers")
        if self.join_token_file and not self.join_token:
            try:
                with open(self.join_token_file) as f:
                    object.__setattr__(self, "join_token", f.read().strip())
            except OSError as exc:
                raise ConfigError("join_token_file", f"cannot read {self.join_token_file}: "
                                  f"{exc.strerror}") from None
        if self.join_token:
            from nodeagent.join import JoinError, parse_join_token
            try:
                parse_join_token(self.join_token)
            except JoinError as exc:
                raise ConfigError("join_token", str(exc)) from None
            if not (self.servers or self.raft_seeds or self.join_url):
                raise ConfigError("join_token", "a joining agent needs a server to join "
                                  "through: join_url, servers (a node) or raft_seeds (a "
                                  "server)")
        if self.join_token and self.insecure_http:
            raise ConfigError("insecure_http", "an agent that joins with a token speaks TLS")
        self.server_urls()
        self.raft_seed_urls()
        if not self.insecure_http:
            for name, urls in (("servers", self.server_urls()),
                               ("raft_seeds", self.raft_seed_urls()),
                               ("join_url", _urls("join_url", self.join_url))):
                for url in urls:
                    if not url.startswith("https://"):
                        raise ConfigError(name, f"{url!r}: the agents' APIs speak HTTPS "
                                          "(https://...)")
        if self.raft_bootstrap_expect < 0:
            raise ConfigError("raft_bootstrap_expect", "must not be negative")
        if self.raft_bootstrap_expect:
            if not self.raft_id:
                raise ConfigError("raft_bootstrap_expect", "needs raft_id (servers only)")
            if self.raft_peers or self.raft_join:
                raise ConfigError("raft_bootstrap_expect", "finds the servers itself: leave "
                                  "raft_peers and raft_join out")
        if self.gossip_listen and parse_host_port(self.gossip_listen) is None:
            raise ConfigError("gossip_listen", f"{self.gossip_listen!r} is not HOST:PORT")
        if self.gossip_advertise and parse_host_port(self.gossip_advertise) is None:
            raise ConfigError("gossip_advertise", f"{self.gossip_advertise!r} is not HOST:PORT")
        self.gossip_seeds()
        if len(self.node_labels) > 256:
            raise ConfigError("node_labels", "over 256 characters: they ride in gossip "
                              "metadata, which is capped at 512 bytes")
        self.labels()
        if self.gossip_profile not in gossip_profiles.PROFILES:
            raise ConfigError("gossip_profile", f"{self.gossip_profile!r} is not one of "
                              f"{', '.join(gossip_profiles.PROFILES)}")
        from nodeagent.gossip.keyring import KEYRING_FILE, KeyringError, decode_key, read_key_file
        if self.gossip_key_file and not self.gossip_key:
            try:
                object.__setattr__(self, "gossip_key", read_key_file(self.gossip_key_file))
            except KeyringError as exc:
                raise ConfigError("gossip_key_file", str(exc)) from None
        if self.gossip_key:
            try:
                decode_key(self.gossip_key)
            except KeyringError as exc:
                raise ConfigError("gossip_key", str(exc)) from None
        if (self.gossip_join or self.gossip_key) and not self.gossip_listen:
            raise ConfigError("gossip_listen", "gossip_join and gossip_key need gossip_listen")
        if self.gossip_listen and not self.gossip_key and not self.gossip_insecure \
                and not os.path.exists(os.path.join(self.data_dir, KEYRING_FILE)) \
                and not self.join_token and self.insecure_http:
            host = self.gossip_listen.rpartition(":")[0].strip("[]")
            if host not in ("localhost", "::1") and not host.startswith("127."):
                raise ConfigError("gossip_listen", f"gossip on {host} without a key would take "
                                  "anyone's packets: give gossip_key_file ('nodeagent keys "
                                  "generate'), or gossip_insecure = true to accept that")
        if len(os.fsencode(self.operator_socket_path())) > 107:
            raise ConfigError("operator_socket", f"{self.operator_socket_path()!r} is longer than "
                              "a unix socket's path may be (107 bytes): set operator_socket")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError("log_level", f"{self.log_level!r} is not one of debug, info, "
                              "warning, error")


def _urls(name: str, text: str) -> list[str]:
    urls = [url.strip().rstrip("/") for url in text.split(",") if url.strip()]
    for url in urls:
        scheme, _, rest = url.partition("://")
        if scheme not in ("http", "https") or parse_host_port(rest) is None:
            raise ConfigError(name, f"{url!r} is not https://HOST:PORT")
    return urls


def _raft_peers(text: str, self_id: int) -> dict[int, tuple[str, int]]:
    """"2=HOST:PORT,3=HOST:PORT" as {id: address}; ConfigError naming the bad item."""
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        ident, eq, address = item.partition("=")
        parsed = parse_host_port(address)
        if not eq or not ident.isdigit() or int(ident) in (0, self_id) or parsed is None:
            raise ConfigError("raft_peers", f"{item!r} is not ID=HOST:PORT with an id other "
                              f"than {self_id}")
        out[int(ident)] = parsed
    return out


_FIELDS = {f.name: f for f in dataclasses.fields(AgentConfig)}


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELDS[name].type
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"{value!r} is not a boolean")
    if kind == "int":
        if isinstance(value, bool):
            raise ConfigError(name, f"{value!r} is not an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(name, f"{value!r} is not an integer") from None
    if not isinstance(value, str):
        raise ConfigError(name, f"{value!r} is not a string")
    return value


def load_config(file: str | None = None, env: Mapping[str, str] | None = None,
                flags: dict[str, Any] | None = None) -> AgentConfig:
    """Merge the sources.  Raises ConfigError naming the field (or file) at fault."""
    values: dict[str, Any] = {}
    if file:
        try:
            data = tomllib.loads(Path(file).read_text())
        except OSError as exc:
            raise ConfigError("config", f"cannot read {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{file} is not valid TOML: {exc}") from None
        for k, v in data.items():
            key = k.replace("-", "_")
            if key not in _FIELDS:
                raise ConfigError(k, f"unknown setting in {file}")
            values[key] = _coerce(key, v)
    environ = os.environ if env is None else env
    for key in _FIELDS:
        raw = environ.get("NODEAGENT_" + key.upper())
        if raw is not None:
            values[key] = _coerce(key, raw)
    for k, v in (flags or {}).items():
        if v is not None:
            values[k] = _coerce(k, v)
    return AgentConfig(**values)
