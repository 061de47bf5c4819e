"""An agent's share of the cluster PKI, as files under ``<data_dir>/pki``.

    ca.crt            the CAs this agent trusts, the one that signs first (one; two while
                      the CA is rotated: carotation.py)
    ca.key            the signing CA's key: servers only (they sign for joining agents)
    ca-next.key       while a rotation starts: the new CA's key, not signing yet
    ca-old.key        while a rotation ends: the old CA's key (ServiceAccount tokens it
                      signed still verify)
    server.crt/.key   serving: the API and Raft ports, this agent's names and addresses
    node.crt/.key     client: system:node:<name> in system:nodes (its calls to servers),
                      and in nodeagent:servers on a server
    admin.crt/.key    client: the cluster's administrator (admin.kubeconfig holds it)
    raft.crt/.key     a Raft server's, both ends of its Raft connections: raft:<id> in
                      nodeagent:servers, which every message it sends must be from
    encryption-config.yaml  a server's: the keys Secrets are encrypted with in the store

The first server makes the CA (``init_ca``) as k3s's and Swarm's first manager do; a
server that joins receives it; a node that joins receives its certificates signed and
never sees the CA's key.  A holder of the CA's key renews its own leaves before they
expire (``ensure_leaves``, at start and then hourly): a leaf is renewed once less than
a third of its life is left, as kubelet's certificate manager does at 70-90%.  Contexts
built here are reloaded in place (``Contexts.reload``), so a renewal drops no
connection and fails no request: open connections keep their session, new ones get the
new certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from nodeagent import pki
from nodeagent.fsutil import make_private_dir, write_atomic

__all__ = [
    "ADMIN_GROUP",
    "ADMIN_USER",
    "NODE_GROUP",
    "SERVER_GROUP",
    "AgentPki",
    "CertInfo",
    "Contexts",
    "due",
    "kubeconfig",
    "node_user",
    "raft_id_of",
    "raft_peer",
    "raft_user",
]

ADMIN_USER = "admin"
ADMIN_GROUP = "system:masters"  # Kubernetes' superuser group: every request allowed
NODE_GROUP = "system:nodes"
SERVER_GROUP = "nodeagent:servers"  # the Raft servers (their node and Raft certificates)
KUBERNETES_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local")
RENEW_FRACTION = 1 / 3  # renew once less than this share of a leaf's life is left


def node_user(name: str) -> str:
    return f"system:node:{name}"


def raft_user(raft_id: int) -> str:
    return f"raft:{raft_id}"


def raft_peer(der: bytes) -> int | None:
    """The Raft server a peer's certificate (DER, verified by the handshake) names."""
    if not der:
        return None
    return raft_id_of(pki.identity(x509.load_der_x509_certificate(der)))


def raft_id_of(identity: tuple[str, tuple[str, ...]]) -> int | None:
    """The Raft server a certificate's (CN, O) names: raft:<id> in nodeagent:servers;
    None for any other certificate."""
    user, groups = identity
    if SERVER_GROUP not in groups or not user.startswith("raft:"):
        return None
    ident = user[len("raft:"):]
    return int(ident) if ident.isdigit() and int(ident) > 0 else None


@dataclass(frozen=True)
class CertInfo:
    """One certificate as ``nodeagent certs check`` lists it."""
    name: str
    path: Path
    subject: str
    not_after: dt.datetime
    left: dt.timedelta
    due: bool  # would be renewed now


def due(cert: x509.Certificate, now: dt.datetime | None = None) -> bool:
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    return pki.check(cert, now) < life * RENEW_FRACTION


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName))


class AgentPki:
    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.dir = self.data_dir / "pki"
        self.ca_cert = self.dir / "ca.crt"
        self.ca_key = self.dir / "ca.key"
        self.ca_next_key = self.dir / "ca-next.key"
        self.ca_old_key = self.dir / "ca-old.key"
        self.kubeconfig = self.data_dir / "admin.kubeconfig"
        # The keys Secrets are sealed with in the store (api/encryption.py): servers only.
        self.encryption_config = self.dir / "encryption-config.yaml"
        self.api_url = ""  # where the admin kubeconfig points (the agent sets it)
        self._ca_keys: tuple[tuple[int, int], list[ec.EllipticCurvePrivateKey]] | None = None

    def cert(self, which: str) -> Path:
        return self.dir / f"{which}.crt"

    def key(self, which: str) -> Path:
        return self.dir / f"{which}.key"

    # --- what this agent holds ----------------------------------------------------------

    def has_ca(self) -> bool:
        return self.ca_cert.exists()

    def is_signer(self) -> bool:
        """Holds the CA's key: a server, which signs for joining agents and renews its own
        certificates."""
        return self.ca_key.exists()

    def ca(self) -> pki.Issued:
        """The signing CA (the first certificate of ca.crt) with its key."""
        return pki.load(self.ca_cert, self.ca_key)

    def ca_keys(self) -> list[ec.EllipticCurvePrivateKey]:
        """The CA keys held, the signing one first: what ServiceAccount tokens are signed
        and checked with (api/satokens.py).  Read again only when the file changes."""
        try:
            stamp = (self.ca_key.stat().st_mtime_ns,
                     self.ca_old_key.stat().st_mtime_ns if self.ca_old_key.exists() else 0)
        except FileNotFoundError:
            return []
        if self._ca_keys is None or self._ca_keys[0] != stamp:
            keys = [self.ca().key]
            if self.ca_old_key.exists():
                keys.append(pki.load_key(self.ca_old_key))
            self._ca_keys = (stamp, keys)
        return self._ca_keys[1]

    def ca_certs(self) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(self.ca_cert.read_bytes())

    def ca_hash(self) -> str:
        """The signing CA's hash (a join token pins it)."""
        return pki.ca_hash(self.ca_certs()[0])

    def trusted_hashes(self) -> list[str]:
        return [pki.ca_hash(c) for c in self.ca_certs()]

    def leaf_ca_hash(self, which: str = "node") -> str:
        """The hash of the CA of ca.crt that signed this agent's ``which`` leaf ("" if
        none of them did)."""
        try:
            cert = x509.load_pem_x509_certificate(self.cert(which).read_bytes())
        except (OSError, ValueError):
            return ""
        return self.issuer_hash(cert)

    def issuer_hash(self, cert: x509.Certificate) -> str:
        """The hash of the CA of ca.crt that signed ``cert`` ("" if none of them did)."""
        return next((pki.ca_hash(ca) for ca in self.ca_certs()
                     if cert.issuer == ca.subject and _signed_by(cert, ca)), "")

    def init_ca(self) -> bool:
        """Make the cluster's CA unless there is one; True if made."""
        make_private_dir(self.dir)
        if self.has_ca():
            return False
        pki.save(pki.make_ca(), self.ca_cert, self.ca_key)
        return True

    def install(self, ca_pem: bytes, ca_key_pem: bytes | None = None) -> None:
        """The CA a join brought (with its key for a server)."""
        make_private_dir(self.dir)
        if ca_key_pem is not None:
            write_atomic(self.ca_key, ca_key_pem)
        write_atomic(self.ca_cert, ca_pem)

    def write_leaf(self, which: str, cert_pem: bytes, key_pem: bytes) -> None:
        make_private_dir(self.dir)
        write_atomic(self.key(which), key_pem)
        write_atomic(self.cert(which), cert_pem)

    # --- issuing and renewing ---------------------------------------------------------

    def serving_names(self, name: str, addresses: Sequence[str], extra: Sequence[str] = ()
                      ) -> list[str]:
        """What a serving certificate names: the node and host names, loopback, the node's
        addresses, the kubernetes Service's names and ClusterIP, and ``extra`` (the
        API's listen address when it is a specific one)."""
        from nodeagent.api.allocator import SERVICE_CIDR
        cluster_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
        names = [name.lower(), socket.gethostname().lower(), "localhost", "127.0.0.1", "::1",
                 *addresses, *KUBERNETES_NAMES, cluster_ip, *extra]
        return [n for n in dict.fromkeys(names) if n and n not in ("0.0.0.0", "::")]

    def ensure_leaves(self, name: str, addresses: Sequence[str], extra: Sequence[str] = (),
                      now: dt.datetime | None = None, raft_id: int = 0) -> list[str]:
        """Issue, with the CA's key, each leaf this agent needs that is missing, due for
        renewal, or does not say what it should (its names, its identity); returns those
        issued (a new admin certificate needs a new admin kubeconfig: write_kubeconfig).
        ``raft_id``: this agent is that Raft server."""
        ca = self.ca()
        names = self.serving_names(name, addresses, extra)
        node_groups = (NODE_GROUP, SERVER_GROUP) if raft_id else (NODE_GROUP,)
        wanted = {
            "server": (lambda: pki.issue_serving(ca, name, names, now=now), None),
            "node": (lambda: pki.issue_client(ca, node_user(name), node_groups, now=now),
                     (node_user(name), node_groups)),
            "admin": (lambda: pki.issue_client(ca, ADMIN_USER, (ADMIN_GROUP,), now=now),
                      (ADMIN_USER, (ADMIN_GROUP,))),
        }
        if raft_id:
            wanted["raft"] = (lambda: pki.issue_peer(ca, raft_user(raft_id), (SERVER_GROUP,),
                                                     names, now=now),
                              (raft_user(raft_id), (SERVER_GROUP,)))
        cas = self.ca_certs()  # read once for every leaf
        issued = []
        for which, (make, identity) in wanted.items():
            current = self._current(which, cas)
            if current is not None and not due(current, now) and (
                    which not in ("server", "raft") or set(names) <= _sans(current)) and (
                    identity is None or pki.identity(current) == identity):
                continue
            leaf = make()
            pki.save(leaf, self.cert(which), self.key(which))
            issued.append(which)
        return issued

    def _current(self, which: str, cas: list[x509.Certificate]) -> x509.Certificate | None:
        try:
            cert = pki.load(self.cert(which), self.key(which)).cert
        except pki.PkiError:
            return None
        # A leaf of another CA than the signing one (the CA is being replaced) is as good
        # as missing.
        if not (cert.issuer == cas[0].subject and _signed_by(cert, cas[0])):
            return None
        return cert

    def write_kubeconfig(self, server: str) -> None:
        self.api_url = server
        write_atomic(self.kubeconfig, kubeconfig(
            server, self.ca_cert.read_bytes(), self.cert("admin").read_bytes(),
            self.key("admin").read_bytes()).encode())

    # --- looking ----------------------------------------------------------------------

    def certificates(self, now: dt.datetime | None = None) -> list[CertInfo]:
        out = []
        for which in ("ca", "server", "node", "admin", "raft"):
            path = self.ca_cert if which == "ca" else self.cert(which)
            try:
                certs = x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError):
                continue
            for i, cert in enumerate(certs):
                out.append(CertInfo(which if i == 0 else f"{which} (previous)", path,
                                    cert.subject.rfc4514_string(), cert.not_valid_after_utc,
                                    pki.check(cert, now), which != "ca" and due(cert, now)))
        return out


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def kubeconfig(server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes,
               cluster: str = "nodeagent", user: str = ADMIN_USER) -> str:
    """A kubeconfig as kubectl writes one, the credentials inline (base64 data)."""
    import base64

    import yaml

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()
    context = f"{user}@{cluster}"
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem),
                                          "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }, sort_keys=False)


class Contexts:
    """The TLS contexts of an agent's listeners and of its calls to other agents.
    ``reload`` makes new ones from the files and swaps them in: a connection made
    before keeps its session, the next one gets the renewed certificate (a context's
    trusted CAs cannot be taken out in place, which ending a CA rotation needs)."""

    def __init__(self, agent_pki: AgentPki) -> None:
        self.pki = agent_pki
        self.reload()

    def reload(self) -> None:
        p = self.pki
        # A client may come without a certificate (a bearer token, or anonymous for
        # /healthz); one it shows must be of this cluster's CA -- and only of it: not the
        # system's CAs, which create_default_context would add.
        self.server = pki.server_context(p.cert("server"), p.key("server"), p.ca_cert,
                                         required=False)
        self.server.set_alpn_protocols(["http/1.1"])
        self.client = pki.client_context(p.ca_cert, p.cert("node"), p.key("node"))
        if p.cert("raft").exists():
            # Raft: mutual, and only this cluster's CA on either side.
            self.raft_server: ssl.SSLContext | None = pki.server_context(
                p.cert("raft"), p.key("raft"), p.ca_cert)
            self.raft_client: ssl.SSLContext | None = pki.client_context(
                p.ca_cert, p.cert("raft"), p.key("raft"))
        else:
            self.raft_server = self.raft_client = None
