"""The cluster's PKI: a CA made at bootstrap, and the certificates it signs.

The first server makes the CA (ECDSA P-256, as kubeadm does with
``--encryption-algorithm=ECDSA-P256`` and as k3s does by default).  It signs, per
agent, a serving certificate for its API and Raft ports (its names and addresses as
SANs) and a client certificate for its node identity; users are client certificates
too.  Identities are written as Kubernetes reads them: CN is the user
(``system:node:<name>``), O the groups (``system:nodes``).

A joining agent pins the CA by the hash of its public key, as kubeadm's
``--discovery-token-ca-cert-hash`` and Swarm's join tokens do: ``sha256:<hex>`` of the
DER SubjectPublicKeyInfo, the value ``openssl x509 -pubkey | openssl pkey -pubin
-outform der | sha256sum`` prints.

Keys are written 0600 (nodeagent/fsutil.py), atomically; nothing here touches the
network.  clusterpki.py lays these out in an agent's data directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodeagent.fsutil import write_atomic

__all__ = ["CA_DAYS", "LEAF_DAYS", "Issued", "PkiError", "ca_hash", "check", "client_context",
           "identity", "issue_client", "issue_peer", "issue_serving", "load", "make_ca", "save",
           "server_context", "sign_client", "sign_serving"]

CA_DAYS = 3650  # kubeadm's CA: ten years
LEAF_DAYS = 365  # kubeadm's leaves: one year, renewed well before
_BACKDATE = dt.timedelta(minutes=5)  # a peer's clock a little behind still accepts it


class PkiError(Exception):
    """A certificate or key that cannot be read, or does not fit what it is used for."""


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(cn: str, groups: tuple[str, ...] = ()) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
                     + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             days: int, now: dt.datetime | None) -> x509.CertificateBuilder:
    start = (now or _now()) - _BACKDATE
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False))


def make_ca(name: str = "nodeagent-ca", *, days: int = CA_DAYS,
            now: dt.datetime | None = None) -> Issued:
    """A new self-signed CA that may sign leaves only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    cert = (_builder(subject, subject, key, days, now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def _sign(ca: Issued, subject: x509.Name, usages: list[x509.ObjectIdentifier],
          sans: list[x509.GeneralName], days: int, now: dt.datetime | None,
          public_key: ec.EllipticCurvePublicKey) -> x509.Certificate:
    start = (now or _now()) - _BACKDATE
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                              critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                            key_cert_sign=False, crl_sign=False,
                                            content_commitment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def issue_serving(ca: Issued, cn: str, names: list[str], *, days: int = LEAF_DAYS,
                  now: dt.datetime | None = None) -> Issued:
    """A server certificate for ``names``: each an IP address or a DNS name (a SAN of its
    kind; clients check the address they dialled against them)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return Issued(sign_serving(ca, key.public_key(), cn, names, days=days, now=now), key)


def sign_serving(ca: Issued, public_key: ec.EllipticCurvePublicKey, cn: str,
                 names: list[str], *, days: int = LEAF_DAYS,
                 now: dt.datetime | None = None) -> x509.Certificate:
    """issue_serving for a key the CA does not hold (a joining agent's)."""
    return _sign(ca, _name(cn), [ExtendedKeyUsageOID.SERVER_AUTH], _sans(names), days, now,
                 public_key)


def _sans(names: list[str]) -> list[x509.GeneralName]:
    if not names:
        raise PkiError("a serving certificate needs at least one name or address")
    sans: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            if not name or any(c.isspace() or c in "/@:" for c in name):
                raise PkiError(f"{name!r} is neither an IP address nor a DNS name") from None
            sans.append(x509.DNSName(name))
    return sans


def issue_peer(ca: Issued, cn: str, groups: tuple[str, ...], names: list[str], *,
               days: int = LEAF_DAYS, now: dt.datetime | None = None) -> Issued:
    """A certificate for both ends of a peer connection (Raft's): it serves as ``names``
    and is a client with identity ``cn`` in ``groups``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(ca, _name(cn, groups),
                 [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                 _sans(names), days, now, key.public_key())
    return Issued(cert, key)


def issue_client(ca: Issued, user: str, groups: tuple[str, ...] = (), *,
                 days: int = LEAF_DAYS, now: dt.datetime | None = None) -> Issued:
    """A client certificate for ``user`` in ``groups`` (CN and O, as Kubernetes reads
    them: ``system:node:<name>`` in ``system:nodes`` for a node)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return Issued(sign_client(ca, key.public_key(), user, groups, days=days, now=now), key)


def sign_client(ca: Issued, public_key: ec.EllipticCurvePublicKey, user: str,
                groups: tuple[str, ...] = (), *, days: int = LEAF_DAYS,
                now: dt.datetime | None = None) -> x509.Certificate:
    """issue_client for a key the CA does not hold (a joining agent's)."""
    if not user:
        raise PkiError("a client certificate needs a user name")
    return _sign(ca, _name(user, groups), [ExtendedKeyUsageOID.CLIENT_AUTH], [], days, now,
                 public_key)


def identity(cert: x509.Certificate) -> tuple[str, tuple[str, ...]]:
    """(user, groups) of a client certificate: CN and every O."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (str(cns[0].value) if cns else "", tuple(str(o.value) for o in orgs))


def ca_hash(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo: what a join token pins."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def save(issued: Issued, cert_path: Path, key_path: Path) -> None:
    """The certificate (0600 too: it is nobody else's business) and its key, each
    written atomically."""
    write_atomic(key_path, issued.key_pem)
    write_atomic(cert_path, issued.cert_pem)


def load_key(key_path: Path) -> ec.EllipticCurvePrivateKey:
    return key_from_pem(_read(key_path), str(key_path))


def key_from_pem(pem: bytes, what: str = "the key") -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise PkiError(f"{what}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{what}: not an ECDSA key")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PkiError(f"{path}: {exc.strerror}") from exc


def load(cert_path: Path, key_path: Path) -> Issued:
    try:
        cert = x509.load_pem_x509_certificate(_read(cert_path))
    except ValueError as exc:
        raise PkiError(f"{cert_path}: {exc}") from exc
    key = load_key(key_path)
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise PkiError(f"{key_path} is not the key of {cert_path}")
    return Issued(cert, key)


def check(cert: x509.Certificate, now: dt.datetime | None = None) -> dt.timedelta:
    """Time left before ``cert`` expires (negative: expired)."""
    return cert.not_valid_after_utc - (now or _now())


def server_context(cert_path: Path, key_path: Path, client_cas: Path | None = None, *,
                   required: bool = True) -> ssl.SSLContext:
    """TLS 1.2+ for a listener: its certificate, and with ``client_cas`` mutual TLS (a
    client must show a certificate of one of those CAs -- or, not ``required``, may show
    none).  Only ``client_cas`` are trusted for clients, never the system's CAs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.load_cert_chain(cert_path, key_path)
    if client_cas is not None:
        ctx.load_verify_locations(client_cas)
        ctx.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return ctx


def client_context(ca_path: Path, cert_path: Path | None = None,
                   key_path: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+ for a client that trusts only the cluster's CA (not the system's), checks
    the server's name, and shows its own certificate when given one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies and checks names; no CAs yet
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(ca_path)
    if cert_path is not None and key_path is not None:
        ctx.load_cert_chain(cert_path, key_path)
    return ctx
