"""'nodectl': the kubectl habits people already have, against a nodeagent.

Every command talks to the API with :class:`~nodeagent.api.client.Client`; a
failure from the server is printed the way kubectl prints it
('Error from server (NotFound): pods "x" not found') and the exit code is 1.
Nothing here prints a traceback: :func:`main` turns every expected failure
into a message.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import ssl
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import click
import orjson

from nodeagent import __version__
from nodeagent.api.client import DEFAULT_SERVER, Client, ClientError, ConnectionFailed
from nodeagent.api.kubeconfig import Credentials, KubeconfigError
from nodeagent.api.kubeconfig import load as load_kubeconfig
from nodeagent.cli import jsonpath, manifests
from nodeagent.cli import rollout as rollout_ops
from nodeagent.cli.describe import describe as describe_text
from nodeagent.cli.printers import format_rows, render_table, to_yaml
from nodeagent.objects.kinds import ENDPOINTS, EVENTS, SERVED, Resource, lookup
from nodeagent.objects.quantity import parse_quantity

Obj = dict[str, Any]
ALL_CATEGORY = ("pods", "services", "deployments", "replicasets")
OUTPUTS = ("wide", "yaml", "json", "name")


class Failed(Exception):
    """A command failed; the message is what the user sees (already kubectl-shaped)."""


@dataclass
class Ctx:
    server: str | None  # --server / NODECTL_SERVER, over the kubeconfig's
    namespace: str | None
    kubeconfig: str | None = None
    _client: Client | None = None
    _creds: Credentials | None = None

    @property
    def credentials(self) -> Credentials:
        if self._creds is None:
            try:
                self._creds = load_kubeconfig(self.kubeconfig, self.server)
            except KubeconfigError as exc:
                fail(f"error: {exc}")
            if self.namespace is None:
                self.namespace = self._creds.namespace
        return self._creds

    @property
    def api_server(self) -> str:
        return self.credentials.server

    @property
    def client(self) -> Client:
        if self._client is None:
            try:
                self._client = Client(self.credentials)
            except KubeconfigError as exc:
                fail(f"error: {exc}")
        return self._client

    def ns_for(self, res: Resource, all_namespaces: bool = False) -> str | None:
        if not res.namespaced or all_namespaces:
            return None
        return self.namespace or "default"


def server_error(exc: ClientError, action: str = "") -> str:
    """kubectl's rendering of a failure Status."""
    details = exc.status.get("details") or {}
    if exc.reason == "Invalid" and details.get("causes"):
        head = f"The {details.get('kind', '')} \"{details.get('name', '')}\" is invalid"
        causes = [f"{c.get('field')}: {c.get('message')}" if c.get("field") else c.get("message")
                  for c in details["causes"]]
        if len(causes) == 1:
            return f"{head}: {causes[0]}"
        return head + ": \n" + "\n".join(f"* {c}" for c in causes)
    return f"Error from server ({exc.reason}): {action}{exc.message}"


def fail(message: str) -> NoReturn:
    raise Failed(message)


def resource_or_fail(name: str) -> Resource:
    res = lookup(name)
    if res is None:
        fail(f'error: the server doesn\'t have a resource type "{name}"')
    return res


def display_name(res: Resource, name: str) -> str:
    """'deployment.apps/kubia', 'pod/kubia': how kubectl names objects in its output."""
    return f"{res.singular}.{res.group}/{name}" if res.group else f"{res.singular}/{name}"


def parse_targets(args: tuple[str, ...]) -> list[tuple[Resource, list[str]]]:
    """'pods a b', 'po,svc', 'pod/a svc/b', 'all': kubectl's ways to name things."""
    if not args:
        fail("error: You must specify the type of resource to get. Use \"nodectl "
             "api-resources\" for a complete list of supported resources.")
    if all("/" in a for a in args):
        grouped: dict[Resource, list[str]] = {}
        for a in args:
            kind, _, name = a.partition("/")
            if not name:
                fail(f'error: arguments in resource/name form must have a single resource and '
                     f'name: "{a}"')
            grouped.setdefault(resource_or_fail(kind), []).append(name)
        return list(grouped.items())
    if any("/" in a for a in args):
        fail("error: there is no need to specify a resource type as a separate argument when "
             "passing arguments in resource/name form")
    kinds, names = args[0], list(args[1:])
    out: list[tuple[Resource, list[str]]] = []
    for k in kinds.split(","):
        if k == "all":
            out.extend((resource_or_fail(p), names) for p in ALL_CATEGORY)
        else:
            out.append((resource_or_fail(k), names))
    if len(out) > 1 and names:
        fail("error: you must specify only one resource type when naming objects")
    return out


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command takes, like kubectl's global flags."""
    @click.option("-n", "--namespace", "namespace", default=None,
                  help="The namespace for this request (default: default).")
    @click.option("--server", "-s", "server", default=None, envvar="NODECTL_SERVER",
                  help="The API server's address, over the kubeconfig's (env NODECTL_SERVER; "
                  f"default the kubeconfig's, else {DEFAULT_SERVER}).")
    @click.option("--kubeconfig", "kubeconfig", default=None,
                  help="The kubeconfig (default $KUBECONFIG, else ~/.kube/config, else this "
                  "machine's agent's admin.kubeconfig).")
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(click_ctx: click.Context, namespace: str | None, server: str | None,
                kubeconfig: str | None, **kw: Any) -> Any:
        parent: Ctx = click_ctx.obj
        ctx = Ctx(server or parent.server, namespace or parent.namespace,
                  kubeconfig or parent.kubeconfig)
        try:
            return fn(ctx, **kw)
        finally:
            if ctx._client is not None:
                ctx._client.close()
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--namespace", "namespace", default=None,
              help="The namespace for this request (default: default).")
@click.option("--server", "-s", "server", default=None, envvar="NODECTL_SERVER",
              help="The API server's address, over the kubeconfig's (env NODECTL_SERVER; "
              f"default the kubeconfig's, else {DEFAULT_SERVER}).")
@click.option("--kubeconfig", "kubeconfig", default=None,
              help="The kubeconfig (default $KUBECONFIG, else ~/.kube/config, else this "
              "machine's agent's admin.kubeconfig).")
@click.pass_context
def cli(click_ctx: click.Context, namespace: str | None, server: str | None,
        kubeconfig: str | None) -> None:
    """nodectl controls a nodeagent cluster, the way kubectl controls Kubernetes."""
    click_ctx.obj = Ctx(server, namespace, kubeconfig)


# --- apply / create / delete -f ----------------------------------------------------------------


def _manifest_ns(ctx: Ctx, m: manifests.Manifest) -> str | None:
    if not m.res.namespaced:
        return None
    meta_ns = (m.obj.get("metadata") or {}).get("namespace")
    if meta_ns and ctx.namespace and meta_ns != ctx.namespace:
        fail(f"error: the namespace from the provided object \"{meta_ns}\" does not match the "
             f"namespace \"{ctx.namespace}\". You must pass '--namespace={meta_ns}' to perform "
             "this operation.")
    return meta_ns or ctx.namespace or "default"


def _apply_one(ctx: Ctx, m: manifests.Manifest) -> str:
    ns = _manifest_ns(ctx, m)
    name = (m.obj.get("metadata") or {}).get("name")
    desired = manifests.with_last_applied(m.obj)
    if not name:
        fail(f'error: error when retrieving current configuration of "{m.source}": '
             "resource name may not be empty")
    try:
        live = ctx.client.get(m.res, ns, name)
    except ClientError as exc:
        if exc.code != 404:
            raise
        ctx.client.create(m.res, ns, desired)
        return "created"
    patch = manifests.apply_patch(manifests.last_applied(live), desired, live)
    patch.pop("status", None)
    out = ctx.client.patch(m.res, ns, name, patch)
    same = out["metadata"].get("resourceVersion") == live["metadata"].get("resourceVersion")
    return "unchanged" if same else "configured"


def _for_manifests(ctx: Ctx, files: tuple[str, ...], verb: str,
                   action: Callable[[manifests.Manifest], str]) -> None:
    items, errors = manifests.load(files)
    for m in items:
        name = (m.obj.get("metadata") or {}).get("name", "")
        try:
            result = action(m)
        except ClientError as exc:
            errors.append(server_error(exc, f'error when {verb} "{m.source}": '))
            continue
        except Failed as exc:
            errors.append(str(exc))
            continue
        click.echo(f"{display_name(m.res, name)} {result}")
    if errors:
        fail("\n".join(errors))


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="File, directory or - (stdin) with the manifests to apply.")
@common
def apply(ctx: Ctx, files: tuple[str, ...]) -> None:
    """Create or update objects from manifests (YAML or JSON, multi-document)."""
    _for_manifests(ctx, files, "applying", lambda m: _apply_one(ctx, m))


@cli.group(invoke_without_command=True)
@click.option("-f", "--filename", "files", multiple=True,
              help="File, directory or - (stdin) with the manifests to create.")
@common
def create(ctx: Ctx, files: tuple[str, ...]) -> None:
    """Create objects from manifests, or a namespace ('create namespace NAME')."""
    click_ctx = click.get_current_context()
    if click_ctx.invoked_subcommand is not None:
        return
    if not files:
        fail("error: must specify one of -f and -k")

    def create_one(m: manifests.Manifest) -> str:
        ctx.client.create(m.res, _manifest_ns(ctx, m), m.obj)
        return "created"
    _for_manifests(ctx, files, "creating", create_one)


@create.command("namespace")
@click.argument("name")
@common
def create_namespace(ctx: Ctx, name: str) -> None:
    """Create a namespace."""
    res = resource_or_fail("namespaces")
    ctx.client.create(res, None, {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": name}})
    click.echo(f"namespace/{name} created")


# --- get -------------------------------------------------------------------------------------------


def _list_items(ctx: Ctx, res: Resource, names: list[str], all_ns: bool, selector: str | None,
                field_selector: str | None) -> list[Obj]:
    ns = ctx.ns_for(res, all_ns)
    if names:
        # apiVersion and kind first, as kubectl prints objects (the server stores metadata first).
        return [{"apiVersion": res.api_version, "kind": res.kind, **ctx.client.get(res, ns, n)}
                for n in names]
    out = ctx.client.list(res, ns, labelSelector=selector, fieldSelector=field_selector)
    kind = res.kind
    return [{"apiVersion": res.api_version, "kind": kind, **i} for i in out.get("items") or []]


def _print_objects(items: list[Obj], output: str | None, single: bool) -> None:
    if output in ("yaml", "json"):
        doc: Any = items[0] if single and len(items) == 1 else \
            {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
        if output == "yaml":
            click.echo(to_yaml(doc), nl=False)
        else:
            click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


@cli.command()
@click.argument("args", nargs=-1)
@click.option("-o", "--output", default=None, callback=lambda _c, _p, v: _output_format(v),
              help="Output format: wide, yaml, json, name or jsonpath=TEMPLATE.")
@click.option("-l", "--selector", default=None, help="Label selector, e.g. app=kubia,tier!=db.")
@click.option("--field-selector", default=None, help="Field selector, e.g. status.phase=Running.")
@click.option("-A", "--all-namespaces", "all_ns", is_flag=True, help="List across namespaces.")
@click.option("-w", "--watch", is_flag=True, help="After listing, watch for changes.")
@click.option("--show-labels", is_flag=True, help="Show labels as the last column.")
@common
def get(ctx: Ctx, args: tuple[str, ...], output: str | None, selector: str | None,
        field_selector: str | None, all_ns: bool, watch: bool, show_labels: bool) -> None:
    """Display one or many objects ('get pods', 'get po,svc', 'get pod/kubia', 'get all')."""
    targets = parse_targets(args)
    named = any(names for _, names in targets)
    multi = len(targets) > 1 or (bool(args) and args[0] == "all")
    collected: list[Obj] = []
    errors: list[str] = []
    printed_tables: list[str] = []
    for res, names in targets:
        if output in (None, "wide"):  # the server's Table, as kubectl get asks for it
            try:
                tables = [ctx.client.table(res, ctx.ns_for(res, all_ns), n) for n in names] \
                    if names else [ctx.client.table(res, ctx.ns_for(res, all_ns),
                                                    labelSelector=selector,
                                                    fieldSelector=field_selector)]
            except ClientError as exc:
                errors.append(server_error(exc))
                continue
            rows = [r for t in tables for r in t.get("rows") or []]
            if rows:
                printed_tables.append(render_table(
                    tables[0].get("columnDefinitions") or [], rows, wide=output == "wide",
                    with_namespace=all_ns and res.namespaced,
                    name_prefix=display_name(res, "") if multi else "", show_labels=show_labels))
            continue
        try:
            items = []
            for n in names or [""]:
                items.extend(_list_items(ctx, res, [n] if n else [], all_ns, selector,
                                         field_selector))
        except ClientError as exc:
            errors.append(server_error(exc))
            continue
        if output in ("yaml", "json") or (output or "").startswith("jsonpath="):
            collected.extend(items)
        elif output == "name":
            for o in items:
                click.echo(display_name(res, o["metadata"]["name"]))
    if output in ("yaml", "json") and (collected or not errors):
        _print_objects(collected, output, single=named and len(collected) == 1)
    elif output and output.startswith("jsonpath=") and (collected or not errors):
        doc = collected[0] if named and len(collected) == 1 else {
            "apiVersion": "v1", "kind": "List", "items": collected}
        try:
            click.echo(jsonpath.render(output[len("jsonpath="):], doc), nl=False)
        except jsonpath.JsonPathError as exc:
            fail(f"error: error parsing jsonpath {output[len('jsonpath='):]}, {exc}")
    if printed_tables:
        click.echo("\n\n".join(printed_tables))
    elif not output and not errors and not watch:
        where = " in any namespace" if all_ns else \
            f" in {ctx.namespace or 'default'} namespace" if any(r.namespaced for r, _ in targets) \
            else ""
        click.echo(f"No resources found{where}.", err=True)
    if errors:
        fail("\n".join(errors))
    if watch:
        if len(targets) != 1:
            fail("error: you may only specify a single resource type with --watch")
        _watch(ctx, targets[0][0], targets[0][1], all_ns, selector, field_selector, output,
               show_labels)


def _output_format(value: str | None) -> str | None:
    if value is None or value in OUTPUTS:
        return value
    if value.startswith("jsonpath="):
        return value
    raise click.BadParameter(f"unable to match a printer suitable for the output format "
                             f'"{value}", allowed formats are: {",".join(OUTPUTS)},jsonpath')


def _watch(ctx: Ctx, res: Resource, names: list[str], all_ns: bool, selector: str | None,
           field_selector: str | None, output: str | None, show_labels: bool) -> None:
    ns = ctx.ns_for(res, all_ns)
    if names:
        field_selector = f"metadata.name={names[0]}"
    listed = ctx.client.list(res, ns, labelSelector=selector, fieldSelector=field_selector,
                             limit=1)
    rv = listed["metadata"].get("resourceVersion")
    tables = output in (None, "wide")
    columns: list[Obj] = []
    try:
        for ev in _events(ctx, res, ns, rv, selector, field_selector, tables):
            obj = ev["object"]
            if output in ("yaml", "json"):
                _print_objects([obj], output, single=True)
            elif output == "name":
                click.echo(display_name(res, obj["metadata"]["name"]))
            else:  # a Table of one row; the first of the watch has the columns
                columns = obj.get("columnDefinitions") or columns
                click.echo(render_table(columns, obj.get("rows") or [], wide=output == "wide",
                                        with_namespace=all_ns and res.namespaced,
                                        show_headers=False, show_labels=show_labels))
    except KeyboardInterrupt:
        return


def _events(ctx: Ctx, res: Resource, ns: str | None, rv: str | None, selector: str | None,
            field_selector: str | None, tables: bool = False) -> Iterator[Obj]:
    """Watch events forever, resuming from the last resourceVersion when the stream ends;
    ``tables``: as Tables of one row."""
    while True:
        for ev in ctx.client.watch(res, ns, tables=tables, resourceVersion=rv,
                                   labelSelector=selector,
                                   fieldSelector=field_selector, allowWatchBookmarks="true",
                                   timeoutSeconds=300):
            if ev.get("type") == "ERROR":
                fail(server_error(ClientError(ev.get("object") or {})))
            rv = (ev.get("object") or {}).get("metadata", {}).get("resourceVersion", rv)
            if ev.get("type") != "BOOKMARK":
                yield ev


# --- describe ------------------------------------------------------------------------------------


@cli.command()
@click.argument("args", nargs=-1)
@click.option("-l", "--selector", default=None, help="Label selector.")
@click.option("-A", "--all-namespaces", "all_ns", is_flag=True, help="Across namespaces.")
@common
def describe(ctx: Ctx, args: tuple[str, ...], selector: str | None, all_ns: bool) -> None:
    """Show details of objects with their events ('describe pod kubia')."""
    out: list[str] = []
    errors: list[str] = []
    for res, names in parse_targets(args):
        try:
            items = []
            for n in names or [""]:
                items.extend(_list_items(ctx, res, [n] if n else [], all_ns, selector, None))
        except ClientError as exc:
            errors.append(server_error(exc))
            continue
        for o in items:
            out.append(_describe_one(ctx, res, o))
    if out:
        click.echo("\n\n".join(out))
    if errors:
        fail("\n".join(errors))
    if not out:
        click.echo(f"No resources found in {ctx.namespace or 'default'} namespace.", err=True)


def _describe_one(ctx: Ctx, res: Resource, o: Obj) -> str:
    meta = o.get("metadata") or {}
    ns = meta.get("namespace")
    ev_res = EVENTS
    assert ev_res is not None
    events: list[Obj] = []
    try:
        listed = ctx.client.list(ev_res, ns or "default")
        events = [e for e in listed.get("items") or []
                  if (e.get("involvedObject") or {}).get("name") == meta.get("name")
                  and (e.get("involvedObject") or {}).get("kind") == res.kind]
    except ClientError:
        pass
    endpoints = None
    if res.kind == "Service":
        ep_res = ENDPOINTS
        assert ep_res is not None
        try:
            endpoints = ctx.client.get(ep_res, ns, meta["name"])
        except ClientError:
            endpoints = None
    o = {"apiVersion": res.api_version, "kind": res.kind, **o}
    return describe_text(o, events, endpoints)


# --- delete --------------------------------------------------------------------------------------


@cli.command()
@click.argument("args", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True, help="Delete what these manifests name.")
@click.option("-l", "--selector", default=None, help="Delete objects matching this selector.")
@click.option("--all", "all_", is_flag=True, help="Delete all objects of the type(s).")
@click.option("--grace-period", type=int, default=None,
              help="Seconds the pod gets to stop (default: the pod's own).")
@click.option("--now", is_flag=True, help="Same as --grace-period=1.")
@click.option("--ignore-not-found", is_flag=True, help="A missing object is not an error.")
@click.option("--cascade", type=click.Choice(["background", "foreground", "orphan"]),
              default="background", show_default=True,
              help="What happens to dependents (a Deployment's ReplicaSets and pods): deleted "
                   "after, deleted before, or kept.")
@common
def delete(ctx: Ctx, args: tuple[str, ...], files: tuple[str, ...], selector: str | None,
           all_: bool, grace_period: int | None, now: bool, ignore_not_found: bool,
           cascade: str) -> None:
    """Delete objects by name, by selector, by manifest or all of a type."""
    grace = 1 if now else grace_period
    errors: list[str] = []

    def delete_one(res: Resource, ns: str | None, name: str) -> None:
        try:
            ctx.client.delete(res, ns, name, grace, propagation=cascade.capitalize())
            kind = f"{res.singular}.{res.group}" if res.group else res.singular
            click.echo(f'{kind} "{name}" deleted')
        except ClientError as exc:
            if not (exc.code == 404 and ignore_not_found):
                errors.append(server_error(exc))

    if files:
        items, errors = manifests.load(files)
        for m in items:
            delete_one(m.res, _manifest_ns(ctx, m), (m.obj.get("metadata") or {}).get("name", ""))
        if errors:
            fail("\n".join(errors))
        return
    targets = parse_targets(args)
    for res, names in targets:
        ns = ctx.ns_for(res)
        if names:
            if selector or all_:
                fail("error: name cannot be provided when a selector or --all is specified")
            for n in names:
                delete_one(res, ns, n)
            continue
        if not (selector or all_):
            fail("error: resource(s) were provided, but no name was specified")
        found = ctx.client.list(res, ns, labelSelector=selector).get("items") or []
        for o in found:
            delete_one(res, ns, o["metadata"]["name"])
        if not found and len(targets) == 1:
            click.echo(f"No resources found{f' in {ns} namespace' if ns else ''}.", err=True)
    if errors:
        fail("\n".join(errors))


# --- label / annotate / scale ----------------------------------------------------------------------


def _split_changes(args: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str | None]]:
    objs = tuple(a for a in args if "=" not in a and not a.endswith("-"))
    changes: dict[str, str | None] = {}
    for a in args:
        if "=" in a:
            k, _, v = a.partition("=")
            changes[k] = v
        elif a.endswith("-") and len(a) > 1:
            changes[a[:-1]] = None
    if not changes:
        fail("error: at least one label update is required")
    return objs, changes


def _relabel(ctx: Ctx, args: tuple[str, ...], field: str, verb: str, overwrite: bool,
             selector: str | None, all_: bool) -> None:
    objs, changes = _split_changes(args)
    targets = parse_targets(objs)
    errors: list[str] = []
    for res, names in targets:
        ns = ctx.ns_for(res)
        try:
            if names:
                items = [ctx.client.get(res, ns, n) for n in names]
            elif selector or all_:
                items = ctx.client.list(res, ns, labelSelector=selector).get("items") or []
            else:
                fail("error: resource(s) were provided, but no name was specified")
        except ClientError as exc:
            errors.append(server_error(exc))
            continue
        for o in items:
            meta = o["metadata"]
            current = meta.get(field) or {}
            if not overwrite:
                for k, v in changes.items():
                    if v is not None and k in current and current[k] != v:
                        fail(f"error: '{k}' already has a value ({current[k]}), and --overwrite "
                             "is false")
            patch = {"metadata": {field: changes, "resourceVersion": meta["resourceVersion"]}}
            try:
                ctx.client.patch(res, ns, meta["name"], patch)
            except ClientError as exc:
                errors.append(server_error(exc))
                continue
            click.echo(f"{display_name(res, meta['name'])} {verb}")
    if errors:
        fail("\n".join(errors))


def _metadata_map_command(name: str, field: str, verb: str, example: str) -> None:
    """'label' and 'annotate': the same command over metadata.labels or .annotations."""
    @cli.command(name, help=f"Add, change (--overwrite) or remove ('key-') {field}: "
                 f"'{name} {example}'.")
    @click.argument("args", nargs=-1, required=True)
    @click.option("--overwrite", is_flag=True, help=f"Replace {field} that already have a value.")
    @click.option("-l", "--selector", default=None, help="Change the objects matching this selector.")
    @click.option("--all", "all_", is_flag=True, help="Change all objects of the type.")
    @common
    def command(ctx: Ctx, args: tuple[str, ...], overwrite: bool, selector: str | None,
                all_: bool) -> None:
        _relabel(ctx, args, field, verb, overwrite, selector, all_)


_metadata_map_command("label", "labels", "labeled", "pod kubia env=debug")
_metadata_map_command("annotate", "annotations", "annotated", "deploy kubia team=web")


@cli.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--replicas", type=click.IntRange(min=0), required=True, help="The new replica count.")
@common
def scale(ctx: Ctx, args: tuple[str, ...], replicas: int) -> None:
    """Set the replicas of a Deployment or ReplicaSet: 'scale deploy kubia --replicas=3'."""
    for res, names in parse_targets(args):
        if res.kind not in ("Deployment", "ReplicaSet"):
            fail(f'error: cannot scale {res.plural}: only deployments and replicasets scale')
        if not names:
            fail("error: resource(s) were provided, but no name was specified")
        for n in names:
            ctx.client.patch(res, ctx.ns_for(res), n, {"spec": {"replicas": replicas}})
            click.echo(f"{display_name(res, n)} scaled")


@cli.command("cordon")
@click.argument("node")
@common
def cordon_(ctx: Ctx, node: str) -> None:
    """Mark a node unschedulable: new pods go elsewhere, its pods stay."""
    _cordon(ctx, node, True)


@cli.command()
@click.argument("node")
@common
def uncordon(ctx: Ctx, node: str) -> None:
    """Mark a node schedulable again."""
    _cordon(ctx, node, False)


def _cordon(ctx: Ctx, node: str, on: bool) -> None:
    from nodeagent.cli.drain import cordon
    verb = "cordoned" if on else "uncordoned"
    try:
        changed = cordon(ctx.client, node, on)
    except ClientError as exc:
        fail(server_error(exc))
    click.echo(f"node/{node} {verb}" if changed else f"node/{node} already {verb}")


@cli.command("drain")
@click.argument("node")
@click.option("--force", is_flag=True, help="Also delete pods no controller would replace.")
@click.option("--grace-period", type=int, default=None,
              help="Seconds each pod gets to stop (default: the pod's own).")
@click.option("--timeout", "timeout_s", type=float, default=300.0,
              help="Give up after this many seconds (default 300).")
@click.option("--ignore-daemonsets", is_flag=True, hidden=True,
              help="Accepted for kubectl habits; there are no DaemonSets here.")
@click.option("--delete-emptydir-data", is_flag=True, hidden=True,
              help="Accepted for kubectl habits; emptyDir data goes with its pod anyway.")
@common
def drain_(ctx: Ctx, node: str, force: bool, grace_period: int | None, timeout_s: float,
           ignore_daemonsets: bool, delete_emptydir_data: bool) -> None:
    """Cordon a node and evict its pods, no faster than a rolling update would take the
    replicas of each app down (maxUnavailable), each with its grace period."""
    from nodeagent.cli.drain import DrainError, drain
    try:
        drain(ctx.client, node, force=force, grace_period_s=grace_period, timeout_s=timeout_s,
              say=click.echo)
    except DrainError as exc:
        fail(f"error: {exc}")
    except ClientError as exc:
        fail(server_error(exc))


@cli.command()
@click.argument("pod")
@click.option("-c", "--container", default=None, help="The container (needed if the pod has several).")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new output.")
@click.option("--tail", type=int, default=-1, help="Lines from the end (-1: all).")
@click.option("--since", default=None, help="Only newer output, e.g. 10s, 5m, 1h.")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.option("-p", "--previous", is_flag=True, help="The previous instance of the container.")
@click.option("--limit-bytes", type=int, default=None, help="At most this many bytes.")
@common
def logs(ctx: Ctx, pod: str, container: str | None, follow: bool, tail: int, since: str | None,
         timestamps: bool, previous: bool, limit_bytes: int | None) -> None:
    """Print a container's output: 'logs kubia-x1', 'logs -f kubia-x1 -c app'."""
    if pod.startswith(("pod/", "pods/", "po/")):
        pod = pod.split("/", 1)[1]
    since_s = None
    if since:
        m = re.fullmatch(r"(\d+)(s|m|h)", since)
        if not m:
            fail(f'error: invalid argument "{since}" for "--since" flag: time: invalid '
                 f'duration "{since}"')
        since_s = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    params = {"container": container, "follow": "true" if follow else None,
              "tailLines": tail if tail >= 0 else None, "sinceSeconds": since_s,
              "timestamps": "true" if timestamps else None,
              "previous": "true" if previous else None, "limitBytes": limit_bytes}
    out = sys.stdout.buffer
    try:
        for chunk in ctx.client.logs(ctx.namespace or "default", pod, **params):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        pass


@cli.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-c", "--container", default=None, help="The container (needed if several).")
@click.option("-i", "--stdin", is_flag=True, help="Pass stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="Stdin is a terminal (with -i: a shell).")
@common
def exec_(ctx: Ctx, pod: str, command: tuple[str, ...], container: str | None, stdin: bool,
          tty: bool) -> None:
    """Run a command in a pod's container: 'exec kubia-x1 -- ls /', 'exec -it kubia-x1 -- sh'."""
    from urllib.parse import urlencode

    from websockets.exceptions import InvalidHandshake, WebSocketException
    from websockets.sync.client import connect
    from websockets.typing import Subprotocol
    if pod.startswith(("pod/", "pods/", "po/")):
        pod = pod.split("/", 1)[1]
    if tty and not (stdin and os.isatty(0)):
        click.echo("Unable to use a TTY - input is not a terminal or the right kind of file",
                   err=True)
        tty = False
    argv = list(command[1:] if command and command[0] == "--" else command)
    query = [("command", c) for c in argv] + [("stdout", "true")]
    query += [("stderr", "true")] if not tty else []
    query += [("container", container)] if container else []
    query += [("stdin", "true")] if stdin else []
    query += [("tty", "true")] if tty else []
    base = ctx.client.server.replace("https://", "wss://").replace("http://", "ws://")
    url = f"{base}/api/v1/namespaces/{ctx.namespace or 'default'}/pods/{pod}/exec?{urlencode(query)}"
    status: Obj = {}
    try:
        creds = ctx.credentials
        tls = creds.ssl_context() if url.startswith("wss://") else None
        with connect(url, subprotocols=[Subprotocol("v5.channel.k8s.io"),
                                        Subprotocol("v4.channel.k8s.io")],
                     open_timeout=10, max_size=None, additional_headers=creds.headers(),
                     ssl=tls if isinstance(tls, ssl.SSLContext) else None) as ws, \
                _raw_terminal(tty):
            if stdin:
                _send_stdin(ws, tty)
            for message in ws:
                data = message if isinstance(message, bytes) else message.encode()
                if not data:
                    continue
                if data[0] == 1:
                    sys.stdout.buffer.write(data[1:])
                    sys.stdout.flush()
                elif data[0] == 2:
                    sys.stderr.buffer.write(data[1:])
                    sys.stderr.flush()
                elif data[0] == 3:
                    status = orjson.loads(data[1:])
    except (InvalidHandshake, WebSocketException, OSError) as exc:
        fail(f"error: unable to upgrade connection: {exc}")
    if status.get("status") == "Success" or not status:
        return
    causes = (status.get("details") or {}).get("causes") or []
    code = next((int(c["message"]) for c in causes if c.get("reason") == "ExitCode"), None)
    if code is not None:
        click.echo(f"command terminated with exit code {code}", err=True)
        sys.exit(code)
    fail(f"error: {status.get('message', 'exec failed')}")


@contextlib.contextmanager
def _raw_terminal(on: bool) -> Iterator[None]:
    """Our terminal in raw mode while a remote one is in use, as kubectl's term package
    does: keys (Ctrl-C included) go to the remote command, which echoes them."""
    if not on:
        yield
        return
    import termios
    import tty as ttymod
    saved = termios.tcgetattr(0)
    ttymod.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _send_stdin(ws: Any, tty: bool) -> None:
    """Stdin to channel 0 from a thread of its own; on EOF the v5 close frame (255, 0).
    With a terminal, its size now and on every SIGWINCH (channel 4)."""
    import signal
    import threading

    def size() -> None:
        columns, rows = os.get_terminal_size(0)
        with contextlib.suppress(Exception):
            ws.send(b"\x04" + orjson.dumps({"Width": columns, "Height": rows}))

    if tty:
        size()
        signal.signal(signal.SIGWINCH, lambda *_: size())

    def pump() -> None:
        with contextlib.suppress(Exception):
            while data := os.read(0, 32768):
                ws.send(b"\x00" + data)
            if ws.subprotocol == "v5.channel.k8s.io":
                ws.send(b"\xff\x00")

    threading.Thread(target=pump, daemon=True).start()


@cli.group()
def top() -> None:
    """Resource usage (CPU, memory) of pods or nodes, from the nodes' cgroups."""


def _metrics(ctx: Ctx, path: str) -> list[Obj]:
    try:
        return ctx.client.request("GET", f"/apis/metrics.k8s.io/v1beta1/{path}")["items"]
    except ClientError as exc:
        fail(f"error: Metrics API not available: {exc.status.get('message', '')}")
    return []


@top.command("pods")
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", "all_ns", is_flag=True, help="Across namespaces.")
@click.option("--containers", is_flag=True, help="A line per container.")
@common
def top_pods(ctx: Ctx, name: str | None, all_ns: bool, containers: bool) -> None:
    """'top pods': CPU (millicores) and memory of each pod."""
    path = "pods" if all_ns else f"namespaces/{ctx.namespace or 'default'}/pods"
    items = [m for m in _metrics(ctx, path) if name in (None, m["metadata"]["name"])]
    if not items:
        fail(f"error: metrics not available yet{f' for pod {name}' if name else ''}")
    head = (["NAMESPACE"] if all_ns else []) + ["POD"] + (["NAME"] if containers else []) + \
        ["CPU(cores)", "MEMORY(bytes)"]
    if not containers:
        head[head.index("POD")] = "NAME"
    rows = [head]
    for m in sorted(items, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"])):
        pre = [m["metadata"]["namespace"]] if all_ns else []
        if containers:
            for c in m["containers"]:
                rows.append([*pre, m["metadata"]["name"], c["name"], _cores(c["usage"]["cpu"]),
                             _mib(c["usage"]["memory"])])
        else:
            cpu = sum(_milli(c["usage"]["cpu"]) for c in m["containers"])
            mem = sum(_bytes(c["usage"]["memory"]) for c in m["containers"])
            rows.append([*pre, m["metadata"]["name"], f"{cpu}m", f"{mem // 2 ** 20}Mi"])
    click.echo(format_rows(rows))


@top.command("nodes")
@common
def top_nodes(ctx: Ctx) -> None:
    """'top nodes': CPU and memory of each node, also as % of allocatable."""
    nodes_res = resource_or_fail("nodes")
    alloc = {n["metadata"]["name"]: (n.get("status") or {}).get("allocatable") or {}
             for n in ctx.client.list(nodes_res, None)["items"]}
    rows = [["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]]
    for m in _metrics(ctx, "nodes"):
        name = m["metadata"]["name"]
        cpu, mem = _milli(m["usage"]["cpu"]), _bytes(m["usage"]["memory"])
        a = alloc.get(name, {})
        cpu_pct = f"{cpu * 100 // max(1, _milli(a.get('cpu', '0')))}%" if a.get("cpu") else "<unknown>"
        mem_pct = f"{mem * 100 // max(1, _bytes(a.get('memory', '0')))}%" if a.get("memory") \
            else "<unknown>"
        rows.append([name, f"{cpu}m", cpu_pct, f"{mem // 2**20}Mi", mem_pct])
    click.echo(format_rows(rows))


def _milli(q: str) -> int:
    return int(parse_quantity(q).value * 1000)


def _bytes(q: str) -> int:
    return int(parse_quantity(q).value)


def _cores(q: str) -> str:
    return f"{_milli(q)}m"


def _mib(q: str) -> str:
    return f"{_bytes(q) // 2**20}Mi"


@cli.group()
def rollout() -> None:
    """Manage a Deployment's rollout: status, history, undo, restart, pause, resume."""


def _deployment_name(target: str) -> str:
    kind, sep, name = target.partition("/")
    if not sep or resource_or_fail(kind).kind != "Deployment":
        fail(f'error: "{target}": rollout works on deployments, as deployment/NAME')
    return name


def _rollout(fn: Callable[..., str | None]) -> Callable[..., None]:
    """Run a rollout step; its errors are kubectl-shaped lines, not tracebacks."""
    def run(*args: Any) -> None:
        try:
            out = fn(*args)
        except rollout_ops.RolloutError as exc:
            fail(f"error: {exc}")
        if out:
            click.echo(out.rstrip("\n"))
    return run


@rollout.command("status")
@click.argument("target")
@click.option("-w", "--watch", type=bool, default=True, show_default=True,
              help="Wait until the rollout is done.")
@click.option("--timeout", default=None, help="Give up after this long, e.g. 60s, 5m.")
@common
def rollout_status(ctx: Ctx, target: str, watch: bool, timeout: str | None) -> None:
    """Wait for a rollout to finish: 'rollout status deployment/kubia'."""
    limit = None
    if timeout:
        m = re.fullmatch(r"(\d+)(s|m|h)?", timeout)
        if not m:
            fail(f'error: invalid argument "{timeout}" for "--timeout" flag')
        limit = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    _rollout(lambda: rollout_ops.status(ctx.client, ctx.namespace or "default",
                                        _deployment_name(target), limit, watch))()


@rollout.command("history")
@click.argument("target")
@click.option("--revision", type=int, default=None, help="Show this revision's pod template.")
@common
def rollout_history(ctx: Ctx, target: str, revision: int | None) -> None:
    """The revisions of a Deployment."""
    _rollout(rollout_ops.history)(ctx.client, ctx.namespace or "default",
                                  _deployment_name(target), revision)


@rollout.command("undo")
@click.argument("target")
@click.option("--to-revision", type=int, default=None, help="Default: the previous revision.")
@common
def rollout_undo(ctx: Ctx, target: str, to_revision: int | None) -> None:
    """Roll back to a previous revision."""
    _rollout(rollout_ops.undo)(ctx.client, ctx.namespace or "default", _deployment_name(target),
                               to_revision)


@rollout.command("restart")
@click.argument("target")
@common
def rollout_restart(ctx: Ctx, target: str) -> None:
    """Replace every pod, as a rolling update does."""
    _rollout(rollout_ops.restart)(ctx.client, ctx.namespace or "default", _deployment_name(target))


@rollout.command("pause")
@click.argument("target")
@common
def rollout_pause(ctx: Ctx, target: str) -> None:
    """Stop rolling out template changes (scaling still applies)."""
    _rollout(rollout_ops.set_paused)(ctx.client, ctx.namespace or "default",
                                     _deployment_name(target), True)


@rollout.command("resume")
@click.argument("target")
@common
def rollout_resume(ctx: Ctx, target: str) -> None:
    """Roll out again."""
    _rollout(rollout_ops.set_paused)(ctx.client, ctx.namespace or "default",
                                     _deployment_name(target), False)


# --- version / api-resources -----------------------------------------------------------------------


@cli.group()
def auth() -> None:
    """What the server lets you do: can-i, whoami."""


@auth.command("can-i")
@click.argument("verb")
@click.argument("what", required=False)
@click.option("-A", "--all-namespaces", "all_ns", is_flag=True,
              help="In every namespace (a cluster-wide permission).")
@click.option("--subresource", default="", help="A subresource: log, exec, status, scale...")
@click.option("--list", "as_list", is_flag=True, help="Everything you may do in the namespace.")
@click.option("-q", "--quiet", is_flag=True, help="Say nothing: the exit code answers.")
@common
def auth_can_i(ctx: Ctx, verb: str, what: str | None, all_ns: bool, subresource: str,
               as_list: bool, quiet: bool) -> None:
    """Ask whether an action is allowed: 'auth can-i create pods', 'auth can-i get
    pods/kubia -n team', 'auth can-i get /healthz'; exit 0 for yes, 1 for no."""
    from nodeagent.cli import auth as auth_ops
    ns = "" if all_ns else (ctx.namespace or "default")
    if as_list:
        answer = ctx.client.request("POST", "/apis/authorization.k8s.io/v1/"
                                    "selfsubjectrulesreviews",
                                    body={"apiVersion": "authorization.k8s.io/v1",
                                          "kind": "SelfSubjectRulesReview",
                                          "spec": {"namespace": ns}})
        table_rows = auth_ops.rules_table(answer.get("status") or {})
        click.echo(format_rows(table_rows))
        return
    if not what:
        fail("error: you must specify two arguments: verb resource or verb resource/resourceName")
    review, warning = auth_ops.access_review(verb, what, ns, subresource)
    if warning and not quiet:
        click.echo(warning, err=True)
    answer = ctx.client.request("POST", "/apis/authorization.k8s.io/v1/"
                                "selfsubjectaccessreviews", body=review)
    status = answer.get("status") or {}
    allowed = bool(status.get("allowed"))
    if not quiet:
        reason = status.get("reason") or ""
        click.echo("yes" if allowed else ("no - " + reason if reason else "no"))
    if not allowed:
        raise SystemExit(1)


@auth.command("whoami")
@common
def auth_whoami(ctx: Ctx) -> None:
    """Who the server takes you for (a SelfSubjectReview)."""
    from nodeagent.cli import auth as auth_ops
    answer = ctx.client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                body={"apiVersion": "authentication.k8s.io/v1",
                                      "kind": "SelfSubjectReview"})
    click.echo(format_rows(auth_ops.whoami_table(answer.get("status") or {})))


@cli.command()
@click.option("--client", "client_only", is_flag=True, help="Only the client version.")
@common
def version(ctx: Ctx, client_only: bool) -> None:
    """Print the client and server versions."""
    click.echo(f"Client Version: v{__version__}")
    if not client_only:
        v = ctx.client.version()
        click.echo(f"Server Version: {v.get('gitVersion', '?')}")


@cli.command("api-resources")
@click.option("--namespaced", type=bool, default=None, help="Only (non-)namespaced resources.")
@click.option("-o", "--output", type=click.Choice(["wide", "name"]), default=None)
@common
def api_resources(ctx: Ctx, namespaced: bool | None, output: str | None) -> None:
    """List the resource types the API serves, with their short names."""
    rows = [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]]
    for r in sorted(SERVED, key=lambda r: (r.group, r.plural)):
        if namespaced is not None and r.namespaced != namespaced:
            continue
        if output == "name":
            click.echo(f"{r.plural}.{r.group}" if r.group else r.plural)
            continue
        rows.append([r.plural, ",".join(r.short_names), r.api_version, str(r.namespaced).lower(),
                     r.kind])
    if output != "name":
        from nodeagent.cli.printers import format_rows
        click.echo(format_rows(rows))


# --- entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run nodectl; every expected failure becomes a message on stderr and exit code 1."""
    try:
        cli.main(args=argv, prog_name="nodectl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Failed as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except ClientError as exc:
        click.echo(server_error(exc), err=True)
        sys.exit(1)
    except ConnectionFailed as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
