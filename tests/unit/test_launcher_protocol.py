"""The launcher's wire protocol (runtime/protocol.py): what a line means, what an error
is, and that no bytes a client sends make anything but a LauncherError."""

from __future__ import annotations

import os
import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.protocol import (
    MAX_LINE_BYTES,
    ContainerState,
    ContainerStatus,
    LauncherError,
    LauncherFailed,
    LauncherNotFound,
    LauncherUnavailable,
    Op,
    decode_reply,
    decode_request,
    encode_error,
    encode_reply,
    encode_request,
    exit_code_of,
    read_line,
)


def test_a_request_and_its_answer_round_trip():
    op, req = decode_request(encode_request(Op.KILL, id="c1", signal=15).rstrip(b"\n"))
    assert op is Op.KILL and req == {"op": "kill", "id": "c1", "signal": 15}
    state = ContainerState("c1", ContainerStatus.RUNNING, pid=42)
    reply = decode_reply(encode_reply({"state": state.to_dict()}).rstrip(b"\n"))
    assert ContainerState.from_dict(reply["state"]) == state


@pytest.mark.parametrize(("reason", "kind"), [
    ("NotFound", LauncherNotFound), ("Unavailable", LauncherUnavailable),
    ("Timeout", LauncherUnavailable), ("StartError", LauncherFailed),
    ("InvalidSpec", LauncherFailed)])
def test_an_error_answer_is_raised_as_its_kind_with_its_reason(reason, kind):
    line = encode_error(LauncherFailed(reason, "what happened")).rstrip(b"\n")
    with pytest.raises(kind) as info:
        decode_reply(line)
    assert info.value.reason == reason and str(info.value) == "what happened"


def test_bad_requests_are_named():
    for line, words in ((b"{", "JSON"), (b"[]", "an object with an op"),
                        (b'{"op": "fork-bomb"}', "unknown op 'fork-bomb'")):
        with pytest.raises(LauncherFailed) as info:
            decode_request(line)
        assert info.value.reason == "BadRequest" and words in str(info.value)


def test_lines_are_taken_whole_and_a_line_over_the_limit_is_refused():
    buf = bytearray(b'{"op": "list"}\n{"op": "st')
    assert read_line(buf) == b'{"op": "list"}' and read_line(buf) is None
    assert buf == bytearray(b'{"op": "st')
    with pytest.raises(LauncherFailed):
        read_line(bytearray(b"x" * (MAX_LINE_BYTES + 1)))
    with pytest.raises(LauncherFailed):  # a newline past the limit is no help
        read_line(bytearray(b"x" * (MAX_LINE_BYTES + 1) + b"\n"))


def test_a_state_that_does_not_fit_is_a_failure_naming_it():
    for raw in (None, [], {"pid": 1}, {"id": "c", "status": "zombie"}, {"id": "c", "pid": {}},
                {"id": "c", "exit_code": "0"}, {"id": "c", "pid": True}):
        with pytest.raises(LauncherFailed):
            ContainerState.from_dict(raw)


def test_exit_codes_are_decoded_as_a_shell_reports_them():
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert exit_code_of(status) == (137, signal.SIGKILL)
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert exit_code_of(status) == (3, None)


@given(st.binary(max_size=300))
def test_no_bytes_make_anything_but_a_launcher_error(data):
    for decode in (decode_request, decode_reply):
        try:
            decode(data)
        except LauncherError:
            pass
    try:
        read_line(bytearray(data))
    except LauncherError:
        pass


@given(st.dictionaries(st.sampled_from(["id", "status", "pid", "exit_code", "reason", "x"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=8), st.booleans())))
def test_no_state_makes_anything_but_a_launcher_error(raw):
    try:
        ContainerState.from_dict(raw)
    except LauncherError:
        pass


def test_a_line_nested_past_the_stack_is_a_bad_request_not_a_crash():
    deep = b"[" * 100_000
    with pytest.raises(LauncherFailed, match="nested too deep"):
        decode_request(b'{"op": "list", "x": ' + deep)
    with pytest.raises(LauncherUnavailable):
        decode_reply(deep)


def test_exec_results_and_stats_are_decoded_with_their_types():
    from runtime.protocol import ExecResult, Stats
    assert ExecResult.from_dict({"exit_code": 3, "stdout": "a", "stderr": "", "timed_out": False,
                                 "ok": True}) == ExecResult(3, "a", "", False)
    assert Stats.from_dict({"cpu_ns": 1, "memory_bytes": 2, "oom_kills": 0}) == Stats(1, 2, 0)
    for bad in ({"exit_code": "3"}, {"exit_code": True}, {}):
        with pytest.raises(LauncherFailed):
            ExecResult.from_dict(bad)
    with pytest.raises(LauncherFailed):
        Stats.from_dict({"cpu_ns": 1, "memory_bytes": 2.5, "oom_kills": 0})
