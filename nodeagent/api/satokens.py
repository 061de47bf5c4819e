"""ServiceAccount tokens: signed, bound, short-lived JWTs, as Kubernetes' TokenRequest makes
them, and the authenticator that takes them back.

A token is an ES256 JWT with Kubernetes' claims (``iss``, ``aud``, ``exp``, ``sub`` =
``system:serviceaccount:<ns>:<name>``, and ``kubernetes.io`` naming the namespace, the
ServiceAccount and the pod it is bound to, with their uids).  Nothing of it is stored:
it is good while its signature checks, it has not expired, and the ServiceAccount and
the pod it names still exist with the same uids -- so deleting either ends it at once,
as Kubernetes' bound tokens end.

The signing key is derived from the cluster CA's key (HKDF), so every server that holds
the CA's key signs and checks the same tokens with nothing more to hand over at join or
to copy; an agent without the CA's key checks none (pods reach the servers' API, through
the ``kubernetes`` Service).  While the CA is rotated the keys of both CAs verify.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nodeagent.api.authn import User

__all__ = ["API_AUDIENCES", "ISSUER", "Bound", "ServiceAccountTokens", "TokenSigner",
           "service_account_user", "signing_key"]

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)  # kube-apiserver's --api-audiences defaults to its issuer
SA_GROUP = "system:serviceaccounts"
MAX_SECONDS = 48 * 3600  # --service-account-max-token-expiration: longer asks get this
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)

Obj = dict[str, Any]


def signing_key(ca_key: ec.EllipticCurvePrivateKey) -> ec.EllipticCurvePrivateKey:
    """The token signing key that belongs to a CA key: HKDF over the CA key, reduced to a
    P-256 scalar.  Knowing a token's key says nothing of the CA's."""
    secret = ca_key.private_bytes(serialization.Encoding.DER,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    okm = HKDF(hashes.SHA256(), 48, None, b"nodeagent service-account token signing v1"
               ).derive(secret)
    return ec.derive_private_key(int.from_bytes(okm, "big") % (_P256_ORDER - 1) + 1,
                                 ec.SECP256R1())


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    """Kubernetes' ``kid``: the unpadded base64url SHA-256 of the public key's DER."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class Bound:
    """What a token is bound to: its pod (and the pod's node), as TokenRequest's
    boundObjectRef names it."""

    pod_name: str
    pod_uid: str
    node_name: str = ""
    node_uid: str = ""


class TokenSigner:
    """Signs with the first CA key's token key, verifies with any (``ca_keys``: the CA
    keys this server holds, newest first; the same list object until they change, as
    AgentPki.ca_keys keeps it)."""

    def __init__(self, ca_keys: Callable[[], list[ec.EllipticCurvePrivateKey]]) -> None:
        self.ca_keys = ca_keys
        self._from: list[ec.EllipticCurvePrivateKey] | None = None
        self._keys: list[tuple[ec.EllipticCurvePrivateKey, str]] = []  # (token key, kid)

    def keys(self) -> list[tuple[ec.EllipticCurvePrivateKey, str]]:
        """Each token key with its kid, derived once per set of CA keys."""
        cas = self.ca_keys()
        if cas is not self._from:
            derived = [signing_key(k) for k in cas]
            self._keys = [(k, key_id(k.public_key())) for k in derived]
            self._from = cas
        return self._keys

    def issue(self, namespace: str, sa: Obj, audiences: list[str], seconds: int,
              bound: Bound | None, now: dt.datetime) -> tuple[str, dt.datetime]:
        key, kid = self.keys()[0]
        issued = int(now.timestamp())
        expires = issued + seconds
        private: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": sa["metadata"]["name"], "uid": sa["metadata"]["uid"]},
        }
        if bound is not None:
            private["pod"] = {"name": bound.pod_name, "uid": bound.pod_uid}
            if bound.node_name:
                private["node"] = {"name": bound.node_name, "uid": bound.node_uid}
        claims = {"iss": ISSUER, "aud": audiences, "sub": service_account_user(
                      namespace, sa["metadata"]["name"]),
                  "iat": issued, "nbf": issued, "exp": expires, "jti": str(uuid.uuid4()),
                  "kubernetes.io": private}
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})
        return token, dt.datetime.fromtimestamp(expires, dt.UTC)

    def verify(self, token: str, audiences: tuple[str, ...], now: dt.datetime) -> Obj | None:
        """The claims if the token is ours, for one of ``audiences``, and current."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            for key, key_kid in self.keys():
                if kid is not None and kid != key_kid:
                    continue
                try:
                    claims = jwt.decode(
                        token, key.public_key(), algorithms=["ES256"], audience=list(audiences),
                        issuer=ISSUER, leeway=0,
                        options={"require": ["exp", "iat", "iss", "aud", "sub"],
                                 "verify_iat": False})
                except jwt.InvalidSignatureError:
                    continue
                exp = claims.get("exp")
                if not isinstance(exp, int) or exp <= now.timestamp():
                    return None  # on our clock, not only on the library's
                return claims if isinstance(claims, dict) else None
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError, KeyError):
            return None
        return None


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


class ServiceAccountTokens:
    """The authenticator: a token of ours whose ServiceAccount and pod are still there.
    ``get(kind, namespace, name)`` reads an object (None when there is none)."""

    def __init__(self, signer: TokenSigner, get: Callable[[str, str, str], Obj | None],
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 audiences: tuple[str, ...] = API_AUDIENCES) -> None:
        self.signer, self.get, self.now, self.audiences = signer, get, now, audiences

    def authenticate(self, token: str) -> User | None:
        if token.count(".") != 2:
            return None  # not a JWT: leave it to the other authenticators, unparsed
        now = self.now()
        claims = self.signer.verify(token, self.audiences, now)
        if claims is None:
            return None
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            return None
        ns, sa_ref = private.get("namespace"), private.get("serviceaccount")
        if not isinstance(ns, str) or not isinstance(sa_ref, dict):
            return None
        name, uid = sa_ref.get("name"), sa_ref.get("uid")
        if not isinstance(name, str) or not isinstance(uid, str) or \
                claims.get("sub") != service_account_user(ns, name):
            return None
        sa = self.get("ServiceAccount", ns, name)
        if sa is None or sa["metadata"].get("uid") != uid:
            return None  # deleted (or deleted and made again): its tokens end with it
        extra: dict[str, tuple[str, ...]] = {}
        pod_ref = private.get("pod")
        if pod_ref is not None:
            if not isinstance(pod_ref, dict) or not _alive(
                    self.get("Pod", ns, str(pod_ref.get("name"))), pod_ref.get("uid"), now):
                return None
            extra["authentication.kubernetes.io/pod-name"] = (str(pod_ref["name"]),)
            extra["authentication.kubernetes.io/pod-uid"] = (str(pod_ref["uid"]),)
            node_ref = private.get("node")
            if isinstance(node_ref, dict) and isinstance(node_ref.get("name"), str):
                extra["authentication.kubernetes.io/node-name"] = (node_ref["name"],)
                extra["authentication.kubernetes.io/node-uid"] = (str(node_ref.get("uid")),)
        if isinstance(claims.get("jti"), str):
            extra["authentication.kubernetes.io/credential-id"] = (f"JTI={claims['jti']}",)
        return User(service_account_user(ns, name), (SA_GROUP, f"{SA_GROUP}:{ns}"), uid, extra)


def _alive(pod: Obj | None, uid: object, now: dt.datetime) -> bool:
    """The bound pod is there, is the same pod, and its grace period has not run out."""
    if pod is None or not isinstance(uid, str) or pod["metadata"].get("uid") != uid:
        return False
    deleting = pod["metadata"].get("deletionTimestamp")
    if deleting:
        try:
            when = dt.datetime.fromisoformat(str(deleting).replace("Z", "+00:00"))
        except ValueError:
            return False
        return when > now
    return True
