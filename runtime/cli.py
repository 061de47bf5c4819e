"""``python -m runtime run -b BUNDLE ID``: run an OCI bundle in the foreground, like crun run.

The exit code is the container's (128 + signal when it was killed); a container
that cannot start prints ``reason: message`` and exits with 127/128 as crun does.
More verbs (create, start, state, kill, delete, exec, list, logs, pull, images)
come with the runtime's state directory and launcher.
"""

from __future__ import annotations

import sys

import click

from runtime.launch import StartFailed, start, wait
from runtime.spec import SpecError, load_bundle


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run containers from OCI bundles."""


@main.command()
@click.option("-b", "--bundle", default=".", show_default=True,
              help="Directory with config.json and the rootfs.")
@click.argument("container_id")
def run(bundle: str, container_id: str) -> None:
    """Create and start a container, wait for it, exit with its exit code."""
    try:
        spec = load_bundle(bundle)
        started = start(spec)
    except SpecError as exc:
        click.echo(f"{container_id}: invalid bundle: {exc}", err=True)
        sys.exit(1)
    except StartFailed as exc:
        click.echo(f"{container_id}: {exc.reason}: {exc}", err=True)
        sys.exit(exc.exit_code or 128)
    sys.exit(wait(started))


if __name__ == "__main__":
    main()
