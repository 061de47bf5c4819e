"""Who is calling: the API's authenticators, in kube-apiserver's order and with its names.

- **Client certificates** of the cluster's CA, verified in the TLS handshake
  (listen.TlsPeers): the CN is the user, each O a group.
- **Static bearer tokens** from ``--token-auth-file``: kube-apiserver's CSV,
  ``token,user,uid,"group1,group2"``.
- **ServiceAccount tokens**: the signed, bound JWTs of TokenRequest (api/satokens.py).
- **Bootstrap tokens** (``<id>.<secret>``, kubeadm's): a Secret
  ``kube-system/bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token``.  They
  authenticate ``system:bootstrap:<id>`` in ``system:bootstrappers`` (and the Secret's
  ``auth-extra-groups``) until their ``expiration``; what they may do is only to join
  (authz.py).

Any that succeeds decides (kube-apiserver's union); every authenticated user is also in
``system:authenticated``.  None succeeding is anonymous, which the server answers 401 but
for its public paths.  Token comparisons are constant-time.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from nodeagent.errors import ConfigError

__all__ = [
    "ANONYMOUS",
    "AUTHENTICATED",
    "BOOTSTRAP_TOKEN_TYPE",
    "Authenticator",
    "BootstrapTokens",
    "StaticTokens",
    "User",
    "bearer_token",
    "parse_bootstrap_token",
    "secret_data",
]

AUTHENTICATED = "system:authenticated"
BOOTSTRAPPERS = "system:bootstrappers"
BOOTSTRAP_TOKEN_TYPE = "bootstrap.kubernetes.io/token"
BOOTSTRAP_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
MAX_TOKEN_BYTES = 8192  # a service account's JWT is ~1 KiB; anything far larger is noise


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS.name

    def info(self) -> dict[str, Any]:
        """As a TokenReview's or an audit event's userInfo."""
        out: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive), if any
    and not absurdly long."""
    for key, value in headers:
        if key.lower() == b"authorization":
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            if scheme.lower() != b"bearer" or not token or len(token) > MAX_TOKEN_BYTES:
                return None
            try:
                return token.decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


class StaticTokens:
    """kube-apiserver's ``--token-auth-file``."""

    def __init__(self, users: dict[str, User]) -> None:
        self._users = users

    @classmethod
    def load(cls, path: str) -> StaticTokens:
        """Raises ConfigError naming the file and line at fault."""
        try:
            with open(path, newline="") as f:
                text = f.read()
        except OSError as exc:
            raise ConfigError("token_auth_file", f"cannot read {path}: {exc.strerror}") from None
        users: dict[str, User] = {}
        for n, line in enumerate(text.splitlines(), 1):
            try:
                row = next(csv.reader([line]), [])
            except csv.Error as exc:
                raise ConfigError("token_auth_file", f"{path} line {n}: {exc}") from None
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 3 or not row[0].strip() or not row[1].strip():
                raise ConfigError("token_auth_file", f"{path} line {n}: expected "
                                  'token,user,uid[,"group1,group2"]')
            token = row[0].strip()
            if token in users:
                raise ConfigError("token_auth_file", f"{path} line {n}: a token listed twice")
            groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 \
                else ()
            users[token] = User(row[1].strip(), groups, row[2].strip())
        return cls(users)

    def authenticate(self, token: str) -> User | None:
        found = None
        for known, user in self._users.items():  # every entry, so timing says nothing
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found


def parse_bootstrap_token(token: str) -> tuple[str, str] | None:
    m = BOOTSTRAP_TOKEN.match(token)
    return (m.group(1), m.group(2)) if m else None


class BootstrapTokens:
    """Bootstrap tokens, read from their Secrets by ``get_secret(namespace, name)`` (None
    when there is none)."""

    def __init__(self, get_secret: Callable[[str, str], dict[str, Any] | None],
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.get_secret = get_secret
        self.now = now

    def authenticate(self, token: str) -> User | None:
        parsed = parse_bootstrap_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        obj = self.get_secret("kube-system", f"bootstrap-token-{token_id}")
        if not obj or obj.get("type") != BOOTSTRAP_TOKEN_TYPE:
            return None
        data = secret_data(obj.get("data"))
        if data.get("token-id") != token_id or data.get("usage-bootstrap-authentication") != "true":
            return None
        if not hmac.compare_digest(data.get("token-secret", "").encode(), secret.encode()):
            return None
        expires = expiration(data)
        if expires is None or expires <= self.now():
            return None
        extra = tuple(g.strip() for g in data.get("auth-extra-groups", "").split(",")
                      if g.strip().startswith("system:bootstrappers:"))
        return User(f"system:bootstrap:{token_id}", (BOOTSTRAPPERS, *extra))


def expiration(data: Mapping[str, str]) -> dt.datetime | None:
    """A bootstrap token's expiry; None if it has none that can be read (such a token is
    refused: every token we make expires)."""
    try:
        when = dt.datetime.fromisoformat(data.get("expiration", "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def secret_data(data: Any) -> dict[str, str]:
    """A Secret's ``data`` decoded (a value that is not base64 text is left out)."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            try:
                out[str(key)] = base64.b64decode(str(value), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                continue
    return out


class TokenAuthenticator(Protocol):
    def authenticate(self, token: str) -> User | None: ...


class Authenticator:
    def __init__(self, *, tokens: StaticTokens | None = None,
                 bootstrap: BootstrapTokens | None = None,
                 service_accounts: TokenAuthenticator | None = None) -> None:
        self.tokens = tokens
        self.bootstrap = bootstrap
        self.service_accounts = service_accounts

    def authenticate(self, cert: tuple[str, tuple[str, ...]] | None,
                     headers: list[tuple[bytes, bytes]]) -> User:
        user = None
        if cert is not None and cert[0]:
            user = User(cert[0], cert[1])
        if user is None:
            token = bearer_token(headers)
            if token is not None:
                user = self._token(token)
        if user is None:
            return ANONYMOUS
        if AUTHENTICATED not in user.groups:
            user = User(user.name, (*user.groups, AUTHENTICATED), user.uid, user.extra)
        return user

    def _token(self, token: str) -> User | None:
        if self.tokens is not None:
            user = self.tokens.authenticate(token)
            if user is not None:
                return user
        if self.service_accounts is not None:
            user = self.service_accounts.authenticate(token)
            if user is not None:
                return user
        if self.bootstrap is not None:
            return self.bootstrap.authenticate(token)
        return None
