"""Joining a cluster with a token: what a new agent asks, and what a server hands it.

A join token is ``NA1-<ca hash>-<id>.<secret>``: the hash of the cluster CA's public
key (kubeadm's ``--discovery-token-ca-cert-hash``; Swarm's tokens carry it the same way)
and a bootstrap token (kubeadm's ``<id>.<secret>``, a Secret in kube-system that
expires; authn.BootstrapTokens).  The new agent:

1. fetches ``GET /cacerts`` without trusting anyone, and keeps the bundle only if its
   first CA's public key has the pinned hash -- so a server in the middle is found out
   before the secret is sent;
2. calls ``POST /join`` over TLS verified against that CA, with the token as its bearer
   token and a CSR for a key it made and keeps;
3. gets, as a node: its client certificate (``system:node:<name>``) and serving
   certificate signed, and the gossip keys; as a server (a server token) also the CA's
   key, with which it signs its own certificates from then on, and the keys Secrets are
   encrypted with in the store.  A server that gives its
   Raft id and address is added to Raft as a learner (the leader promotes it once caught
   up).

With no token, a bad or revoked or expired one, the answer is 401 and nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import re
import secrets
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nodeagent import pki
from nodeagent.api.authn import BOOTSTRAP_TOKEN_TYPE, User, secret_data
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import NODE_GROUP, AgentPki, node_user

__all__ = [
    "ROLES",
    "JoinError",
    "JoinToken",
    "RenewService",
    "csr_for",
    "join",
    "key_pem",
    "make_token_secret",
    "parse_join_token",
    "renewed_leaves",
    "token_rows",
]

log = logging.getLogger("nodeagent.join")

ROLES = ("node", "server")
ROLE_GROUP = "system:bootstrappers:nodeagent:{role}s"
DEFAULT_TTL = dt.timedelta(hours=24)  # kubeadm's default
_JOIN_TOKEN = re.compile(r"^NA1-([0-9a-f]{64})-([a-z0-9]{6}\.[a-z0-9]{16})$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


class JoinError(Exception):
    """A join that cannot go on: the message says why, for the agent's log."""


@dataclass(frozen=True)
class JoinToken:
    ca_hash: str  # sha256:<hex>
    bootstrap: str  # <id>.<secret>

    def __str__(self) -> str:
        return f"NA1-{self.ca_hash.removeprefix('sha256:')}-{self.bootstrap}"


def parse_join_token(text: str) -> JoinToken:
    m = _JOIN_TOKEN.match(text.strip())
    if m is None:
        raise JoinError("the join token is not NA1-<64 hex digits>-<6 chars>.<16 chars> "
                        "(as 'nodeagent token create' prints it)")
    return JoinToken("sha256:" + m.group(1), m.group(2))


# --- the tokens, as Secrets -----------------------------------------------------------

def make_token_secret(role: str, ttl: dt.timedelta = DEFAULT_TTL, description: str = "",
                      now: dt.datetime | None = None) -> tuple[str, dict[str, Any]]:
    """A new bootstrap token and the Secret that holds it (kubeadm's layout)."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    token_id = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(6))
    secret = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(16))
    expires = (now or dt.datetime.now(dt.UTC)) + ttl
    data = {"token-id": token_id, "token-secret": secret,
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage-bootstrap-authentication": "true",
            "auth-extra-groups": ROLE_GROUP.format(role=role),
            "description": description or f"nodeagent join token ({role})"}
    obj = {"apiVersion": "v1", "kind": "Secret", "type": BOOTSTRAP_TOKEN_TYPE,
           "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
           "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    return f"{token_id}.{secret}", obj


def token_rows(secrets_list: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The tokens among ``secrets_list`` as 'nodeagent token list' shows them: never the
    secret."""
    rows = []
    for obj in secrets_list:
        if obj.get("type") != BOOTSTRAP_TOKEN_TYPE:
            continue
        data = secret_data(obj.get("data"))
        groups = data.get("auth-extra-groups", "")
        role = next((r for r in ROLES if ROLE_GROUP.format(role=r) in groups), "?")
        rows.append({"id": data.get("token-id", "?"), "role": role,
                     "expires": data.get("expiration", "?"),
                     "description": data.get("description", "")})
    return rows


# --- the server's side ----------------------------------------------------------------

class JoinService:
    """POST /join, on a server (it holds the CA's key).  ``gossip_keys()`` gives the
    gossip keyring's keys (empty: gossip is not encrypted); ``add_server(id, address)``
    adds a joining server to Raft as a learner."""

    def __init__(self, agent_pki: AgentPki, gossip_keys: Any, add_server: Any) -> None:
        self.pki = agent_pki
        self.gossip_keys = gossip_keys
        self.add_server = add_server

    async def __call__(self, user: User, body: Any) -> dict[str, Any]:
        role = next((r for r in ROLES if ROLE_GROUP.format(role=r) in user.groups), None)
        if role is None:
            raise ApiError(403, "Forbidden", "joining needs a join token ('nodeagent token "
                           "create')")
        if not self.pki.is_signer():
            raise ApiError(503, "ServiceUnavailable", "this agent is not a server (it holds "
                           "no CA key): join through a server")
        if not isinstance(body, dict):
            raise ApiError.bad_request('body: expected {"name": ..., "csr": ...}')
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ApiError.bad_request(f"name: {name!r} is not a node name (a DNS subdomain)")
        answer: dict[str, Any] = {"ca": self.pki.ca_cert.read_text(),
                                  "gossipKeys": [base64.b64encode(k).decode()
                                                 for k in self.gossip_keys()]}
        ca = self.pki.ca()
        if role == "server":
            answer["caKey"] = self.pki.ca_key.read_text()
            answer["encryptionConfig"] = self.pki.encryption_config.read_text()
            raft = body.get("raft")
            if raft is not None:
                await self.add_server(raft)
            log.info("join: server %s joined with token %s", name, user.name)
            return answer
        public_key = _csr_key(body.get("csr"))
        addresses = _addresses(body.get("addresses"))
        names = [name, "localhost", "127.0.0.1", "::1", *addresses]
        answer["node"] = pki.sign_client(ca, public_key, node_user(name), (NODE_GROUP,)) \
            .public_bytes(serialization.Encoding.PEM).decode()
        answer["server"] = pki.sign_serving(ca, public_key, name, names) \
            .public_bytes(serialization.Encoding.PEM).decode()
        log.info("join: node %s joined with token %s", name, user.name)
        return answer


class RenewService:
    """``POST /renew``, a node's certificates before they expire or after the CA changed
    (carotation.py): a CSR for a key the node made, signed for the identity its current
    certificate proves -- never one the body names -- with the CA that signs now; the
    answer carries the CA bundle too.  Servers renew their own (they hold the key)."""

    def __init__(self, agent_pki: AgentPki) -> None:
        self.pki = agent_pki

    def __call__(self, user: User, body: Any) -> dict[str, Any]:
        from nodeagent.api.nodeauth import node_name
        name = node_name(user)
        if name is None:
            raise ApiError(403, "Forbidden", "only a node renews its certificates here")
        if not self.pki.is_signer():
            raise ApiError(503, "ServiceUnavailable", "this agent is not a server (it holds "
                           "no CA key): renew through a server")
        if not isinstance(body, dict):
            raise ApiError.bad_request('body: expected {"csr": ..., "addresses": [...]}')
        public_key = _csr_key(body.get("csr"))
        addresses = _addresses(body.get("addresses"))
        ca = self.pki.ca()
        groups = tuple(g for g in user.groups if g == NODE_GROUP)
        log.info("renew: new certificates for node %s", name)
        return {"ca": self.pki.ca_cert.read_text(),
                "node": pki.sign_client(ca, public_key, node_user(name), groups)
                .public_bytes(serialization.Encoding.PEM).decode(),
                "server": pki.sign_serving(ca, public_key, name,
                                           [name, "localhost", "127.0.0.1", "::1", *addresses])
                .public_bytes(serialization.Encoding.PEM).decode()}


def _addresses(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 32 or not all(
            isinstance(a, str) and _is_ip(a) for a in value):
        raise ApiError.bad_request("addresses: expected a list of at most 32 IP addresses")
    return value


def csr_for(name: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A new key and a CSR (PEM) for a node's certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_user(name))]))
           .sign(key, hashes.SHA256()))
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def renewed_leaves(agent_pki: AgentPki, name: str, key: ec.EllipticCurvePrivateKey,
                   answer: Any) -> tuple[bytes, bytes]:
    """The node and serving certificates (PEM) of a ``/renew`` answer, once checked: each
    for the key this node made and signed by a CA it trusts, the node one naming this
    node.  JoinError otherwise, and nothing is to be written: a bad answer must not leave
    the node without certificates that work."""
    wanted = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    out: list[bytes] = []
    for which in ("node", "server"):
        pem = answer.get(which) if isinstance(answer, dict) else None
        try:
            cert = x509.load_pem_x509_certificate(pem.encode()) if isinstance(pem, str) \
                else None
        except ValueError:
            cert = None
        if cert is None:
            raise JoinError(f"the renewal answered no {which} certificate")
        if cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo) \
                != wanted:
            raise JoinError(f"the renewed {which} certificate is not for this node's key")
        if not agent_pki.issuer_hash(cert):
            raise JoinError(f"the renewed {which} certificate is signed by no CA this node "
                            "trusts")
        if which == "node" and pki.identity(cert) != (node_user(name), (NODE_GROUP,)):
            raise JoinError(f"the renewed node certificate names {pki.identity(cert)}, not "
                            f"node {name}")
        out.append(pem.encode())  # type: ignore[union-attr]
    return out[0], out[1]


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _csr_key(pem: Any) -> ec.EllipticCurvePublicKey:
    """The public key of a CSR whose signature proves its sender holds the key."""
    if not isinstance(pem, str) or len(pem) > 8192:
        raise ApiError.bad_request("csr: expected a PEM certificate signing request")
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise ApiError.bad_request("csr: not a PEM certificate signing request") from None
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ApiError.bad_request("csr: the key must be ECDSA P-256")
    if not csr.is_signature_valid:
        raise ApiError.bad_request("csr: its signature does not verify")
    return key


# --- the joining agent's side ---------------------------------------------------------

async def join(agent_pki: AgentPki, urls: list[str], token: JoinToken, name: str,
               addresses: list[str], raft: dict[str, Any] | None = None) -> list[bytes]:
    """Join through the first of ``urls`` that answers; returns the gossip keys.  Raises
    JoinError when no server takes the token."""
    errors = []
    for url in urls:
        try:
            return await _join_one(agent_pki, url, token, name, addresses, raft)
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            errors.append(f"{url}: {exc}")
    raise JoinError("no server took the join: " + "; ".join(errors or ["no server URL given"]))


async def _join_one(agent_pki: AgentPki, url: str, token: JoinToken, name: str,
                    addresses: list[str], raft: dict[str, Any] | None) -> list[bytes]:
    # 1. The CA, from anyone, kept only if it is the pinned one.
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    async with httpx.AsyncClient(verify=unverified, timeout=10.0) as client:
        resp = await client.get(f"{url}/cacerts")
    if resp.status_code != 200 or len(resp.content) > 65536:
        raise JoinError(f"{url}/cacerts: HTTP {resp.status_code}")
    try:
        cas = x509.load_pem_x509_certificates(resp.content)
    except ValueError:
        raise JoinError(f"{url}/cacerts: not PEM certificates") from None
    if pki.ca_hash(cas[0]) != token.ca_hash:
        raise JoinError(f"{url} shows a CA whose hash is {pki.ca_hash(cas[0])}, not the "
                        f"token's {token.ca_hash}: refusing to send it the token")
    ca_pem = resp.content
    # 2. The join, over TLS verified against that CA.
    key, csr_pem = csr_for(name)
    verified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    verified.load_verify_locations(cadata=ca_pem.decode())
    body: dict[str, Any] = {"name": name, "addresses": addresses,
                            "csr": csr_pem}
    if raft is not None:
        body["raft"] = raft
    async with httpx.AsyncClient(verify=verified, timeout=30.0) as client:
        resp = await client.post(f"{url}/join", json=body,
                                 headers={"Authorization": f"Bearer {token.bootstrap}"})
    if resp.status_code != 200:
        try:
            message = resp.json().get("message", "")
        except ValueError:
            message = resp.text[:200]
        raise JoinError(f"{url} refused the join: HTTP {resp.status_code} {message}")
    answer = resp.json()
    ca_key = answer.get("caKey")
    agent_pki.install(answer["ca"].encode(), ca_key.encode() if ca_key else None)
    if answer.get("encryptionConfig"):
        from nodeagent.fsutil import write_atomic
        write_atomic(agent_pki.encryption_config, answer["encryptionConfig"].encode())
    if not ca_key:
        agent_pki.write_leaf("node", answer["node"].encode(), key_pem(key))
        agent_pki.write_leaf("server", answer["server"].encode(), key_pem(key))
    log.info("joined the cluster through %s as %s", url,
             "a server" if ca_key else f"node {name}")
    return [base64.b64decode(k) for k in answer.get("gossipKeys") or []]
