"""The operator socket: calls that change the cluster or read all of it, on a unix socket
of mode 0600 in the agent's 0700 data dir (as Docker's socket is root's alone).

    GET    /raft                          this server's view of Raft (also on the API)
    POST   /raft/transfer-leader?to=ID    hand leadership to ID
    POST   /raft/peers {"id", "address"}  add a server, as a learner
    DELETE /raft/peers/ID                 remove a server
    GET    /snapshot                      a backup of the whole store
    GET    /gossip/members                the members gossip knows (also on the API)
    GET    /gossip/keys                   the keyring's fingerprints, never the keys
    POST   /gossip/keys {"op", "key"}     install | use | remove a key everywhere
    POST   /gossip/events {"name", "payload"}  a user event to every member
    GET    /tokens                        the join tokens (never their secrets)
    POST   /tokens {"role", "ttlSeconds", "description"}  a new join token
    DELETE /tokens/ID                     revoke a join token
    POST   /certs/rotate-ca[?finish=true]  the cluster CA replaced, a step at a time
                                          (carotation.py)
    POST   /secrets/rotate-key            a new key for Secrets on every server, and every
                                          Secret sealed again with it

Until the API authenticates its clients, whoever reaches a TCP port is anyone; whoever
reaches this socket is root on this machine.  ``nodeagent raft|snapshot|keys|event``
use it by default.  Between agents, only the replica stream and ``/raft/hello``
(servers finding each other) stay on the network API.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from collections.abc import Callable
from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import Response

from nodeagent.api.raftadmin import add_peer, remove_peer, transfer_leader
from nodeagent.api.server import ApiApp, json_response
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import AgentPki
from nodeagent.join import ROLES, JoinToken, make_token_secret, token_rows
from nodeagent.objects.kinds import SECRETS

NAMESPACE_WAIT_S = 10.0  # kube-system, made by the first leader

__all__ = ["OperatorApp"]


class OperatorApp(ApiApp):
    """Served on the operator socket only; shares the agent's store and membership."""

    pki: AgentPki | None = None  # the agent's PKI (join tokens pin its CA); None: insecure
    name = ""  # the agent's node name (its entry in the servers' registry)
    peer_tls: Callable[[], ssl.SSLContext] | None = None  # its calls to the other servers
    ca_changed: Callable[[], object] | None = None  # a CA step taken here (renew now)

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        method = request.method
        store = self.objects.store
        view = self._cluster_view(path, method)
        if view is not None:
            return view
        if path == "/raft/transfer-leader" and method == "POST":
            return json_response(transfer_leader(store, request.query_params.get("to", "")), 202)
        if path == "/raft/peers" and method == "POST":
            return json_response(add_peer(store, await self._plain_json(request)), 202)
        if path.startswith("/raft/peers/") and method == "DELETE":
            return json_response(remove_peer(store, path.rsplit("/", 1)[1]), 202)
        if path == "/snapshot" and method == "GET":
            return await self._snapshot()
        if path.startswith("/gossip/"):
            return await self._gossip(request, path[len("/gossip/"):])
        if path == "/secrets/rotate-key" and method == "POST":
            if self.pki is None or self.peer_tls is None or not self.pki.is_signer():
                raise ApiError(409, "Conflict", "the keys of Secrets are a server's (an agent "
                               "holding the cluster's CA), not with --insecure-http")
            from nodeagent.apiservers import rotate_key
            return json_response(await rotate_key(self.objects, self.pki, self.name,
                                                  self.peer_tls()))
        if path == "/certs/rotate-ca" and method == "POST":
            if self.pki is None or self.peer_tls is None or not self.pki.is_signer():
                raise ApiError(409, "Conflict", "the CA is rotated on a server (an agent "
                               "holding the cluster's CA), not with --insecure-http")
            from nodeagent.carotation import rotate
            q = request.query_params
            timeout = q.get("timeoutSeconds", "300")
            if not timeout.isdigit() or not 1 <= int(timeout) <= 3600:
                raise ApiError.bad_request(f"timeoutSeconds: {timeout!r} is not 1..3600")
            return json_response(await rotate(
                self.objects, self.pki, self.name, self.peer_tls(),
                self.ca_changed or (lambda: None),
                finish=q.get("finish") in ("1", "true"), timeout_s=float(timeout)))
        if path == "/tokens" or path.startswith("/tokens/"):
            return await self._tokens(request, path[len("/tokens"):].lstrip("/"))
        raise ApiError(404, "NotFound", f"no such operator call ({method} {path})")

    async def _snapshot(self) -> Response:
        """A backup of the store (store/backup.py): on a Raft server or a copy, after a
        linearizable barrier, so it holds every write acknowledged before the request."""
        from nodeagent.store.backup import encode
        store = self.objects.store
        barrier = getattr(store, "read_barrier", None)
        if barrier is not None:
            await barrier()
        return Response(encode(store.mvcc.snapshot()), media_type="application/octet-stream")

    async def _create_in_kube_system(self, secret: dict[str, Any]) -> None:
        """A token asked for as the cluster forms (just after the first election) waits for
        the leader to make kube-system, rather than failing that it does not exist."""
        with trio.move_on_after(NAMESPACE_WAIT_S):
            while True:
                try:
                    await self.objects.create(SECRETS, "kube-system", secret)
                    return
                except ApiError as exc:
                    if exc.code != 404:
                        raise
                await trio.sleep(0.2)
        await self.objects.create(SECRETS, "kube-system", secret)  # its error, then

    async def _tokens(self, request: Request, ident: str) -> Response:
        """Join tokens: Secrets of type bootstrap.kubernetes.io/token in kube-system
        (join.py), made, listed and deleted here."""
        method = request.method
        if method == "GET" and not ident:
            secrets = self.objects.list(SECRETS, "kube-system")["items"]
            return json_response({"tokens": token_rows(secrets)})
        if method == "POST" and not ident:
            if self.pki is None or not self.pki.is_signer():
                raise ApiError(409, "Conflict", "join tokens are made on a server (an agent "
                               "holding the cluster's CA), not with --insecure-http")
            body: Any = await self._plain_json(request)
            if not isinstance(body, dict):
                raise ApiError.bad_request('body: expected {"role": "node|server", ...}')
            role, ttl = body.get("role", "node"), body.get("ttlSeconds", 86400)
            if role not in ROLES:
                raise ApiError.bad_request(f"role: {role!r} is not one of {', '.join(ROLES)}")
            if type(ttl) is not int or not 60 <= ttl <= 365 * 86400:
                raise ApiError.bad_request(f"ttlSeconds: {ttl!r} is not between 60 and "
                                           f"{365 * 86400}")
            description = body.get("description", "")
            if not isinstance(description, str) or len(description) > 256:
                raise ApiError.bad_request("description: expected a string of at most 256 "
                                           "characters")
            bootstrap, secret = make_token_secret(role, dt.timedelta(seconds=ttl), description)
            await self._create_in_kube_system(secret)
            token = JoinToken(self.pki.ca_hash(), bootstrap)
            return json_response({"token": str(token), "id": bootstrap.split(".")[0],
                                  "role": role, "expires": token_rows([secret])[0]["expires"]}, 201)
        if method == "DELETE" and ident:
            if not re.fullmatch(r"[a-z0-9]{6}", ident):
                raise ApiError.bad_request(f"{ident!r} is not a token id (6 characters)")
            await self.objects.delete(SECRETS, "kube-system", f"bootstrap-token-{ident}")
            return json_response({"revoked": ident})
        raise ApiError(404, "NotFound", f"no such token call ({method} /tokens/{ident})")

    async def _gossip(self, request: Request, what: str) -> Response:
        gossip = self._membership()
        method = request.method
        if what == "keys" and method == "GET":
            return json_response(gossip.keys())
        if what == "keys" and method == "POST":
            from nodeagent.gossip.keyring import KeyringError
            body: Any = await self._plain_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("op"), str) \
                    or not isinstance(body.get("key"), str):
                raise ApiError.bad_request('body: expected {"op": "install|use|remove", '
                                           '"key": "<base64 key or fingerprint>"}')
            try:
                gossip.key_op(body["op"], body["key"])
            except KeyringError as exc:
                raise ApiError.bad_request(str(exc)) from exc
            return json_response(gossip.keys(), 202)
        if what == "events" and method == "POST":
            body = await self._plain_json(request)
            if not isinstance(body, dict) or not isinstance(body.get("name"), str) \
                    or not isinstance(body.get("payload", ""), str):
                raise ApiError.bad_request('body: expected {"name": "...", "payload": "..."}')
            try:
                gossip.user_event(body["name"], body.get("payload", "").encode())
            except ValueError as exc:
                raise ApiError.bad_request(str(exc)) from exc
            return json_response({"sent": body["name"]}, 202)
        raise ApiError(404, "NotFound", f"no such gossip call ({method} /gossip/{what})")
