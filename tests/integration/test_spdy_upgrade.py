"""Raw SPDY upgrades against a real agent, as an attacker would try them: the
translation to a WebSocket gives no way around authentication, the origin check or the
routes, and a refusal reaches the client as the HTTP answer it is."""

from __future__ import annotations

import ssl

from agentproc import AgentProcess


def upgrade(agent: AgentProcess, path: str, *, tls: ssl.SSLContext | None = None,
            extra: bytes = b"") -> bytes:
    """A raw SPDY upgrade request; the answer's bytes until the server ends or 64 KiB."""
    host = agent.url.removeprefix("https://")
    with agent.connect(tls=tls) as conn:
        conn.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() +
                     b"\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n" + extra + b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < 200:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
            if len(answer) > 65536:
                break
        return answer


def anonymous_tls(agent: AgentProcess) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(agent.data_dir / "pki" / "ca.crt")
    return ctx


def test_anonymous_gets_401_not_a_session(shared_agent: AgentProcess) -> None:
    answer = upgrade(shared_agent, "/api/v1/namespaces/default/pods/p/exec?command=sh",
                     tls=anonymous_tls(shared_agent))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"SPDY" not in answer


def test_a_foreign_origin_is_refused_as_for_a_websocket(shared_agent: AgentProcess) -> None:
    answer = upgrade(shared_agent, "/api/v1/namespaces/default/pods/p/exec?command=sh",
                     extra=b"Origin: https://evil.example\r\n")
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


def test_a_pod_that_does_not_exist_is_404_before_the_upgrade(shared_agent: AgentProcess) -> None:
    answer = upgrade(shared_agent, "/api/v1/namespaces/default/pods/nope/exec?command=sh")
    assert answer.startswith(b"HTTP/1.1 404") and b'pods \\"nope\\" not found' in answer, \
        answer[:300]


def test_an_upgrade_to_a_path_that_streams_nothing_is_no_session(
        shared_agent: AgentProcess) -> None:
    answer = upgrade(shared_agent, "/api/v1/namespaces/default/configmaps")
    assert not answer.startswith(b"HTTP/1.1 101"), answer[:200]
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]


def test_a_forged_or_oversized_upgrade_gets_no_session(shared_agent: AgentProcess) -> None:
    """Asking port-forward's protocol on exec's path, or sending a head past the 16 KiB
    the translation reads, is answered as plain HTTP: never a 101."""
    path = "/api/v1/namespaces/default/pods/p/exec?command=sh"
    forged = upgrade(shared_agent, path, extra=b"X-Stream-Protocol-Version: portforward.k8s.io\r\n")
    assert forged.startswith(b"HTTP/1.1 4"), forged[:200]
    huge = upgrade(shared_agent, path, extra=b"X-Filler: " + b"a" * 20_000 + b"\r\n")
    assert huge.startswith(b"HTTP/1.1 4"), huge[:200]
