"""``python -m runtime``: the runtime's command line, like crun's and crictl's.

``run -b BUNDLE ID`` runs an OCI bundle in the foreground, like crun run: the exit
code is the container's (128 + signal when it was killed); a container that cannot
start prints ``reason: message`` and exits with 127/128 as crun does.  ``launcher``
runs the launcher; create, start, state, kill, delete, exec, list and logs talk to it;
pull, import and images work on the image store.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from runtime.launch import StartFailed, start, wait
from runtime.protocol import Op
from runtime.spec import SpecError, bundle_cgroup, load_bundle

if TYPE_CHECKING:
    from runtime.launcher_loop import ExtraOp


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
        spec = load_bundle(bundle, container_id)
        started = start(spec)
    except SpecError as exc:
        click.echo(f"{container_id}: invalid bundle: {exc}", err=True)
        sys.exit(1)
    except StartFailed as exc:
        click.echo(f"{container_id}: {exc.reason}: {exc}", err=True)
        sys.exit(exc.exit_code or 128)
    code = wait(started)
    if spec.cgroup_path == bundle_cgroup(container_id):  # ours: it goes with the container
        import contextlib

        from runtime.cgroups import detect
        with contextlib.suppress(OSError):
            detect().delete(spec.cgroup_path)
    sys.exit(code)


if __name__ == "__main__":
    main()


DEFAULT_SOCKET = "/run/nodeagent/launcher.sock"
DEFAULT_STATE = "/run/nodeagent/containers"


@main.command()
@click.option("--state-dir", default=DEFAULT_STATE, show_default=True,
              help="Where each container's state.json and log live.")
@click.option("--socket", "socket_path", default=DEFAULT_SOCKET, show_default=True,
              help="Unix socket the launcher listens on.")
def launcher(state_dir: str, socket_path: str) -> None:
    """Run the launcher in the foreground: it starts, keeps and logs containers."""
    import logging

    from runtime.launcher import Launcher
    logging.basicConfig(level=logging.INFO, format="ts=%(asctime)s level=%(levelname)s "
                        "logger=%(name)s msg=%(message)r")
    Launcher(state_dir, socket_path, extra_ops=_sandbox_ops()).serve()


def _sandbox_ops() -> dict[Op, ExtraOp]:
    """The pods' sandbox ops (netns/launcher_ops.py), handed to the launcher and loaded at
    the first one: netns brings pyroute2, which nearly doubles the launcher's memory, and
    every container the launcher starts is a fork of it (30 at once took 10-15% longer
    with it loaded up front), while a launcher that only runs containers never needs it."""
    def lazy(op: Op) -> ExtraOp:
        def call(req: dict[str, Any]) -> dict[str, Any]:
            from netns.launcher_ops import SANDBOX_OPS
            return SANDBOX_OPS[op](req)
        return call
    return {op: lazy(op) for op in Op if op.is_sandbox}


def _client(socket_path: str):
    from runtime.client import LauncherClient
    try:
        return LauncherClient(socket_path)
    except OSError as exc:
        click.echo(f"cannot reach the launcher at {socket_path}: {exc.strerror}", err=True)
        sys.exit(1)


def _call(socket_path: str, op: str, **args: object) -> dict:
    from runtime.protocol import LauncherError
    with _client(socket_path) as cl:
        try:
            return cl.call(op, **args)
        except LauncherError as exc:
            click.echo(f"{exc.reason}: {exc}", err=True)
            sys.exit(1)


socket_option = click.option("--socket", "socket_path", default=DEFAULT_SOCKET, show_default=True,
                             help="The launcher's socket.")


@main.command("list")
@socket_option
def list_(socket_path: str) -> None:
    """Containers the launcher knows, like crictl ps -a."""
    rows = [["CONTAINER", "STATUS", "PID", "EXIT", "REASON", "STARTED"]]
    for st in _call(socket_path, "list")["containers"]:
        rows.append([st["id"], st["status"], str(st["pid"] or ""),
                     "" if st["exit_code"] is None else str(st["exit_code"]), st["reason"],
                     st["started_at"][:19]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@main.command()
@click.argument("container_id")
@socket_option
def state(container_id: str, socket_path: str) -> None:
    """A container's state as JSON, like crun state."""
    import json
    click.echo(json.dumps(_call(socket_path, "state", id=container_id)["state"], indent=2))


@main.command()
@click.argument("container_id")
@click.argument("sig", default="TERM")
@click.option("--all", "all_", is_flag=True, help="Signal every process of the container.")
@socket_option
def kill(container_id: str, sig: str, all_: bool, socket_path: str) -> None:
    """Send a signal (name or number) to a container."""
    import signal as signals
    try:
        num = int(sig) if sig.isdigit() else int(signals.Signals["SIG" + sig.upper().removeprefix("SIG")])
    except KeyError:
        click.echo(f"unknown signal {sig!r}", err=True)
        sys.exit(1)
    _call(socket_path, "kill", id=container_id, signal=num, all=all_)


@main.command()
@click.argument("container_id")
@click.option("--force", is_flag=True, help="Kill it first if it is running.")
@click.option("--store", "store_dir", default=None,
              help="Also remove the container's rootfs from this image store.")
@socket_option
def delete(container_id: str, force: bool, store_dir: str | None, socket_path: str) -> None:
    """Remove a container: its cgroup, state and logs (and its rootfs with --store)."""
    _call(socket_path, "delete", id=container_id, force=force)
    if store_dir:
        from runtime.images import ImageStore
        ImageStore(store_dir).remove_rootfs(container_id)


@main.command()
@click.argument("container_id")
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@socket_option
def logs(container_id: str, tail: int | None, follow: bool, socket_path: str) -> None:
    """Print a container's output from its CRI log file."""
    from runtime import logs as cri
    path = _call(socket_path, "state", id=container_id)["state"]["log_path"]
    for line in cri.read_logs(path, tail=tail):
        (sys.stderr if line.stream == "stderr" else sys.stdout).buffer.write(line.text + b"\n")
    sys.stdout.flush()
    if follow:
        for line in cri.follow(path):
            (sys.stderr if line.stream == "stderr" else sys.stdout).buffer.write(line.text + b"\n")
            sys.stdout.flush()


@main.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("container_id")
@click.argument("args", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", "timeout_s", type=float, default=None, help="Kill it after N seconds.")
@socket_option
def exec_(container_id: str, args: tuple[str, ...], timeout_s: float | None,
          socket_path: str) -> None:
    """Run a command in a running container: exec ID -- CMD ARGS..."""
    r = _call(socket_path, "exec", id=container_id, args=list(args), timeout_s=timeout_s)
    sys.stdout.write(r["stdout"])
    sys.stderr.write(r["stderr"])
    if r["timed_out"]:
        click.echo(f"command timed out after {timeout_s:g}s", err=True)
    sys.exit(r["exit_code"])


DEFAULT_IMAGES = "/var/lib/nodeagent/images"
store_option = click.option("--store", "store_dir", default=DEFAULT_IMAGES, show_default=True,
                            help="The image store's directory.")


@main.command()
@click.argument("reference")
@click.option("--insecure", multiple=True, help="Registry host:port to reach over plain HTTP.")
@store_option
def pull(reference: str, insecure: tuple[str, ...], store_dir: str) -> None:
    """Pull an image from a registry into the store, with progress."""
    import trio

    from runtime.images import ImageError, ImageStore
    from runtime.registry import RegistryClient

    def progress(digest: str, done: int, total: int) -> None:
        pct = f"{100 * done // total:3d}%" if total else ""
        click.echo(f"\r{digest[7:19]}: {done / 2**20:7.1f} MiB {pct}", nl=False, err=True)
    try:
        image = trio.run(RegistryClient(ImageStore(store_dir), insecure=insecure).pull,
                         reference, progress)
    except ImageError as exc:
        click.echo(f"\n{exc.reason}: {exc}", err=True)
        sys.exit(1)
    click.echo(f"\n{image.name} {image.digest}", err=True)


@main.command()
@store_option
def images(store_dir: str) -> None:
    """Images in the store, like crictl images."""
    from runtime.images import ImageStore
    click.echo(f"{'IMAGE':40} {'DIGEST':20} LAYERS")
    for image in ImageStore(store_dir).list():
        click.echo(f"{image.name:40} {image.digest[7:19]:20} {len(image.layers)}")


@main.command("import")
@click.argument("path")
@click.option("--name", default=None, help="Tag for the image (default: the archive's own).")
@store_option
def import_(path: str, name: str | None, store_dir: str) -> None:
    """Import an OCI image layout (dir or tar) or a docker-archive tar."""
    import os
    import tarfile

    from runtime.images import ImageError, ImageStore
    store = ImageStore(store_dir)
    try:
        docker = os.path.isfile(path) and "manifest.json" in tarfile.open(path).getnames()
        found = (store.import_docker_archive(path, name) if docker
                 else store.import_oci_layout(path, name))
    except (ImageError, tarfile.TarError, OSError) as exc:
        click.echo(f"cannot import {path}: {exc}", err=True)
        sys.exit(1)
    for image in found:
        click.echo(f"{image.name} {image.digest}")


@main.command()
@click.option("-b", "--bundle", default=".", show_default=True,
              help="Directory with config.json and the rootfs.")
@click.argument("container_id")
@socket_option
def create(bundle: str, container_id: str, socket_path: str) -> None:
    """Create a container in the launcher from a bundle, held before its command runs."""
    from runtime.spec import spec_to_dict
    try:
        spec = load_bundle(bundle, container_id)
    except SpecError as exc:
        click.echo(f"{container_id}: invalid bundle: {exc}", err=True)
        sys.exit(1)
    st = _call(socket_path, "create", id=container_id, spec=spec_to_dict(spec))["state"]
    click.echo(f"{container_id} created (pid {st['pid']})")


@main.command("start")
@click.argument("container_id")
@socket_option
def start_(container_id: str, socket_path: str) -> None:
    """Start a created container: its command runs now."""
    _call(socket_path, "start", id=container_id)


@main.command("run-image")
@click.argument("image_name")
@click.argument("container_id")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--hostname", default=None, help="Default: the container id.")
@click.option("--cgroup-parent", default="nodeagent", show_default=True,
              help="The container's cgroup goes below this one.")
@click.option("--memory-mb", type=int, default=None, help="Memory limit.")
@click.option("--init", "use_init", is_flag=True, help="Run a minimal init as PID 1.")
@click.option("--store", "store_dir", default=DEFAULT_IMAGES, show_default=True,
              help="The image store's directory.")
@socket_option
def run_image(image_name: str, container_id: str, args: tuple[str, ...], hostname: str | None,
              cgroup_parent: str, memory_mb: int | None, use_init: bool, store_dir: str,
              socket_path: str) -> None:
    """Run an image from the store in the launcher, detached: run-image IMAGE ID [-- CMD...]."""
    from runtime.cgroups import Resources
    from runtime.images import ImageError, ImageStore
    from runtime.spec import ContainerSpec, spec_to_dict
    store = ImageStore(store_dir)
    try:
        image = store.get(image_name)
        rootfs = store.mount_rootfs(container_id, image)
    except ImageError as exc:
        click.echo(f"{exc.reason}: {exc}", err=True)
        sys.exit(1)
    command = tuple(args) or tuple(image.entrypoint + image.cmd)
    spec = ContainerSpec(rootfs=rootfs, args=command, env=tuple(image.env) or ContainerSpec.env,
                         cwd=image.working_dir, hostname=hostname or container_id,
                         init=use_init, cgroup_path=f"{cgroup_parent}/{container_id}",
                         resources=Resources(memory_limit_bytes=memory_mb * 2**20
                                             if memory_mb else None))
    try:
        st = _call(socket_path, "run", id=container_id, spec=spec_to_dict(spec))["state"]
    except SystemExit:
        store.remove_rootfs(container_id)
        raise
    click.echo(f"{container_id} running (pid {st['pid']}, image {image.name})")
