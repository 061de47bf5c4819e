"""Mutual TLS on loopback with the cluster PKI's contexts (nodeagent/pki.py), over real
Trio sockets: what the Raft and replica ports will demand.  A client of this cluster's
CA gets in; one with another CA's certificate, or none, fails the handshake; a client
that trusts another CA refuses the server."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
from waiting import until_async

from nodeagent import pki


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ca, other = pki.make_ca(), pki.make_ca("another cluster")
    out: dict[str, Path] = {}
    for name, issued in (("ca", ca), ("other-ca", other),
                         ("server", pki.issue_serving(ca, "node1", ["127.0.0.1", "node1"])),
                         ("node2", pki.issue_client(ca, "system:node:node2", ("system:nodes",))),
                         ("stranger", pki.issue_client(other, "system:node:node2",
                                                       ("system:nodes",)))):
        pki.save(issued, tmp_path / f"{name}.crt", tmp_path / f"{name}.key")
        out[name] = tmp_path / name
    return out


async def _serve(files: dict[str, Path], seen: list[str],
                 task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    ctx = pki.server_context(files["server"].with_suffix(".crt"),
                             files["server"].with_suffix(".key"),
                             client_cas=files["ca"].with_suffix(".crt"))
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, ctx, server_side=True)
        try:
            await tls.do_handshake()
            peer = tls.getpeercert()
            subject = dict(x[0] for x in peer["subject"]) if peer else {}
            seen.append(subject.get("commonName", ""))
            await tls.send_all(b"hello " + subject.get("commonName", "").encode())
        except (trio.BrokenResourceError, ssl.SSLError):
            seen.append("refused")
        finally:
            await stream.aclose()

    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


async def _dial(port: int, ctx: ssl.SSLContext) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    tls = trio.SSLStream(stream, ctx, server_hostname="127.0.0.1")
    try:
        await tls.do_handshake()
        return bytes(await tls.receive_some(100))
    finally:
        await stream.aclose()


async def test_only_this_clusters_certificates_get_in(files):
    seen: list[str] = []
    ca = files["ca"].with_suffix(".crt")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(_serve, files, seen)
        member = pki.client_context(ca, files["node2"].with_suffix(".crt"),
                                    files["node2"].with_suffix(".key"))
        assert await _dial(port, member) == b"hello system:node:node2"
        stranger = pki.client_context(ca, files["stranger"].with_suffix(".crt"),
                                      files["stranger"].with_suffix(".key"))
        no_cert = pki.client_context(ca)
        for ctx in (stranger, no_cert):
            # TLS 1.3: the client's handshake ends before the server checks its
            # certificate; the refusal comes as an alert or a close on the first read.
            try:
                answer = await _dial(port, ctx)
            except (trio.BrokenResourceError, ssl.SSLError):
                answer = b""
            assert answer == b""
        wrong_trust = pki.client_context(files["other-ca"].with_suffix(".crt"),
                                         files["node2"].with_suffix(".crt"),
                                         files["node2"].with_suffix(".key"))
        with pytest.raises(trio.BrokenResourceError) as info:
            await _dial(port, wrong_trust)
        assert "CERTIFICATE_VERIFY_FAILED" in repr(info.value.__cause__)
        await until_async(lambda: len(seen) == 4, what="the server's side of the 4 handshakes")
        nursery.cancel_scope.cancel()
    assert sorted(seen) == ["refused", "refused", "refused", "system:node:node2"]
