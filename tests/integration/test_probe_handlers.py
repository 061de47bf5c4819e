"""Probe handlers against real HTTP and TCP servers on loopback."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trio

from probes.handlers import http_get, tcp_socket


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/ok":
            self.send_response(200)
        elif self.path == "/fail":
            self.send_response(500)
        elif self.path == "/same":
            self.send_response(302)
            self.send_header("Location", "/ok")
        elif self.path == "/elsewhere":
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/ok")
        elif self.path == "/host":  # 200 only for the Host and User-Agent a probe must send
            ok = (self.headers["Host"] == "probe.example"
                  and self.headers["User-Agent"].startswith("kube-probe/")
                  and self.headers["X-Custom"] == "yes")
            self.send_response(200 if ok else 400)
        elif self.path == "/slow":
            time.sleep(3)
            self.send_response(200)
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024 * 1024))
            self.end_headers()
            try:
                self.wfile.write(b"x" * (50 * 1024 * 1024))
            except OSError:
                pass
            return
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve(tls: ssl.SSLContext | None = None) -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    yield from serve()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """HTTPS with a self-signed certificate: kubelet's probes do not verify it."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=pod.invalid", "-keyout", d / "key.pem", "-out", d / "cert.pem"],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    yield from serve(ctx)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_http_status_codes_and_redirects(server):
    assert await http_get("127.0.0.1", server, "/ok") == (True, "")
    assert await http_get("127.0.0.1", server, "/fail") == (
        False, "HTTP probe failed with statuscode: 500")
    assert await http_get("127.0.0.1", server, "/same") == (True, "")
    ok, message = await http_get("127.0.0.1", server, "/elsewhere")
    assert ok and "Probe terminated redirects" in message  # not followed to another host
    assert (await http_get("127.0.0.1", server, "/missing"))[0] is False


async def test_http_refused_and_timeouts_are_failures_within_the_timeout(server):
    port = closed_port()
    ok, message = await http_get("127.0.0.1", port, "/")
    assert not ok and message == (f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: '
                                  "connect: connection refused")
    t0 = trio.current_time()
    ok, message = await http_get("127.0.0.1", server, "/slow", timeout_s=0.3)
    assert not ok and "context deadline exceeded" in message
    assert trio.current_time() - t0 < 1.0  # never outlives its timeout


async def test_http_body_read_is_capped(server):
    t0 = trio.current_time()
    assert await http_get("127.0.0.1", server, "/big", timeout_s=5) == (True, "")
    assert trio.current_time() - t0 < 2.0  # did not read 50 MiB


async def test_tcp_socket(server):
    assert await tcp_socket("127.0.0.1", server) == (True, "")
    port = closed_port()
    assert await tcp_socket("127.0.0.1", port) == (
        False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_a_hanging_target_does_not_block_other_probes(server):
    results = {}

    async def run(name: str, coro) -> None:
        results[name] = (await coro, trio.current_time())
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "slow", http_get("127.0.0.1", server, "/slow", timeout_s=1.0))
        nursery.start_soon(run, "fast", http_get("127.0.0.1", server, "/ok"))
    assert results["fast"][0] == (True, "") and results["fast"][1] - t0 < 0.5
    assert results["slow"][0][0] is False


async def test_host_and_custom_headers_are_sent(server):
    assert await http_get("127.0.0.1", server, "/host", headers={
        "Host": "probe.example", "X-Custom": "yes"}) == (True, "")
    assert (await http_get("127.0.0.1", server, "/host"))[1] == (
        "HTTP probe failed with statuscode: 400")


async def test_https_is_probed_without_verifying_the_certificate(tls_server):
    assert await http_get("127.0.0.1", tls_server, "/ok", scheme="HTTPS") == (True, "")
    assert await http_get("127.0.0.1", tls_server, "/fail", scheme="HTTPS") == (
        False, "HTTP probe failed with statuscode: 500")


async def test_a_server_that_is_not_http_fails_the_probe():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        async def garbage() -> None:
            conn, _ = await trio.to_thread.run_sync(listener.accept)
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(garbage)
            ok, message = await http_get("127.0.0.1", port, "/", timeout_s=2)
    assert not ok and message.startswith(f'Get "http://127.0.0.1:{port}/": ')
