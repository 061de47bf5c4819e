"""grpc probes against a real grpcio server speaking grpc.health.v1, with kubelet's
messages for serving, not serving, unknown service, no health service, refused and
silent targets; and the response decoder fuzzed (it reads bytes from the pod)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from probes.handlers import grpc_check, health_request, health_status

SERVING, NOT_SERVING = b"\x08\x01", b"\x08\x02"
SERVICES = {b"": SERVING, health_request("app")[5:]: SERVING, health_request("db")[5:]: NOT_SERVING}


def check(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request not in SERVICES:
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return SERVICES[request]


def start_server(with_health: bool) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    if with_health:
        # Raw bytes in and out: the test checks our encoding against fixed bytes.
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.fixture(scope="module")
def health() -> Iterator[int]:
    server, port = start_server(with_health=True)
    try:
        yield port
    finally:
        server.stop(None)


@pytest.fixture(scope="module")
def no_health() -> Iterator[int]:
    server, port = start_server(with_health=False)
    try:
        yield port
    finally:
        server.stop(None)


async def test_serving_and_not_serving(health):
    assert await grpc_check("127.0.0.1", health) == (True, "")
    assert await grpc_check("127.0.0.1", health, "app") == (True, "")
    assert await grpc_check("127.0.0.1", health, "db") == (
        False, 'service unhealthy (responded with "NOT_SERVING")')


async def test_unknown_service_and_missing_health_service(health, no_health):
    assert await grpc_check("127.0.0.1", health, "nope") == (
        False, "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service")
    ok, message = await grpc_check("127.0.0.1", no_health)
    assert not ok and message.startswith(
        "this server does not implement the grpc health protocol (grpc.health.v1.Health)")


async def test_refused_and_silent_targets_fail_within_the_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert await grpc_check("127.0.0.1", port) == (
            False, f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: '
                   "connect: connection refused")
        s.listen()  # accepts (the kernel does) but never speaks HTTP/2
        t0 = trio.current_time()
        assert await grpc_check("127.0.0.1", port, timeout_s=0.3) == (
            False, "timeout: health rpc did not complete within 0.3s")
        assert trio.current_time() - t0 < 1.0


@given(st.binary(max_size=64))
def test_health_response_decoder_never_raises_anything_but_valueerror(data):
    for frame in (data, b"\x00" + len(data).to_bytes(4, "big") + data):
        try:
            assert health_status(frame) >= 0
        except ValueError:
            pass


def test_health_response_decoder_reads_the_status_among_other_fields():
    # unknown fields of every wire type before the status, as a newer server may send
    msg = b"\x10\x05" + b"\x1a\x02hi" + b"\x21" + bytes(8) + b"\x2d" + bytes(4) + b"\x08\x02"
    assert health_status(b"\x00" + len(msg).to_bytes(4, "big") + msg) == 2
    assert health_status(b"\x00\x00\x00\x00\x00") == 0  # empty message: UNKNOWN
