"""``nodeagent``: run the daemon, and its operators' commands (Raft members, gossip keys,
snapshots and restores) over the agent's operator socket."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import trio

from nodeagent import __version__
from nodeagent.errors import ConfigError
from nodeagent.gossip.config import PROFILES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nodeagent")
def main() -> None:
    """nodeagent: one per machine; stores objects and serves the Kubernetes-shaped API."""


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML file with settings (keys as the long option names, with _).")
@click.option("--name", help="Node name. Default: the host name. Env NODEAGENT_NAME.")
@click.option("--data-dir", help="Where the store keeps its log and snapshots. "
              "Default /var/lib/nodeagent. Env NODEAGENT_DATA_DIR.")
@click.option("--api-listen", help="HOST:PORT for the HTTP API. Default 127.0.0.1:6443. "
              "Env NODEAGENT_API_LISTEN.")
@click.option("--fsync/--no-fsync", default=None, help="fsync the log before acknowledging "
              "writes (default on; off loses acknowledged writes on power loss).")
@click.option("--snapshot-every", type=int, help="Log records between store snapshots "
              "(default 10000).")
@click.option("--history-revisions", type=int, help="Revisions of history kept for watch and "
              "paginated lists (default 100000).")
@click.option("--launcher-socket", help="Unix socket of the container launcher; the agent "
              "starts one there if none answers (default: no containers on this agent).")
@click.option("--proxy", type=click.Choice(["", "nft", "iptables"]), default=None,
              help="Program Service rules in this agent's network namespace: nft or iptables "
              "(default: none).")
@click.option("--request-timeout-s", type=int, help="Seconds a client gets to send a whole "
              "request; slower ones get 408 (default 30).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Default info.")
@click.option("--coordinator/--no-coordinator", default=None,
              help="Run the scheduler and controllers here (default: yes).")
@click.option("--reserved-cpu-m", type=int, help="Millicores kept from pods (default 100).")
@click.option("--reserved-memory-mib", type=int, help="MiB kept from pods (default 256).")
@click.option("--pod-cidr", help="This node's pod network, e.g. 10.244.1.0/24 (default: pods "
              "share the agent's network namespace).")
@click.option("--cluster-cidr", help="The cluster's pod network, e.g. 10.244.0.0/16: the "
              "coordinator gives each node a block, agents route the others' (default: none).")
@click.option("--node-cidr-mask", type=int, help="Bits of each node's block of "
              "--cluster-cidr (default 24).")
@click.option("--unreachable-toleration-s", type=int, help="Seconds before the pods of a "
              "node gossip declared failed are evicted and replaced (default 30).")
@click.option("--images-dir", help="The image store (default <data-dir>/images).")
@click.option("--cgroup-parent", help="Pods' cgroups go below this one (default nodeagent).")
@click.option("--raft-id", type=int, help="This server's Raft id (1, 2, ...); default 0: no "
              "Raft, the agent keeps its own store.")
@click.option("--raft-listen", help="HOST:PORT for Raft traffic between servers.")
@click.option("--raft-peers", help="The other servers: 2=HOST:PORT,3=HOST:PORT.")
@click.option("--raft-tick-ms", type=int, help="Raft's tick (default 100: elections after "
              "1-2 s without a leader).")
@click.option("--raft-join/--no-raft-join", default=None, help="Start as a server that is "
              "not a member yet, for 'nodeagent raft add-peer' on the leader to add.")
@click.option("--raft-bootstrap-expect", type=int, help="Form the first cluster once this "
              "many servers found each other through --raft-seeds (instead of --raft-peers).")
@click.option("--raft-seeds", help="With --raft-bootstrap-expect: other servers' API URLs, "
              "http://HOST:PORT,... (one is enough).")
@click.option("--node-labels", help="Labels for this node: key=value,key2=value2.")
@click.option("--gossip-listen", help="HOST:PORT for gossip (UDP and TCP), e.g. "
              "0.0.0.0:7946 (default: no gossip).")
@click.option("--gossip-advertise", help="HOST:PORT the others reach this agent's gossip at.")
@click.option("--gossip-join", help="Gossip addresses of agents in the cluster, HOST:PORT,... "
              "(one is enough; retried until one answers).")
@click.option("--gossip-profile", type=click.Choice(list(PROFILES)), default=None,
              help="Gossip timings (default lan).")
@click.option("--gossip-key-file", help="Encrypt gossip with the base64 AES key in this file "
              "('nodeagent keys generate > FILE'; keys never go on the command line).")
@click.option("--gossip-insecure/--no-gossip-insecure", default=None, help="Gossip without a "
              "key on an address other than loopback (anyone who reaches it can join).")
@click.option("--operator-socket", help="The operator socket (default "
              "<data-dir>/operator.sock).")
@click.option("--loop-warn-ms", type=int, help="Log every task step that holds the event loop "
              "longer than this many ms (default 0: off).")
@click.option("--servers", help="Not a server: the servers' API URLs, https://HOST:PORT,... "
              "(this agent copies the store from them and writes through them).")
@click.option("--join-token", help="Join the cluster with this token ('nodeagent token "
              "create' on a server); better --join-token-file or NODEAGENT_JOIN_TOKEN.")
@click.option("--join-token-file", help="A file holding the join token.")
@click.option("--join-url", help="A server's API URL to join through (default: the first of "
              "--servers or --raft-seeds).")
@click.option("--token-auth-file", help="Static bearer tokens for the API (kube-apiserver's "
              'CSV: token,user,uid,"group1,group2").')
@click.option("--insecure-http/--no-insecure-http", default=None, help="Serve the API as plain "
              "HTTP with no authentication: anyone who reaches it may do anything (default: "
              "HTTPS, every caller authenticated).")
def run(config_file: str | None, **flags: object) -> None:
    """Run the agent in the foreground until SIGTERM or SIGINT."""
    from nodeagent.agent import run_agent
    from nodeagent.config import load_config
    from nodeagent.logs import setup_logging

    try:
        cfg = load_config(config_file, dict(os.environ), flags)
    except ConfigError as exc:
        raise click.UsageError(f"config: {exc}") from None
    setup_logging(cfg.name, cfg.log_level)
    from nodeagent.join import JoinError
    try:
        os.makedirs(cfg.data_dir, exist_ok=True)
        trio.run(run_agent, cfg)
    except (ConfigError, JoinError) as exc:
        click.echo(f"nodeagent: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"nodeagent: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}",
                   err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


@main.group()
def raft() -> None:
    """The Raft cluster as one server sees it (agents run with --raft-id)."""


_SERVER = click.option("--socket", "server", envvar="NODEAGENT_SOCKET",
                       default="/var/lib/nodeagent/operator.sock", show_default=True,
                       help="The agent's operator socket: <data_dir>/operator.sock, root's "
                            "alone (env NODEAGENT_SOCKET).")


def _operator_request(method: str, socket_path: str, path: str, *, body: object = None,
                      timeout_s: float = 10, params: dict[str, str] | None = None) -> Any:
    """One call on an agent's operator socket (api/operator.py); ClickException for an
    agent that does not answer."""
    import httpx
    transport = httpx.HTTPTransport(uds=socket_path)
    try:
        with httpx.Client(transport=transport, base_url="http://localhost",
                          timeout=timeout_s) as client:
            return client.request(method, path, json=body, params=params)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"cannot reach the agent's operator socket {socket_path}: {exc} (is the agent "
            "running, and are you root? --socket or NODEAGENT_SOCKET names another)") from None


def _raft_call(method: str, server: str, path: str, body: object = None) -> dict:
    r = _operator_request(method, server, path, body=body)
    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code >= 400:
        raise click.ClickException(answer.get("message") or f"{server}: HTTP {r.status_code}")
    return answer


@raft.command("list-peers")
@_SERVER
def list_peers(server: str) -> None:
    """The members, their roles and (asked of the leader) how far each has the log."""
    st = _raft_call("GET", server, "/raft")
    click.echo(f"server {st['id']}: {st['role']}, term {st['term']}, leader {st['leader'] or '-'},"
               f" commit {st['commit']}, applied {st['applied']}")
    rows = [["ID", "ADDRESS", "VOTER", "LEADER", "MATCH", "STATE"]]
    for m in st["members"]:
        rows.append([str(m["id"]), m["address"] or "(self)", "yes" if m["voter"] else "learner",
                     "*" if m["id"] == st["leader"] else "", str(m.get("match", "-")),
                     m.get("state", "-")])
    _table(rows)


@raft.command("transfer-leader")
@click.argument("to", type=int)
@_SERVER
def transfer_leader(to: int, server: str) -> None:
    """Hand leadership to server TO (ask the leader)."""
    _raft_call("POST", server, f"/raft/transfer-leader?to={to}")
    click.echo(f"leadership moving to {to}")


@raft.command("add-peer")
@click.argument("ident", metavar="ID", type=int)
@click.argument("address", metavar="HOST:PORT")
@_SERVER
def add_peer(ident: int, address: str, server: str) -> None:
    """Add server ID (its Raft address) as a learner; the leader promotes it once it has
    caught up.  Start it first with --raft-join.  Ask the leader."""
    _raft_call("POST", server, "/raft/peers", {"id": ident, "address": address})
    click.echo(f"server {ident} joining as a learner")


@raft.command("remove-peer")
@click.argument("ident", metavar="ID", type=int)
@_SERVER
def remove_peer(ident: int, server: str) -> None:
    """Remove server ID from the cluster (a dead one, or one being retired).  Ask the leader."""
    _raft_call("DELETE", server, f"/raft/peers/{ident}")
    click.echo(f"server {ident} leaving")


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@main.command()
@_SERVER
def members(server: str) -> None:
    """The agents as this one's gossip sees them (serf members): alive, suspect, dead
    (failed) or left."""
    body = _raft_call("GET", server, "/gossip/members")
    rows = [["NAME", "ADDRESS", "STATUS", "ROLE", "API", "RAFT"]]
    for m in body["members"]:
        rows.append([m["name"], m["address"], m["status"], m["role"], m["api"] or "-",
                     m["raft"] or "-"])
    _table(rows)


@main.command()
@click.argument("name")
@click.argument("payload", default="")
@_SERVER
def event(name: str, payload: str, server: str) -> None:
    """Send a user event NAME (with PAYLOAD) to every agent over gossip (serf event);
    each agent logs it."""
    _raft_call("POST", server, "/gossip/events", {"name": name, "payload": payload})
    click.echo(f"event {name} sent")


@main.group()
def keys() -> None:
    """Gossip encryption keys."""


def _key_call(op: str, key: str, server: str) -> None:
    st = _raft_call("POST", server, "/gossip/keys", {"op": op, "key": key})
    click.echo(f"{op}: done here, sent to every member ({len(st['keys'])} keys here)")


@keys.command("list")
@_SERVER
def keys_list(server: str) -> None:
    """The fingerprints of this agent's keys; the primary (used to send) first.  The keys
    themselves never leave the agent."""
    st = _raft_call("GET", server, "/gossip/keys")
    if not st["encrypted"]:
        click.echo("gossip is not encrypted on this agent")
    for key in st["keys"]:
        click.echo(f"{key}{'  (primary)' if key == st['primary'] else ''}")


def _read_key(path: str) -> str:
    from nodeagent.gossip.keyring import KeyringError, read_key_file
    try:
        return read_key_file(path)
    except KeyringError as exc:
        raise click.BadParameter(str(exc), param_hint="KEY_FILE") from None


@keys.command("install")
@click.argument("key_file", type=click.Path(dir_okay=False))
@_SERVER
def keys_install(key_file: str, server: str) -> None:
    """Add the key in KEY_FILE to every member's keyring (they read it from now on).  Keys
    are read from files, never from the command line (argv is world-readable)."""
    _key_call("install", _read_key(key_file), server)


def _key_command(op: str, doc: str) -> None:
    @keys.command(op, help=doc)
    @click.argument("fingerprint")
    @_SERVER
    def command(fingerprint: str, server: str) -> None:
        _key_call(op, fingerprint, server)


_key_command("use", "Send with the key of FINGERPRINT ('keys list') from now on, everywhere "
             "(install it everywhere first).")
_key_command("remove", "Remove the key of FINGERPRINT from every member's keyring (use another "
             "one first).")


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random key (32 bytes, base64) for gossip_key_file: write it to a file
    of mode 0600 ('nodeagent keys generate > gossip.key')."""
    import base64
    click.echo(base64.b64encode(os.urandom(32)).decode())


@main.group()
def snapshot() -> None:
    """Backups of the store (etcdctl snapshot save, etcdutl snapshot restore)."""


@snapshot.command("save")
@click.argument("file", type=click.Path(dir_okay=False))
@_SERVER
def snapshot_save(file: str, server: str) -> None:
    """Write the store as of now (every acknowledged write) to FILE."""
    from pathlib import Path

    from nodeagent.fsutil import write_atomic
    from nodeagent.store.backup import BackupError, decode
    r = _operator_request("GET", server, "/snapshot", timeout_s=120)
    if r.status_code != 200:
        raise click.ClickException(f"{server}: HTTP {r.status_code}: {r.text[:200]}")
    try:
        backup = decode(r.content)  # what is written is what restore will take
    except BackupError as exc:
        raise click.ClickException(f"{server} sent a bad snapshot: {exc}") from None
    write_atomic(Path(file), r.content)
    click.echo(f"Snapshot saved at {file}: revision {backup.revision}, {backup.keys} keys, "
               f"{len(r.content)} bytes, sha256 {backup.sha256[:16]}")


@snapshot.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data-dir", required=True, help="The new data directory (must not exist or "
              "be empty); start the agent on it.")
@click.option("--raft-id", type=int, default=0, help="Restore for this Raft server (its "
              "--raft-id); with --raft-voters.")
@click.option("--raft-voters", default="", help="Every server of the new cluster: 1,2,3 "
              "(restore the same file on each, start them with the same --raft-peers).")
def snapshot_restore(file: str, data_dir: str, raft_id: int, raft_voters: str) -> None:
    """Make a new data directory from a snapshot FILE (offline)."""
    from pathlib import Path

    from nodeagent.store.backup import BackupError, restore
    try:
        voters = tuple(int(v) for v in raft_voters.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{raft_voters!r} is not a list of ids like 1,2,3",
                                 param_hint="--raft-voters") from None
    if raft_id and not voters:
        raise click.BadParameter("--raft-id needs --raft-voters", param_hint="--raft-voters")
    try:
        backup = restore(Path(file).read_bytes(), data_dir, raft_id=raft_id, voters=voters)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Restored revision {backup.revision} ({backup.keys} keys) into {data_dir}"
               + (f" for Raft server {raft_id} of {list(voters)}" if raft_id else ""))


_DATA_DIR = click.option("--data-dir", envvar="NODEAGENT_DATA_DIR", default="/var/lib/nodeagent",
                         show_default=True, help="The agent's data directory (env "
                         "NODEAGENT_DATA_DIR).")


@main.group()
def token() -> None:
    """Join tokens: how a new agent gets its certificates ('nodeagent run --join-token')."""


@token.command("create")
@click.option("--role", type=click.Choice(["node", "server"]), default="node", show_default=True,
              help="node: a node's certificates; server: also the CA's key, for a new Raft "
              "server.")
@click.option("--ttl", default="24h", show_default=True, help="How long it works: 30m, 24h, 7d.")
@click.option("--description", default="", help="What it is for (shown by 'token list').")
@_SERVER
def token_create(role: str, ttl: str, description: str, server: str) -> None:
    """Print a new join token (it pins this cluster's CA)."""
    answer = _raft_call("POST", server, "/tokens", {"role": role, "ttlSeconds": _seconds(ttl),
                                                    "description": description})
    click.echo(answer["token"])


def _seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise click.BadParameter(f"{text!r} is not a duration like 30m, 24h or 7d",
                                 param_hint="--ttl")
    return int(text[:-1]) * units[text[-1]]


@token.command("list")
@_SERVER
def token_list(server: str) -> None:
    """The join tokens (never their secrets)."""
    rows = [["ID", "ROLE", "EXPIRES", "DESCRIPTION"]]
    for t in _raft_call("GET", server, "/tokens")["tokens"]:
        rows.append([t["id"], t["role"], t["expires"], t["description"]])
    _table(rows)


@token.command("revoke")
@click.argument("ident", metavar="ID")
@_SERVER
def token_revoke(ident: str, server: str) -> None:
    """Revoke join token ID: it joins no one from now on."""
    _raft_call("DELETE", server, f"/tokens/{ident}")
    click.echo(f"token {ident} revoked")


@main.group()
def secrets() -> None:
    """Secrets at rest: encrypted in the store with keys outside it (pki/encryption-config.yaml)."""


@secrets.command("rotate-key")
@_SERVER
def secrets_rotate_key(server: str) -> None:
    """A new key for Secrets on every server, then every Secret encrypted again with it
    (the old keys stay, to read older backups).  Run it on a server."""
    r = _operator_request("POST", server, "/secrets/rotate-key", timeout_s=300)
    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code >= 400:
        raise click.ClickException(answer.get("message") or f"{server}: HTTP {r.status_code}")
    click.echo(f"primary key now {answer['primary']} on {', '.join(answer['servers'])}; "
               f"{answer['rewritten']} Secrets encrypted again (keys: "
               f"{', '.join(answer['keys'])})")


@main.command()
@_DATA_DIR
def kubeconfig(data_dir: str) -> None:
    """Print the admin kubeconfig (<data-dir>/admin.kubeconfig, a server's): for kubectl
    and nodectl, as KUBECONFIG or ~/.kube/config."""
    from nodeagent.clusterpki import AgentPki
    path = AgentPki(data_dir).kubeconfig
    try:
        click.echo(path.read_text(), nl=False)
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror} (a server writes it when it "
                                   "starts; are you root?)") from None


@main.group()
def certs() -> None:
    """The agent's certificates (<data-dir>/pki)."""


@certs.command("check")
@_DATA_DIR
def certs_check(data_dir: str) -> None:
    """Every certificate with its expiry (kubeadm certs check-expiration)."""
    from nodeagent.clusterpki import AgentPki
    agent_pki = AgentPki(data_dir)
    infos = agent_pki.certificates()
    if not infos:
        raise click.ClickException(f"no certificates in {agent_pki.dir} (are you root?)")
    rows = [["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "RENEW", "SUBJECT"]]
    for c in infos:
        days = c.left.days
        rows.append([c.name, c.not_after.strftime("%b %d, %Y %H:%M UTC"),
                     f"{days}d" if days >= 0 else "EXPIRED", "due" if c.due else "no",
                     c.subject])
    _table(rows)


@certs.command("rotate-ca")
@click.option("--finish", is_flag=True, help="End the rotation: the old CA trusted nowhere "
              "any more (once every node has certificates of the new one and the new admin "
              "kubeconfig is handed out).")
@click.option("--timeout", "timeout_s", type=click.IntRange(1, 3600), default=300,
              show_default=True, help="How long to wait for the nodes at each step (seconds).")
@_SERVER
def certs_rotate_ca(finish: bool, timeout_s: int, server: str) -> None:
    """Replace the cluster's CA, with both trusted in between: every agent trusts the new
    CA, then it signs (every agent gets new certificates), then --finish.  Run it again
    to go on from where it stopped.  Run it on a server."""
    r = _operator_request("POST", server, "/certs/rotate-ca",
                          params={"finish": "true" if finish else "false",
                                  "timeoutSeconds": str(timeout_s)},
                          timeout_s=2 * timeout_s + 60)
    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code >= 400:
        raise click.ClickException(answer.get("message") or f"{server}: HTTP {r.status_code}")
    click.echo(f"phase: {answer['phase']}; the CA that signs: {answer['ca']}")
    if answer.get("servers"):
        click.echo(f"servers: {', '.join(answer['servers'])}")
    if answer.get("message"):
        click.echo(answer["message"])
    if answer.get("waitingFor"):
        raise SystemExit(2)


def _add_runtime() -> None:
    """'nodeagent runtime ...' is the runtime's own CLI (also 'python -m runtime')."""
    from runtime.cli import main as runtime_main
    main.add_command(runtime_main, name="runtime")


_add_runtime()

if __name__ == "__main__":
    main()
