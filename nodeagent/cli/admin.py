"""``nodeagent``: run the daemon (and, in later issues, admin commands)."""

from __future__ import annotations

import os
import sys

import click
import trio

from nodeagent import __version__
from nodeagent.errors import ConfigError


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
@click.option("--images-dir", help="The image store (default <data-dir>/images).")
@click.option("--cgroup-parent", help="Pods' cgroups go below this one (default nodeagent).")
@click.option("--raft-id", type=int, help="This server's Raft id (1, 2, ...); default 0: no "
              "Raft, the agent keeps its own store.")
@click.option("--raft-listen", help="HOST:PORT for Raft traffic between servers.")
@click.option("--raft-peers", help="The other servers: 2=HOST:PORT,3=HOST:PORT.")
@click.option("--raft-tick-ms", type=int, help="Raft's tick (default 100: elections after "
              "1-2 s without a leader).")
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
    try:
        os.makedirs(cfg.data_dir, exist_ok=True)
        trio.run(run_agent, cfg)
    except OSError as exc:
        click.echo(f"nodeagent: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}",
                   err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


def _add_runtime() -> None:
    """'nodeagent runtime ...' is the runtime's own CLI (also 'python -m runtime')."""
    from runtime.cli import main as runtime_main
    main.add_command(runtime_main, name="runtime")


_add_runtime()

if __name__ == "__main__":
    main()
