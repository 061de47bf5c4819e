"""An agent's PKI on disk (clusterpki.py): what the first server makes, what renewal
does as time passes (a leaf is issued again once less than a third of its life is left,
or when it no longer names this agent), and that the contexts, reloaded, serve the new
certificate while the CA stays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from nodeagent import pki
from nodeagent.clusterpki import AgentPki, Contexts


def test_leaves_are_renewed_before_they_expire_and_when_names_change(tmp_path: Path) -> None:
    agent = AgentPki(tmp_path)
    assert agent.init_ca() and not agent.init_ca()  # made once
    t0 = dt.datetime.now(dt.UTC)
    assert agent.ensure_leaves("n1", ["10.0.0.1"], now=t0) == ["server", "node", "admin"]
    assert agent.ensure_leaves("n1", ["10.0.0.1"], now=t0) == []  # nothing due
    first = pki.load(agent.cert("server"), agent.key("server")).cert
    # 200 days on, 165 of 365 left: not yet; 250 days on, 115 left (under a third): due.
    assert agent.ensure_leaves("n1", ["10.0.0.1"], now=t0 + dt.timedelta(days=200)) == []
    due = [c.name for c in agent.certificates(now=t0 + dt.timedelta(days=250)) if c.due]
    assert due == ["server", "node", "admin"]
    assert agent.ensure_leaves("n1", ["10.0.0.1"], now=t0 + dt.timedelta(days=250)) == [
        "server", "node", "admin"]
    renewed = pki.load(agent.cert("server"), agent.key("server")).cert
    assert renewed.serial_number != first.serial_number
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
    # A new address: the serving certificate is issued again to name it.
    assert agent.ensure_leaves("n1", ["10.0.0.1", "10.0.0.2"]) == ["server"]
    # A Raft server gets its Raft certificate, and a node certificate that says so.
    assert agent.ensure_leaves("n1", ["10.0.0.1", "10.0.0.2"], raft_id=3) == ["node", "raft"]
    assert pki.identity(pki.load(agent.cert("raft"), agent.key("raft")).cert) == (
        "raft:3", ("nodeagent:servers",))


def test_reloaded_contexts_serve_the_renewed_certificate(tmp_path: Path) -> None:
    import socket
    import ssl
    import threading
    agent = AgentPki(tmp_path)
    agent.init_ca()
    agent.ensure_leaves("n1", [])
    contexts = Contexts(agent)
    old_server = contexts.server
    agent.ensure_leaves("n1", ["10.0.0.9"])  # a new serving certificate
    contexts.reload()
    assert contexts.server is not old_server

    def serial_served(ctx: ssl.SSLContext) -> int:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]

            def serve() -> None:
                conn, _ = listener.accept()
                try:
                    with ctx.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass
            t = threading.Thread(target=serve)
            t.start()
            client = pki.client_context(agent.ca_cert)
            with socket.create_connection(("127.0.0.1", port)) as raw, \
                    client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                from cryptography import x509
                der = tls.getpeercert(binary_form=True)
                assert der is not None
                serial = x509.load_der_x509_certificate(der).serial_number
            t.join(5)
            return serial
    now = pki.load(agent.cert("server"), agent.key("server")).cert.serial_number
    assert serial_served(contexts.server) == now
