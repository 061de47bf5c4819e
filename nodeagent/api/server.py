"""The HTTP API: Kubernetes paths, verbs, errors and watch, served by hypercorn on Trio.

Bad input never reaches a 500: bodies are capped (413), read under a deadline
(408), parsed as JSON or YAML with a clear 400, checked for content type
(415); every ApiError becomes a Status.  An unexpected exception is logged
with its traceback and answered with a 500 Status without one; the fuzz tests
exist to keep that path unused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket

from nodeagent.api import discovery, replica, reviews, serviceaccounts
from nodeagent.api import protobuf as pb
from nodeagent.api.audit import AuditLog, received_at
from nodeagent.api.authn import ANONYMOUS, Authenticator, User
from nodeagent.api.authz import (
    Attributes,
    Authorizer,
    Decision,
    chain,
    forbidden_message,
    metrics_attributes,
    request_attributes,
)
from nodeagent.api.listen import ConnectionGate, ConnectionLimits, TlsPeers, serve_gated
from nodeagent.api.managedfields import MAX_MANAGER_CHARS, Manager, manager_name
from nodeagent.api.nodeauth import NodeAuthorizer, Servers, node_name
from nodeagent.api.noderelay import RELAYED, ask_nodes, relay_websocket
from nodeagent.api.objects import (
    HEAVY_BYTES,
    WRITABLE_PARTS,
    FieldSelector,
    ObjectStore,
    json_patch,
    merge_patch,
    off_loop,
    parse_label_selector,
)
from nodeagent.api.openapi import serve_openapi
from nodeagent.api.origin import foreign_host, foreign_origin
from nodeagent.api.podexec import Exec, serve_exec
from nodeagent.api.podlogs import PodLogs
from nodeagent.api.portforward import PROTOCOL as PORT_FORWARD
from nodeagent.api.portforward import Dial, check_target, serve_portforward
from nodeagent.api.raftadmin import hello, raft_status
from nodeagent.api.ratelimit import RateLimits
from nodeagent.api.rbac import Rbac
from nodeagent.api.resourceproxy import (
    Location,
    Proxy,
    node_location,
    pod_location,
    service_location,
    split_scheme_name_port,
)
from nodeagent.api.routes import Target, parse_resource_path
from nodeagent.api.satokens import TokenSigner
from nodeagent.api.scale import replicas_of, scale_of
from nodeagent.api.status import ApiError, status_object
from nodeagent.api.tables import table_version, to_table
from nodeagent.api.watch import EventEncoder, ProtobufEncoder, TableEncoder, initial_lines, stream
from nodeagent.clusterpki import SERVER_GROUP
from nodeagent.objects.codec import FIELD_VALIDATION
from nodeagent.objects.kinds import ENDPOINTS, NODES, PODS, SECRETS, SERVICES, Resource
from nodeagent.objects.podutil import is_ready
from nodeagent.objects.yamljson import MAX_VALUES, DocumentError, load_json, load_yaml

STREAMING = ("exec", "attach", "portforward")  # pods' subresources served over WebSocket

log = logging.getLogger("nodeagent.api")

MAX_BODY_BYTES = 3 * 1024 * 1024  # Kubernetes' limit for a request body
BODY_TIMEOUT_S = 30.0
JSON = "application/json"
JSON_TYPES = {"application/json", "application/merge-patch+json", "application/json-patch+json",
              "application/strategic-merge-patch+json"}
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml"}
PATCH_TYPES = {"application/merge-patch+json", "application/json-patch+json",
               "application/strategic-merge-patch+json"}
APPLY_PATCH = "application/apply-patch+yaml"


def json_response(obj: Any, code: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=code, media_type=JSON)


def reply(request: Request, obj: Any, code: int = 200) -> Response:
    """An object or list in the form the client asked for first: protobuf for client-go's
    typed clients when every field has a number there, else JSON (which they take too)."""
    if pb.wants_protobuf(request.headers.get("accept", "")) and isinstance(obj, dict):
        try:
            body = pb.encode_list(obj) if "items" in obj else pb.encode(obj)
        except pb.EncodeError:
            return json_response(obj, code)
        return Response(body, status_code=code, media_type=pb.MEDIA_TYPE)
    return json_response(obj, code)


FIELD_VALIDATIONS = ("Strict", "Warn", "Ignore")


@contextlib.contextmanager
def field_validation(request: Request) -> Iterator[list[str]]:
    """The write's fieldValidation (Warn unless said, as Kubernetes'), in force while its
    body is decoded; yields the warnings to send."""
    value = request.query_params.get("fieldValidation") or "Warn"
    if value not in FIELD_VALIDATIONS:
        raise ApiError.bad_request(f'fieldValidation: invalid value "{value}": must be one '
                                   f'of {", ".join(FIELD_VALIDATIONS)}')
    warnings: list[str] = []
    token = FIELD_VALIDATION.set((value, warnings))
    try:
        yield warnings
    finally:
        FIELD_VALIDATION.reset(token)


# At most this many Warning headers, each at most this long, then one saying how many
# more: a body with thousands of unknown fields made a header block no client would read.
MAX_WARNINGS, MAX_WARNING_CHARS = 32, 256


def warned(response: Response, warnings: list[str]) -> Response:
    """Kubernetes' Warning headers (RFC 7234 code 299), which kubectl prints."""
    unique = list(dict.fromkeys(warnings))
    shown = unique[:MAX_WARNINGS]
    if len(unique) > MAX_WARNINGS:
        shown.append(f"{len(unique) - MAX_WARNINGS} more warnings left out")
    for text in shown:
        response.headers.append(
            "Warning", f'299 - "{_header_quoted(text[:MAX_WARNING_CHARS])}"')
    return response


def _header_quoted(text: str) -> str:
    """A quoted-string's inside for a header: quotes and backslashes escaped, control
    and non-ASCII characters as escapes (a field name is the client's, and may hold any)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code > 0x7E:
            out.append(ch.encode("ascii", "backslashreplace").decode())
        else:
            out.append(ch)
    return "".join(out)


def _rendered_list(request: Request, data: bytes, kind: str, table: str | None,
                   include: str) -> Response:
    result = orjson.loads(data)
    if table is not None:
        return json_response(to_table(kind, result["items"], result["metadata"],
                                      version=table, include=include))
    return reply(request, result)


def delete_options(request: Request, opts: dict[str, Any]) -> dict[str, Any]:
    """DeleteOptions (a DELETE's body and query, or an Eviction's) as ObjectStore.delete's
    arguments."""
    q = request.query_params
    grace = opts.get("gracePeriodSeconds")
    if q.get("gracePeriodSeconds") is not None:
        grace = _int_param(q, "gracePeriodSeconds", 0, minimum=-1)
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise ApiError.bad_request("gracePeriodSeconds must be an integer")
    pre = opts["preconditions"] if isinstance(opts.get("preconditions"), dict) else {}
    propagation = q.get("propagationPolicy") or opts.get("propagationPolicy")
    if opts.get("orphanDependents") is True:  # the older spelling of Orphan
        propagation = propagation or "Orphan"
    return {"grace_period_s": grace, "preconditions_uid": pre.get("uid"),
            "preconditions_rv": pre.get("resourceVersion"),
            "dry_run": _dry_run(request) or opts.get("dryRun") == ["All"],
            "propagation": propagation}


def _one_metrics(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
    found = next((m for m in items if m["metadata"]["name"] == name), None)
    if found is None:
        raise ApiError(404, "NotFound", f'{what}.metrics.k8s.io "{name}" not found')
    return found


def error_response(exc: ApiError) -> Response:
    response = json_response(exc.to_status(), exc.code)
    if exc.code == 429 and exc.details:
        response.headers["Retry-After"] = str(exc.details.get("retryAfterSeconds", 1))
    return response


@dataclass(frozen=True, kw_only=True)
class WatchLimits:
    """Watches are long-lived and every write is matched against each: one client's
    thousands of them once cost 0.67 s of CPU per write and every descriptor."""

    per_client: int = 100
    """Watches one client address may hold (an informer holds one per resource)."""
    total: int = 1000
    """Watches all clients together may hold."""


# What anyone may GET without credentials, as kube-apiserver's system:public-info-viewer
# allows, and the CA bundle a joining agent checks against its token's pin (k3s's /cacerts).
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/cacerts"})
INSECURE_USER = User("system:insecure", ("system:masters",))


class ApiApp:
    """ASGI application.  ``ready()`` decides /readyz; the agent sets it.

    With ``authenticator`` every request is authenticated (client certificate from
    ``tls``, or bearer token) and authorized by ``authorizer``; an anonymous one gets 401
    but on PUBLIC_PATHS, a forbidden one 403.  Without one (``--insecure-http``, and
    tests of the HTTP layer alone) every caller may do everything."""

    def __init__(self, objects: ObjectStore, *, ready: Callable[[], bool] = lambda: True,
                 body_timeout_s: float = BODY_TIMEOUT_S, logs: PodLogs | None = None,
                 exec_: Exec | None = None, metrics: Any = None, gossip: Any = None,
                 server_names: frozenset[str] = frozenset(),
                 watch_limits: WatchLimits = WatchLimits(),
                 authenticator: Authenticator | None = None,
                 authorizer: Authorizer | None = None, tls: TlsPeers | None = None,
                 ca_bundle: Callable[[], bytes] | None = None,
                 join: Callable[[User, Any], Awaitable[Any]] | None = None,
                 take_encryption: Callable[[bytes], Any] | None = None,
                 audit: AuditLog | None = None,
                 rate_limits: RateLimits | None = None,
                 token_signer: TokenSigner | None = None,
                 take_ca_step: Callable[[bytes], Any] | None = None,
                 renew: Callable[[User, Any], Any] | None = None) -> None:
        self.objects = objects
        self.authenticator = authenticator
        self.rbac = Rbac(objects)
        self.authorizer = authorizer or chain(Servers(), NodeAuthorizer(objects), self.rbac)
        self.tls = tls
        self.ca_bundle = ca_bundle  # the CAs' PEM, for /cacerts
        self.join = join  # POST /join: (bootstrap user, body) -> credentials
        self.take_encryption = take_encryption  # POST /encryption-config (apiservers.py)
        self.audit = audit  # every request's who, what and answer (audit.py)
        self.rate_limits = rate_limits  # requests per identity (ratelimit.py)
        self.token_signer = token_signer  # ServiceAccount tokens (a server's: satokens.py)
        self.take_ca_step = take_ca_step  # POST /ca-rotation (a server's: carotation.py)
        self.renew = renew  # POST /renew: a node's new certificates (a server's: join.py)
        # A node that is no server holds no Secrets (api/replica.py): where to ask instead.
        self.secrets_at: Callable[[], str] | None = None
        self.logs = logs  # this node's pods' logs; None: it runs no pods
        self.exec = exec_  # runs a command in a pod's container (pods/exec)
        self.attach: Exec | None = None  # a pod's container's own stdio (pods/attach)
        self.dial: Dial | None = None  # a connection into a pod's network (portforward)
        self.metrics = metrics  # this node's usage (podmanager.metrics.Metrics), or None
        self.gossip = gossip  # membership.Membership, or None without gossip
        self.ready = ready
        self.server_names = server_names  # Host names this server answers (origin.py)
        self.watch_limits = watch_limits
        self.watches: Counter[str] = Counter()  # open watches by client address
        self.body_timeout_s = body_timeout_s
        self.encoders: dict[tuple[Resource | None, bool], EventEncoder] = {}
        self.proxy = Proxy()  # pods/, services/ and nodes/proxy
        # This server's client context for a node's agent (nodes/proxy); None without TLS.
        self.agent_tls: Callable[[], ssl.SSLContext] | None = None
        self.node_name: str | None = None  # the node this agent runs pods for, if any

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        host = foreign_host(scope, self.server_names)
        if scope["type"] == "websocket":
            origin = foreign_origin(scope)
            if host is not None or origin is not None:
                # Closing before accepting refuses the upgrade with 403.
                log.warning("refused a WebSocket upgrade host=%r origin=%r", host, origin)
                await send({"type": "websocket.close", "code": 1008})
                return
            received = received_at()
            try:
                target = self._check_websocket(scope)
                elsewhere = self._pods_node(scope, target)
                if elsewhere is not None:  # relayed to the agent of the pod's node
                    await relay_websocket(receive, send, elsewhere, _path_and_query(scope),
                                          list(scope.get("subprotocols") or []))
                    self._audit(scope, 101, received)
                    return
                pod = self._port_forward_target(target) \
                    if target.subresource == "portforward" else None
            except ApiError as exc:
                self._audit(scope, exc.code, received)
                await _refuse_websocket(send, exc)
                return
            self._audit(scope, 101, received)
            if pod is not None:  # a port-forward (to a running pod, on an agent that dials)
                assert self.dial is not None
                ws = WebSocket(scope, receive, send)
                if PORT_FORWARD not in (scope.get("subprotocols") or []):
                    await ws.close(code=1002, reason=f"subprotocol {PORT_FORWARD} is required")
                    return
                await ws.accept(subprotocol=PORT_FORWARD)
                await serve_portforward(ws, pod, self.dial)
            elif target.subresource == "attach":
                await serve_exec(scope, receive, send, self.objects, self.attach, "attach")
            else:
                await serve_exec(scope, receive, send, self.objects, self.exec)
            return
        if scope["type"] != "http":
            return
        received = received_at()
        request = Request(scope, receive)
        try:
            if host is not None:
                raise ApiError(403, "Forbidden", f"the Host {host!r} is not a name of this "
                               "server: use its address or one of its names")
            scope["nodeagent.user"] = self._authenticate(scope)
            response = await self.dispatch(request)
        except ApiError as exc:
            response = error_response(exc)
            if _heavy(request):
                # Its traceback holds the frames that hold the parsed body: a wide one (a
                # million small lists) takes 60 ms to free, so it is freed in a thread.
                refused = [exc.with_traceback(None), exc.__traceback__]
                del exc
                await off_loop(True, refused.clear)
        except Exception:
            log.exception("internal error method=%s path=%s", request.method, request.url.path)
            response = json_response(status_object(500, "InternalError",
                                                   "an internal error occurred"), 500)
        self._audit(scope, response.status_code, received)
        await response(scope, receive, send)

    def _audit(self, scope: dict[str, Any], code: int, received: str) -> None:
        if self.audit is not None:
            self.audit.record(scope, scope.get("nodeagent.user"), code,
                              scope.get("nodeagent.attrs"), received)

    # --- who, and may they --------------------------------------------------------------

    def _authenticate(self, scope: dict[str, Any]) -> User:
        """The caller; 401 for an anonymous one outside PUBLIC_PATHS."""
        if self.authenticator is None:
            return INSECURE_USER
        cert = self.tls.identity(scope.get("client")) if self.tls is not None else None
        user = self.authenticator.authenticate(cert, scope.get("headers") or [])
        path = scope.get("path", "").rstrip("/") or "/"
        if user.anonymous and not (path in PUBLIC_PATHS and scope.get("method", "GET") in
                                   ("GET", "HEAD")):
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if self.rate_limits is not None and path not in PUBLIC_PATHS:
            retry = self.rate_limits.take(user)
            if retry is not None:
                scope["nodeagent.user"] = user
                raise ApiError.too_many(f"too many requests from {user.name}: try again in "
                                        f"{retry.after_s}s", retry.after_s)
        return user

    def _authorize(self, request: Request, target: Target | None, path: str,
                   websocket: bool = False) -> None:
        """403 unless the caller may make this request (authz.py)."""
        user: User = request.scope.get("nodeagent.user", ANONYMOUS)
        if self.authenticator is None or (path in PUBLIC_PATHS and
                                          request.method in ("GET", "HEAD")):
            return  # system:public-info-viewer's, bound to everyone (and /cacerts)
        self._authorize_attributes(request_attributes(
            user, request.method, path, target, watch=_truthy(request.query_params.get("watch")),
            websocket=websocket), request.scope)

    def _authorize_attributes(self, attrs: Attributes,
                              scope: MutableMapping[str, Any] | None = None) -> None:
        if scope is not None:
            scope["nodeagent.attrs"] = attrs  # for the audit log
        if self.authenticator is None:
            return
        decision, reason = self.authorizer.authorize(attrs)
        if decision is not Decision.ALLOW:
            details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource} \
                if attrs.resource_request else None
            raise ApiError(403, "Forbidden", forbidden_message(attrs, reason), details=details)

    def _check_websocket(self, scope: dict[str, Any]) -> Target:
        """Authentication and authorization of an upgrade (``pods/exec``, ``attach`` or
        ``portforward``, each a create); the pod subresource it is for."""
        scope["nodeagent.user"] = self._authenticate(scope)
        path = scope.get("path", "").rstrip("/") or "/"
        request = Request({**scope, "type": "http", "method": "GET"})
        target = parse_resource_path(path)
        try:
            self._authorize(request, target, path, websocket=True)
        finally:
            scope["nodeagent.attrs"] = request.scope.get("nodeagent.attrs")
        if target is None or target.resource.kind != "Pod" or target.name is None or \
                target.subresource not in STREAMING:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return target

    def _pods_node(self, scope: MutableMapping[str, Any], t: Target) -> Location | None:
        """Where to relay a request for a pod's processes, logs or ports: its node's agent
        when that is another agent (noderelay.py), else None (served here).  A request
        relayed to this server is answered here, never relayed on."""
        if t.name is None:
            return None
        pod = self.objects.get(PODS, self._ns(t), t.name)
        node = (pod.get("spec") or {}).get("nodeName")
        relayed = RELAYED in Headers(scope=scope)
        if not node or node == self.node_name or relayed:
            return None
        return node_location(self.objects.get(NODES, None, node), "", "", self.agent_tls)

    def _port_forward_target(self, t: Target) -> dict[str, Any]:
        """The running pod a port-forward is for, refused (before the upgrade) otherwise."""
        pod = self.objects.get(t.resource, self._ns(t), t.name or "")
        if self.dial is None:
            raise ApiError(404, "NotFound", "this agent runs no pods")
        check_target(pod)
        return pod

    # --- dispatch -------------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        method = request.method
        review = reviews.match(path)
        if review is not None:
            return await self._review(request, *review)
        # metrics.k8s.io is served here, not from the kinds table; authorized as the
        # resources it reads (authz.metrics_attributes), its discovery as a path.
        metrics = path.startswith("/apis/metrics.k8s.io/")
        target = None if metrics else parse_resource_path(path)
        attrs = metrics_attributes(request.scope.get("nodeagent.user", ANONYMOUS), path) \
            if metrics and self.authenticator is not None else None
        if attrs is not None:
            self._authorize_attributes(attrs, request.scope)
        else:
            self._authorize(request, target, path)
        if target is not None:
            return await self._resource(request, target, method)
        if metrics and path.startswith("/apis/metrics.k8s.io/v1beta1"):
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed", f"metrics are read-only ({method})")
            return await self._metrics([p for p in path.split("/") if p][3:],
                                       RELAYED in request.headers)
        if path == "/cacerts" and method in ("GET", "HEAD") and self.ca_bundle is not None:
            return Response(self.ca_bundle(), media_type="application/x-pem-file")
        if path == "/encryption-config" and method == "POST" and \
                self.take_encryption is not None:
            return json_response(self.take_encryption(await self._raw_body(request)))
        if path == "/ca-rotation" and method == "POST" and self.take_ca_step is not None:
            return json_response(self.take_ca_step(await self._raw_body(request)))
        if path == "/renew" and method == "POST" and self.renew is not None:
            return json_response(self.renew(request.scope["nodeagent.user"],
                                            await self._plain_json(request)))
        if path == "/join" and method == "POST" and self.join is not None:
            return json_response(await self.join(request.scope["nodeagent.user"],
                                                 await self._plain_json(request)))
        view = self._cluster_view(path, method)
        if view is not None:
            return view
        if path == "/raft/hello" and method == "POST":
            return json_response(hello(self.objects.store, await self._plain_json(request)))
        if path.startswith("/replica/"):
            return await self._replica(request, path[len("/replica/"):])
        if path in ("/api", "/apis") and method in ("GET", "HEAD"):
            agg = discovery.aggregated_version(request.headers.get("accept", ""))
            if agg is not None:
                return Response(discovery.aggregated_bytes(path == "/api", agg),
                                media_type=discovery.aggregated_media_type(agg))
        if path.startswith("/openapi/") and method in ("GET", "HEAD"):
            return serve_openapi(request, path)
        simple = self._simple_routes(path)
        if simple is not None:
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed",
                               f"the server does not allow this method on the requested "
                               f"resource ({method} {path})")
            return await simple()
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _resource(self, request: Request, target: Target, method: str) -> Response:
        if target.subresource == "proxy":
            return await self._proxy(request, target)
        handler = {
            "GET": self.handle_get,
            "POST": self.handle_post,
            "PUT": self.handle_put,
            "PATCH": self.handle_patch,
            "DELETE": self.handle_delete,
        }.get(method)
        if handler is None:
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on "
                           f"the requested resource ({method})")
        if target.resource is SECRETS and self.secrets_at is not None:
            raise ApiError(503, "ServiceUnavailable", "this agent holds no Secrets: a node that "
                           "is not a server keeps only what its own pods need, and asks a "
                           f"server for that; ask a server ({self.secrets_at() or 'any'})")
        if target.subresource in STREAMING:
            # kubectl's SPDY fallback (POST with Upgrade: SPDY/3.1) lands here too: the
            # HTTP server upgrades to WebSocket only.
            raise ApiError.bad_request(f"{target.subresource} is served over a WebSocket "
                                       "upgrade: Upgrade request required")
        if method == "GET":
            await self.objects.read_barrier()
        return await handler(request, target)

    async def _proxy(self, request: Request, t: Target) -> Response:
        """HTTP of any method to the pod, Service endpoint or node named (resourceproxy.py);
        the path goes on as it came, encoded."""
        if t.name is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        scheme, name, port = split_scheme_name_port(t.name)
        ns = self._ns(t)
        kind = t.resource.kind
        if kind == "Pod":
            where = pod_location(self.objects.get(PODS, ns, name), scheme, port)
        elif kind == "Service":
            where = service_location(self.objects.get(SERVICES, ns, name),
                                     self.objects.find(ENDPOINTS, ns, name),
                                     lambda pns, pod: self.objects.find(PODS, pns, pod),
                                     scheme, port)
        else:
            where = node_location(self.objects.get(NODES, None, name), scheme, port,
                                  self.agent_tls)
        path = _path_and_query(request.scope).partition("?")[0]
        marker = f"/{t.name}/proxy"
        cut = path.find(marker)
        if cut < 0:  # the name was percent-encoded in the path
            path = request.url.path
            cut = path.find(marker)
        cut += len(marker)
        return await self.proxy.forward(request, await self._raw_body(request), where,
                                        path[cut:], path[:cut])

    async def _review(self, request: Request, review: reviews.Review,
                      namespace: str) -> Response:
        """An access or rules review (reviews.py): create-only, answered, not stored."""
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", f"{review.plural} can only be created")
        user: User = request.scope.get("nodeagent.user", ANONYMOUS)
        self._authorize_attributes(Attributes(user, "create", True, api_group=review.group,
                                              api_version="v1", resource=review.plural,
                                              namespace=namespace, path=request.url.path),
                                   request.scope)
        body = await self._body(request)
        return json_response(reviews.answer(
            review, namespace, body, user, self.authorizer,
            lambda u, ns: list(self.rbac.policy().rules_for(u, ns))), 201)

    def _cluster_view(self, path: str, method: str) -> Response | None:
        """GET /raft and GET /gossip/members: read-only, on the API and the operator socket."""
        if method != "GET":
            return None
        if path == "/raft":
            return json_response(raft_status(self.objects.store))
        if path == "/gossip/members":
            return json_response({"members": self._membership().rows()})
        return None

    def _membership(self) -> Any:
        if self.gossip is None:
            raise ApiError(404, "NotFound", "this agent does not gossip (no --gossip-listen)")
        return self.gossip

    async def _replica(self, request: Request, what: str) -> Response:
        method = request.method
        # A node that is no server gets a copy without Secrets, and writes as itself.
        user: User = request.scope.get("nodeagent.user", INSECURE_USER)
        node = node_name(user) if SERVER_GROUP not in user.groups and \
            self.authenticator is not None else None
        if what == "stream" and method == "GET":
            return replica.stream(self.objects, request.query_params.get("revision", "0"),
                                  secrets=node is None)
        if what == "txn" and method == "POST":
            if _content_type(request) != replica.MEDIA_TYPE:
                raise ApiError(415, "UnsupportedMediaType",
                               f"a transaction is sent as {replica.MEDIA_TYPE}")
            return await replica.txn(self.objects, await self._raw_body(request), node)
        if what == "barrier" and method == "POST":
            return await replica.barrier(self.objects)
        raise ApiError(404, "NotFound", f"no such replica call ({method} /replica/{what})")

    def _simple_routes(self, path: str) -> Callable[[], Awaitable[Response]] | None:
        async def const(obj: Any) -> Response:
            return json_response(obj)

        async def text(body: str, code: int = 200) -> Response:
            return Response(body, status_code=code, media_type="text/plain")

        if path == "/version":
            return lambda: const(discovery.version_info())
        if path in ("/healthz", "/livez"):
            return lambda: text("ok")
        if path == "/readyz":
            return lambda: text("ok") if self.ready() else text("store not ready", 503)
        if path == "/api":
            return lambda: const(discovery.api_versions())
        if path == "/apis":
            return lambda: const(discovery.api_group_list())
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "api":
            doc = discovery.resource_list("", parts[1])
            return (lambda: const(doc)) if doc else _not_found
        if len(parts) == 2 and parts[0] == "apis":
            grp = discovery.api_group(parts[1])
            return (lambda: const(grp)) if grp else _not_found
        if len(parts) == 3 and parts[0] == "apis":
            doc = discovery.resource_list(parts[1], parts[2])
            return (lambda: const(doc)) if doc else _not_found
        return None

    # --- verbs ----------------------------------------------------------------------------

    async def handle_get(self, request: Request, t: Target) -> Response:
        q = request.query_params
        if t.subresource == "log" and t.name is not None:
            elsewhere = self._pods_node(request.scope, t)
            if elsewhere is not None:
                path = _path_and_query(request.scope).partition("?")[0]
                return await self.proxy.forward(request, b"", elsewhere, path, "",
                                                ((RELAYED, "1"),))
            return await self._pod_log(self.objects.get(t.resource, self._ns(t), t.name), q)
        table = table_version(request.headers.get("accept", ""))
        include = q.get("includeObject", "PartialObjectMetadata")
        if t.name is None:
            if _truthy(q.get("watch")):
                return self._watch(request, t)
            limit = _int_param(q, "limit", 0)
            result = self.objects.list(
                t.resource, t.namespace, label_selector=q.get("labelSelector"),
                field_selector=q.get("fieldSelector"), limit=limit,
                continue_token=q.get("continue"), resource_version=q.get("resourceVersion"),
                raw=True)
            if table is None and not pb.wants_protobuf(request.headers.get("accept", "")):
                return json_response(result)
            # A Table or protobuf list is made from every item decoded: in the worker
            # thread (2000 pods took 160 and 340 ms, the event loop's to hold otherwise).
            return await off_loop(True, _rendered_list, request, orjson.dumps(result),
                                  t.resource.kind, table, include)
        if _truthy(q.get("watch")):
            raise ApiError.bad_request("watch of a single object: use a list watch with "
                                       "fieldSelector=metadata.name=NAME")
        obj = self.objects.get(t.resource, self._ns(t), t.name)
        if t.subresource == "scale":
            return json_response(scale_of(obj))
        if table is not None and t.subresource is None:
            meta = {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")}
            return json_response(to_table(t.resource.kind, [obj], meta, version=table,
                                          include=include))
        return reply(request, obj)

    async def handle_post(self, request: Request, t: Target) -> Response:
        if t.subresource == "binding" and t.name is not None:
            body = await self._body(request)
            await self.objects.bind(self._ns(t) or "", t.name, body)
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Success", "code": 201}, 201)
        if t.subresource == "eviction" and t.name is not None:
            return json_response(await self._evict(request, t, await self._body(request)), 201)
        if t.subresource == "token" and t.name is not None:
            # kubectl create token sends it as protobuf
            return json_response(self._token_request(
                request, t, await self._body(request)), 201)
        if t.name is not None:
            raise ApiError(405, "MethodNotAllowed", "POST is for collections: the name goes "
                           "in the body")
        body = await self._body(request)
        with field_validation(request) as warnings:
            obj = await self.objects.create(t.resource, self._ns(t, creating=True), body,
                                            dry_run=_dry_run(request), heavy=_heavy(request))
        return warned(reply(request, obj, 201), warnings)

    async def _evict(self, request: Request, t: Target, body: Any) -> dict[str, Any]:
        """POST pods/NAME/eviction (policy/v1 Eviction): the pod is deleted with the
        Eviction's deleteOptions (kubectl drain's way).  No PodDisruptionBudgets exist
        here, so none can refuse it."""
        if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
            raise ApiError.bad_request("the body must be a policy/v1 Eviction")
        name = (body.get("metadata") or {}).get("name")
        if name not in (None, t.name):
            raise ApiError.bad_request(f"name in the Eviction ({name}) does not match the "
                                       f"pod's ({t.name})")
        opts = body.get("deleteOptions") or {}
        if not isinstance(opts, dict):
            raise ApiError.bad_request("deleteOptions must be an object")
        await self.objects.delete(PODS, self._ns(t), t.name or "",
                                  **delete_options(request, opts))
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}

    def _token_request(self, request: Request, t: Target, body: Any) -> dict[str, Any]:
        if self.token_signer is None:
            raise ApiError(404, "NotFound", "this agent signs no ServiceAccount tokens: ask a "
                           "server (one that holds the cluster CA's key)")
        return serviceaccounts.token_request(
            self.token_signer, self.objects.find, request.scope.get("nodeagent.user", ANONYMOUS),
            self._ns(t) or "default", t.name or "", body, dt.datetime.now(dt.UTC))

    async def handle_put(self, request: Request, t: Target) -> Response:
        if t.name is None:
            raise ApiError(405, "MethodNotAllowed", "PUT needs an object name")
        body = await self._body(request)
        if t.subresource == "scale":
            return await self._scale(request, t, body, None)
        sub = t.subresource if t.subresource in WRITABLE_PARTS else None
        with field_validation(request) as warnings:
            obj = await self.objects.update(t.resource, self._ns(t), t.name, body,
                                            subresource=sub, dry_run=_dry_run(request),
                                            heavy=_heavy(request), manager=_manager(request))
        return warned(reply(request, obj), warnings)

    async def handle_patch(self, request: Request, t: Target) -> Response:
        if t.name is None:
            raise ApiError(405, "MethodNotAllowed", "PATCH needs an object name")
        ctype = _content_type(request)
        if ctype == APPLY_PATCH:
            return await self._apply(request, t)
        if ctype not in PATCH_TYPES:
            raise ApiError(415, "UnsupportedMediaType", f'the body of the request was in an '
                           f'unknown format - accepted media types include: '
                           f'{", ".join(sorted(PATCH_TYPES))}')
        body = await self._body(request, patch=True)
        if t.subresource == "scale":
            return await self._scale(request, t, body, ctype)
        sub = t.subresource if t.subresource in WRITABLE_PARTS else None
        with field_validation(request) as warnings:
            obj = await self.objects.patch(t.resource, self._ns(t), t.name, body, ctype,
                                           subresource=sub, dry_run=_dry_run(request),
                                           heavy=_heavy(request), manager=_manager(request))
        return warned(reply(request, obj), warnings)

    async def _apply(self, request: Request, t: Target) -> Response:
        """Server-side apply (kubectl apply --server-side): the body is the configuration
        (YAML or JSON); ``fieldManager`` is required, ``force`` takes conflicting fields."""
        if t.subresource not in (None, "status"):
            raise ApiError(415, "UnsupportedMediaType", f"{t.subresource} takes no apply patch")
        raw = await self._raw_body(request)
        if not raw.strip():
            raise ApiError.bad_request("the request body is empty")
        config = await self._parse(request, raw, "application/yaml")
        if not request.query_params.get("fieldManager"):
            raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: "
                           "fieldManager: Required value: is required for apply patch")
        force = request.query_params.get("force", "false")
        if force not in ("true", "false"):
            raise ApiError.bad_request(f"force must be true or false, not {force!r}")
        who = Manager(_manager(request).name, "Apply", t.subresource)
        with field_validation(request) as warnings:
            obj, created = await self.objects.apply(
                t.resource, self._ns(t, creating=True), t.name or "", config, manager=who,
                force=force == "true", dry_run=_dry_run(request), heavy=_heavy(request))
        return warned(reply(request, obj, 201 if created else 200), warnings)

    async def _scale(self, request: Request, t: Target, body: Any,
                     patch_type: str | None) -> Response:
        """PUT or PATCH of ``scale``: the Scale (patched, for a PATCH) gives the object's
        new ``spec.replicas``; a resourceVersion in it is a precondition on the object."""
        name = t.name or ""
        current = scale_of(self.objects.get(t.resource, self._ns(t), name))
        if patch_type == "application/json-patch+json":
            wanted = json_patch(body)(current)
        elif patch_type is not None:
            if not isinstance(body, dict):
                raise ApiError.bad_request("a patch of scale must be a JSON object")
            wanted = merge_patch(current, body)
        else:
            wanted = body
        try:
            replicas = replicas_of(wanted)
        except ValueError as exc:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: {exc}'
                           ) from None
        meta = body.get("metadata") if isinstance(body, dict) else None
        rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        change: dict[str, Any] = {"spec": {"replicas": replicas}}
        if rv:
            change["metadata"] = {"resourceVersion": rv}
        obj = await self.objects.patch(t.resource, self._ns(t), name, change,
                                       "application/merge-patch+json",
                                       dry_run=_dry_run(request))
        return json_response(scale_of(obj))

    async def handle_delete(self, request: Request, t: Target) -> Response:
        opts: dict[str, Any] = {}
        raw = await self._raw_body(request)
        if raw.strip():
            ctype = _content_type(request)
            if ctype not in JSON_TYPES | YAML_TYPES | {pb.MEDIA_TYPE}:
                raise ApiError(415, "UnsupportedMediaType", "DeleteOptions must be sent as "
                               f"application/json, application/yaml or {pb.MEDIA_TYPE} "
                               f"(got {ctype!r})")
            parsed = await off_loop(len(raw) > HEAVY_BYTES, pb.decode, raw) \
                if ctype == pb.MEDIA_TYPE else await self._parse(request, raw, ctype)
            if not isinstance(parsed, dict):
                raise ApiError.bad_request("DeleteOptions must be a JSON object")
            opts = parsed
        how = delete_options(request, opts)
        if t.name is None:
            return await self._delete_collection(request, t, how["grace_period_s"],
                                                 how["dry_run"])
        obj, _gone = await self.objects.delete(t.resource, self._ns(t), t.name, **how)
        return reply(request, obj)

    async def _delete_collection(self, request: Request, t: Target, grace: int | None,
                                 dry: bool) -> Response:
        q = request.query_params
        listed = self.objects.list(t.resource, t.namespace, label_selector=q.get("labelSelector"),
                                   field_selector=q.get("fieldSelector"))
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                obj, _ = await self.objects.delete(t.resource, meta.get("namespace"),
                                                   meta["name"], grace_period_s=grace,
                                                   dry_run=dry)
                deleted.append(obj)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        listed["items"] = deleted
        return json_response(listed)

    async def _metrics(self, rest: list[str], relayed: bool) -> Response:
        """metrics.k8s.io/v1beta1: nodes, pods (all or one namespace's), as metrics-server:
        this node's from its cgroups, the others' asked of their agents (at once, a node
        that does not answer in time left out, as metrics-server leaves it out).  A
        request relayed here is answered with this node's only."""
        if not rest:
            return json_response(discovery.resource_list(discovery.METRICS_GROUP,
                                                         discovery.METRICS_VERSION))
        local = self.metrics
        others = [] if relayed or self.agent_tls is None else [
            n for n in self.objects.list(NODES, None)["items"]
            if n["metadata"]["name"] != self.node_name and is_ready(n)]
        if local is None and not others:
            raise ApiError(503, "ServiceUnavailable", "the server is currently unable to handle "
                           "the request (get pods.metrics.k8s.io): this agent runs no pods")
        base = "/apis/metrics.k8s.io/v1beta1/"
        if rest[0] == "nodes" and len(rest) <= 2:
            if len(rest) == 2:
                others = [n for n in others if n["metadata"]["name"] == rest[1]]
            nodes = ([local.node_metrics()] if local is not None else []) + await ask_nodes(
                others, lambda n: f"{base}nodes/{n['metadata']['name']}", self.agent_tls)
            if len(rest) == 2:
                return json_response(_one_metrics(nodes, rest[1], "nodes"))
            return json_response({"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                  "metadata": {}, "items": nodes})
        if rest == ["pods"] or (len(rest) in (3, 4) and rest[0] == "namespaces"
                                and rest[2] == "pods"):
            ns = rest[1] if len(rest) >= 3 else None
            items = local.pod_metrics(self.objects.list(PODS, ns)["items"]) \
                if local is not None else []
            listed = f"{base}namespaces/{ns}/pods" if ns else f"{base}pods"
            items += await ask_nodes(others, lambda _n: listed, self.agent_tls)
            if len(rest) == 4:
                return json_response(_one_metrics(items, rest[3], "pods"))
            return json_response({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                  "metadata": {}, "items": items})
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _pod_log(self, pod: dict[str, Any], query: Any) -> Response:
        if self.logs is None:
            raise ApiError(404, "NotFound", "this agent runs no pods: its node has no logs")
        body, more = await self.logs.serve(pod, query)
        if more is None:
            return Response(body, media_type="text/plain")

        async def chain() -> Any:
            yield body
            async for chunk in more:
                yield chunk
        return StreamingResponse(chain(), media_type="text/plain",
                                 headers={"Transfer-Encoding": "chunked"})

    def _watch(self, request: Request, t: Target) -> Response:
        client = request.client.host if request.client else ""
        limits, total = self.watch_limits, sum(self.watches.values())
        if self.watches[client] >= limits.per_client or total >= limits.total:
            raise ApiError.too_many(f"too many watches: {self.watches[client]} open from this "
                                    f"client (limit {limits.per_client}), {total} in all "
                                    f"(limit {limits.total})")
        response = self._start_watch(request, t)
        self.watches[client] += 1
        body = response.body_iterator

        async def counted() -> Any:
            try:
                async for chunk in body:
                    yield chunk
            finally:
                self.watches[client] -= 1
                if self.watches[client] <= 0:
                    del self.watches[client]
        response.body_iterator = counted()
        return response

    def _encoder(self, res: Resource, protobuf: bool) -> EventEncoder:
        """The shared encoder of the shape ``res`` shows (the stored one, or a view's) in
        the form asked: protobuf for client-go's typed clients, where the kind has it."""
        shape = (res if res.from_stored is not None else None,
                 protobuf and pb.kind_message(res.api_version, res.kind) is not None)
        if shape not in self.encoders:
            self.encoders[shape] = (ProtobufEncoder if shape[1] else EventEncoder)(
                shown=res.from_stored)
        return self.encoders[shape]

    def _start_watch(self, request: Request, t: Target) -> StreamingResponse:
        q = request.query_params
        sel = parse_label_selector(q.get("labelSelector"))
        fsel = FieldSelector.parse(q.get("fieldSelector"))
        rv = q.get("resourceVersion")
        timeout = q.get("timeoutSeconds")
        timeout_s = float(_int_param(q, "timeoutSeconds", 0)) if timeout else None
        store = self.objects.store
        prefix = t.resource.prefix(t.namespace)
        initial: list[bytes] = []
        initial_end: int | None = None
        bookmarks = _truthy(q.get("allowWatchBookmarks"))
        watch_list = _truthy(q.get("sendInitialEvents"))
        if watch_list and (not bookmarks or q.get("resourceVersionMatch") != "NotOlderThan"):
            raise ApiError(422, "Invalid", "sendInitialEvents: Forbidden: sendInitialEvents "
                           "requires allowWatchBookmarks=true and resourceVersionMatch="
                           "NotOlderThan")
        accept = request.headers.get("accept", "")
        table = table_version(accept)
        encoder = self._encoder(t.resource, pb.wants_protobuf(accept)) if table is None \
            else TableEncoder(
            t.resource.kind, table, q.get("includeObject", "PartialObjectMetadata"),
            t.resource.from_stored)
        at_least = 0
        if watch_list:
            try:
                at_least = int(rv) if rv not in (None, "") else 0
            except ValueError:
                raise ApiError.bad_request(f'invalid resource version "{rv}"') from None
        if watch_list or rv in (None, "", "0"):
            # Current state as ADDED events, then changes: read and register in one step.
            # A WatchList (sendInitialEvents) wants that state no older than resourceVersion
            # and ends it with a bookmark.
            items, _more, revision = store.range(prefix)
            if at_least > revision:
                raise ApiError(504, "Timeout", f"Too large resource version: {at_least}, "
                               f"current resource version: {revision}")
            watch, backlog = self.objects.watch(t.resource, t.namespace, revision + 1)
            initial = initial_lines(items, sel, fsel, encoder)
            initial_end = revision if watch_list else None
        else:
            try:
                start = int(rv) + 1
            except ValueError:
                raise ApiError.bad_request(f'invalid resource version "{rv}"') from None
            watch, backlog = self.objects.watch(t.resource, t.namespace, start)
        body = stream(t.resource, watch, initial, backlog, sel, fsel, encoder,
                      timeout_s=timeout_s, bookmarks=bookmarks,
                      current_revision=lambda: store.revision, initial_end=initial_end)
        media = pb.WATCH_MEDIA_TYPE if isinstance(encoder, ProtobufEncoder) else JSON
        return StreamingResponse(body, media_type=media,
                                 headers={"Transfer-Encoding": "chunked",
                                          "Cache-Control": "no-cache"})

    # --- bodies ---------------------------------------------------------------------------

    async def _raw_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > MAX_BODY_BYTES:
                    raise ApiError(413, "RequestEntityTooLarge",
                                   f"Request entity too large: limit is {MAX_BODY_BYTES}")
            except ValueError:
                raise ApiError.bad_request("invalid Content-Length") from None
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(self.body_timeout_s) as scope:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ApiError(413, "RequestEntityTooLarge",
                                   f"Request entity too large: limit is {MAX_BODY_BYTES}")
                chunks.append(chunk)
        if scope.cancelled_caught:
            raise ApiError(408, "Timeout", f"the request body was not received within "
                           f"{self.body_timeout_s:g}s")
        request.scope["nodeagent.body_bytes"] = size
        return b"".join(chunks)

    async def _plain_json(self, request: Request) -> Any:
        """A JSON body of the servers' and operators' calls (/raft): no YAML, parsed as
        any other body (off the loop when large: a wide one to /raft/hello held it 700 ms,
        on any agent)."""
        raw = await self._raw_body(request)
        return await off_loop(len(raw) > HEAVY_BYTES, _parse_json, raw)

    async def _body(self, request: Request, patch: bool = False) -> Any:
        """The body as a JSON value: JSON, YAML, or protobuf for the kinds protobuf.py
        reads (kubectl's typed clients send those)."""
        ctype = _content_type(request)
        if not patch and ctype == pb.MEDIA_TYPE:
            raw = await self._raw_body(request)
            return await off_loop(len(raw) > HEAVY_BYTES, pb.decode, raw)
        if ctype and not patch and ctype not in JSON_TYPES | YAML_TYPES:
            raise ApiError(415, "UnsupportedMediaType",
                           f'the body of the request was in an unknown format - accepted media '
                           f'types include: application/json, application/yaml '
                           f'(got "{ctype}")')
        raw = await self._raw_body(request)
        if not raw.strip():
            raise ApiError.bad_request("the request body is empty")
        if not ctype:
            # The apiserver reads a body without a type as JSON, and the official Python
            # client sends creates so; a browser's cross-site request, which could also
            # leave the type out, always names its Origin, and is refused.
            if "origin" in request.headers:
                raise ApiError(415, "UnsupportedMediaType", "the request has a body but no "
                               "Content-Type: send application/json or application/yaml")
            ctype = "application/json"
        return await self._parse(request, raw, ctype)

    @staticmethod
    async def _parse(request: Request, raw: bytes, ctype: str) -> Any:
        """A body as a JSON value, within the caps of objects/yamljson.py.  A large body,
        and any YAML (whose aliases make a small body a large value), is parsed in a
        thread so that no request holds the event loop for long; the value's size is
        what the object store weighs (_heavy)."""
        if ctype in YAML_TYPES:
            value, size = await off_loop(True, _parse_yaml, raw)
            request.scope["nodeagent.body_bytes"] = size
            return value
        return await off_loop(len(raw) > HEAVY_BYTES, _parse_json, raw)

    def _ns(self, t: Target, creating: bool = False) -> str | None:
        if not t.resource.namespaced:
            return None
        if t.namespace is None:
            if creating:
                raise ApiError.bad_request(f"{t.resource.plural} must be created in a namespace "
                                           f"(/api/.../namespaces/NAME/{t.resource.plural})")
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return t.namespace


def _parse_yaml(raw: bytes) -> tuple[Any, int]:
    """The one document of a YAML body, and its size as JSON (aliases can make it far
    larger than the body)."""
    try:
        docs = load_yaml(raw, max_expanded_bytes=MAX_BODY_BYTES)
    except DocumentError as exc:
        raise ApiError.bad_request(str(exc)) from None
    if len(docs) != 1:
        raise ApiError.bad_request("expected exactly one YAML document")
    return docs[0], len(orjson.dumps(docs[0]))


def _parse_json(raw: bytes) -> Any:
    try:  # a large body is counted before it is parsed (it runs in a worker thread then)
        return load_json(raw, max_values=MAX_VALUES if len(raw) > HEAVY_BYTES else None)
    except DocumentError as exc:
        raise ApiError.bad_request(f"the request body: {exc}") from None


async def _refuse_websocket(send: Any, exc: ApiError) -> None:
    """Answer an upgrade with the error's code and Status (hypercorn's
    websocket.http.response), as kube-apiserver answers a refused exec."""
    body = orjson.dumps(exc.to_status())
    await send({"type": "websocket.http.response.start", "status": exc.code,
                "headers": [(b"content-type", JSON.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})


def _path_and_query(scope: Mapping[str, Any]) -> str:
    """The request's path as it came (encoded) and its query."""
    raw = scope.get("raw_path") or scope.get("path", "").encode()
    query = scope.get("query_string") or b""
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


async def _not_found() -> Response:
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


def _manager(request: Request) -> Manager:
    """The writer's field manager: ``fieldManager``, else named by its User-Agent."""
    name = request.query_params.get("fieldManager")
    if name is not None and (len(name) > MAX_MANAGER_CHARS or not name.isprintable()):
        raise ApiError(422, "Invalid", "fieldManager: Invalid value: must be at most "
                       f"{MAX_MANAGER_CHARS} printable characters")
    return Manager(manager_name(name, request.headers.get("user-agent", "")))


def _heavy(request: Request) -> bool:
    """Whether the body (as received, or as expanded from YAML) is large enough that its
    work belongs off the loop (objects.off_loop)."""
    return int(request.scope.get("nodeagent.body_bytes", 0)) > HEAVY_BYTES


def _content_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("1", "true", "yes")


def _dry_run(request: Request) -> bool:
    return request.query_params.get("dryRun") == "All"


def _int_param(q: Any, name: str, default: int, minimum: int = 0) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError.bad_request(f'invalid value for {name}: "{raw}" is not an '
                                   "integer") from None
    if value < minimum:
        raise ApiError.bad_request(f"invalid value for {name}: must be >= {minimum}")
    return value


async def serve_api(app: ApiApp, listen: str, *, request_timeout_s: int = 30,
                    gate: ConnectionGate | None = None, tls: TlsPeers | None = None,
                    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; reports the bound addresses once listening.  ``listen`` is
    HOST:PORT, or unix:PATH for a socket left 0600 (the operator socket).  Connections
    over TCP pass ``gate`` (listen.py; default limits if None), and with ``tls`` speak
    TLS."""
    config = Config()
    config.bind = [listen]
    if listen.startswith("unix:"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(listen[len("unix:"):])  # a socket left by an earlier run
    config.accesslog = None
    config.errorlog = logging.getLogger("nodeagent.http")
    # Idle connections, and connections whose request headers never finish, are closed after
    # this.  (hypercorn's read_timeout would also cut long watches, where the client is
    # silent by design, so it stays off; stalled bodies get 408 from _raw_body.)
    config.keep_alive_timeout = float(request_timeout_s)
    config.ssl_handshake_timeout = float(request_timeout_s)
    config.graceful_timeout = 5.0
    config.backlog = 1024
    config.h11_max_incomplete_size = 64 * 1024
    config.max_app_queue_size = 64
    if not listen.startswith("unix:"):
        gate = gate or ConnectionGate(ConnectionLimits())
        await serve_gated(app, config, gate, tls=tls, task_status=task_status)
        return

    class _Status:
        def started(self, value: list[str]) -> None:
            os.chmod(listen[len("unix:"):], 0o600)
            task_status.started(value)
    await serve(app, config, task_status=_Status())  # type: ignore[arg-type]
