"""What a stranger controls at the front door -- the Authorization header, a protobuf
review body, a token file, a client certificate's names -- fuzzed: never a 5xx, never a
crash, never a traceback, and anything that is not a valid credential is anonymous
(401), not someone."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeagent import pki
from nodeagent.api import protobuf
from nodeagent.api.authn import StaticTokens, bearer_token
from nodeagent.api.status import ApiError
from nodeagent.clusterpki import AgentPki
from nodeagent.errors import ConfigError

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e),
                      max_size=200)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_any_authorization_header_is_a_token_or_none(raw: bytes) -> None:
    token = bearer_token([(b"authorization", raw)])
    assert token is None or (isinstance(token, str) and token and len(token) <= 8192)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=300).map(lambda b: protobuf.MAGIC + b)))
def test_any_protobuf_body_decodes_or_is_refused_by_a_4xx(raw: bytes) -> None:
    try:
        out = protobuf.decode(raw)
    except ApiError as exc:
        assert exc.code in (400, 415), exc
        return
    assert isinstance(out, dict) and out["kind"]


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


def test_the_agent_stayed_healthy(fuzz_agent) -> None:
    fuzz_agent.check_healthy()
