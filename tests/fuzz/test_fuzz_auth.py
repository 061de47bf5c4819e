"""What a stranger controls at the front door -- the Authorization header, a protobuf
review body, a token file, a client certificate's names -- fuzzed: never a 5xx, never a
crash, never a traceback, and anything that is not a valid credential is anonymous
(401), not someone."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeagent import pki
from nodeagent.api import protobuf
from nodeagent.api.authn import StaticTokens, bearer_token
from nodeagent.api.satokens import ISSUER, ServiceAccountTokens, TokenSigner
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import AgentPki
from nodeagent.errors import ConfigError

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
FUZZ_CA = pki.make_ca("fuzz")
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e),
                      max_size=200)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_any_authorization_header_is_a_token_or_none(raw: bytes) -> None:
    token = bearer_token([(b"authorization", raw)])
    assert token is None or (isinstance(token, str) and token and len(token) <= 8192)


def _kind_bodies() -> st.SearchStrategy[bytes]:
    from nodeagent.objects.protoschema import KINDS
    kinds = sorted(KINDS)
    deployment = protobuf.encode({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}}}})

    def flip(data: bytes, at: int, bit: int) -> bytes:
        i = at % len(data)
        return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:]
    return st.one_of(
        st.tuples(st.sampled_from(kinds), st.binary(max_size=400)).map(
            lambda kr: protobuf._envelope(kr[0][0], kr[0][1], kr[1])),
        st.tuples(st.integers(0, 10_000), st.integers(0, 7)).map(
            lambda ab: flip(deployment, *ab)))


@settings(max_examples=800, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=300).map(lambda b: protobuf.MAGIC + b), _kind_bodies()))
def test_any_protobuf_body_decodes_or_is_refused_by_a_4xx(raw: bytes) -> None:
    """Bytes, bytes in the envelope, random messages inside a valid envelope of each kind,
    and bit flips of a real Deployment: the table-driven reader answers 400/415 or JSON."""
    try:
        out = protobuf.decode(raw)
    except ApiError as exc:
        assert exc.code in (400, 415), exc
        return
    assert isinstance(out, dict) and out["kind"]
    json.dumps(out)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_token_file_loads_or_names_its_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text(text)
    try:
        StaticTokens.load(str(path))
    except ConfigError as exc:
        assert exc.field == "token_auth_file" and str(path) in str(exc)


@SETTINGS
@given(scheme=st.sampled_from(["Bearer", "bearer", "Basic", "Token", ""]), token=HEADER_TEXT)
def test_hostile_authorization_headers_get_401_never_5xx(fuzz_agent, scheme: str,
                                                          token: str) -> None:
    with fuzz_agent.anonymous(timeout_s=10) as anon:
        r = anon.get("/api/v1/namespaces", headers={"Authorization": f"{scheme} {token}".strip()})
        assert r.status_code == 401, (scheme, token, r.status_code, r.text[:200])
        r = anon.post("/join", json={}, headers={"Authorization": f"{scheme} {token}".strip()})
        assert r.status_code == 401


@pytest.fixture(scope="module")
def leaves(fuzz_agent, tmp_path_factory):
    return tmp_path_factory.mktemp("leaves"), AgentPki(fuzz_agent.data_dir).ca()


@SETTINGS
@given(user=st.text(min_size=1, max_size=80),
       groups=st.lists(st.text(min_size=1, max_size=40), max_size=6))
def test_any_names_in_a_client_certificate_are_a_user_never_a_crash(fuzz_agent, leaves,
                                                                     user: str,
                                                                     groups: list[str]) -> None:
    where, ca = leaves
    try:
        leaf = pki.issue_client(ca, user, tuple(groups))
    except ValueError:
        return  # names X.509 itself refuses (cryptography checks lengths)
    pki.save(leaf, where / "c.crt", where / "c.key")
    ctx = pki.client_context(fuzz_agent.data_dir / "pki" / "ca.crt", where / "c.crt",
                             where / "c.key")
    with httpx.Client(base_url=fuzz_agent.url, verify=ctx, timeout=10) as c:
        r = c.get("/api/v1/namespaces/default/secrets")
        allowed = "system:masters" in groups or "system:nodes" in groups
        assert r.status_code == (200 if allowed else 403), (user, groups, r.text[:200])
        r = c.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                   content=protobuf.MAGIC + b"\x0a\x02\x0a\x00\x12\x00",
                   headers={"Content-Type": protobuf.MEDIA_TYPE})
        assert r.status_code < 500


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4), max_leaves=20)
CLAIMS = st.fixed_dictionaries({}, optional={
    "iss": st.sampled_from([ISSUER, "", "https://evil"]) | JSON_VALUES,
    "aud": st.sampled_from([[ISSUER], ISSUER, ["x"]]) | JSON_VALUES,
    "sub": st.sampled_from(["system:serviceaccount:default:default"]) | JSON_VALUES,
    "exp": st.integers(0, 2**40) | JSON_VALUES, "iat": JSON_VALUES, "nbf": JSON_VALUES,
    "kubernetes.io": st.fixed_dictionaries({}, optional={
        "namespace": st.sampled_from(["default"]) | JSON_VALUES,
        "serviceaccount": st.fixed_dictionaries({}, optional={
            "name": st.sampled_from(["default"]) | JSON_VALUES,
            "uid": JSON_VALUES}) | JSON_VALUES,
        "pod": JSON_VALUES}) | JSON_VALUES})
JWTS = st.one_of(
    # Well-formed JWTs with hostile headers and claims, signed by nobody we trust.
    st.tuples(st.fixed_dictionaries({"alg": st.sampled_from(["ES256", "none", "HS256", "RS256",
                                                             "", "es256"]) | JSON_VALUES},
                                    optional={"kid": JSON_VALUES, "typ": JSON_VALUES}),
              CLAIMS, st.binary(max_size=80))
    .map(lambda t: ".".join([_b64(json.dumps(t[0]).encode()), _b64(json.dumps(t[1]).encode()),
                             _b64(t[2])])),
    # Three dotted parts of anything, and deep nesting in the header.
    st.lists(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e),
                     max_size=60), min_size=3, max_size=3).map(".".join),
    st.integers(1, 3000).map(lambda n: _b64(b"[" * n + b"]" * n) + ".e30.AAAA"))


@SETTINGS
@given(token=JWTS)
def test_hostile_jwts_are_refused_never_a_crash(token: str) -> None:
    """The ServiceAccount authenticator itself, on tokens shaped like ours."""
    signer = TokenSigner(lambda: [FUZZ_CA.key])
    authn = ServiceAccountTokens(signer, lambda kind, ns, name: {
        "metadata": {"name": name, "namespace": ns, "uid": "u"}})
    assert authn.authenticate(token) is None


@SETTINGS
@given(token=JWTS)
def test_hostile_jwts_get_401_from_the_agent(fuzz_agent, token: str) -> None:
    with fuzz_agent.anonymous(timeout_s=10) as anon:
        r = anon.get("/api", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (token[:100], r.status_code, r.text[:200])


def test_the_agent_stayed_healthy(fuzz_agent) -> None:
    fuzz_agent.check_healthy()
