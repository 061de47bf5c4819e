"""The launcher's wire protocol, spoken by the launcher and by every client of it.

One JSON object per line over a Unix stream socket; each request gets one answer line.
A request is ``{"op": OP, ...arguments}``; an answer is ``{"ok": true, ...result}`` or
``{"ok": false, "reason", "message"}``.  The ops and their arguments:

- ``create`` {id, spec, log_path?, stdin?, stdin_once?}: set the container up and hold it before exec;
  ``start`` {id}: let it exec; ``run``: both.  Each answers with its ``state``.
- ``state`` {id}, ``list``, ``wait`` {id} (answers once the container exited), ``stats`` {id}.
- ``kill`` {id, signal, all?}, ``stop`` {id, grace_s} (SIGTERM, then SIGKILL to the
  whole container), ``delete`` {id, force?}.
- ``exec`` {id, args, env?, cwd?, timeout_s?}: answers when the command exits, with its
  output (an ExecResult).
- ``exec_attach`` {id, args, stdin?, tty?}: answers at once with the command's ends passed
  as SCM_RIGHTS (stdin's write end if asked, stdout's and stderr's read ends, or one
  terminal master with tty), then a second line with its exit code.  Closing the
  connection hangs the command up, as closing a terminal does.
- ``attach`` {id}: answers with the write end of the running container's stdin as
  SCM_RIGHTS (``run``/``create`` with ``stdin: true`` keep it; ``stdin_once`` hands it
  out once).
- ``port_dial`` {id, port}: answers at once with a TCP socket connecting (non-blocking)
  to 127.0.0.1:port in the running container's network namespace, passed as SCM_RIGHTS
  (pods/portforward, as kubelet dials inside the pod's namespace).
- ``sandbox_bridge`` {net}, ``sandbox_create`` {net, pod_uid}, ``sandbox_delete``
  {net, pod_uid}, ``sandbox_reconcile`` {net, live}: the pods' network sandboxes, made
  by the launcher because making a network namespace forks (net is {cidr, bridge?,
  netns_prefix?, mtu?, ipam_dir}).

Why the clients share this module: the CLI's blocking client, the agent's and the pod
manager's Trio clients are transports only (a socket and a lock); what a line holds and
what an error means is decided here once.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_LINE_BYTES",
    "ContainerState",
    "ContainerStatus",
    "ExecResult",
    "LauncherError",
    "LauncherFailed",
    "LauncherNotFound",
    "LauncherUnavailable",
    "Op",
    "Stats",
    "decode_reply",
    "decode_request",
    "encode_error",
    "encode_reply",
    "encode_request",
    "exit_code_of",
    "read_line",
]

MAX_LINE_BYTES = 1 << 20  # a request
# An answer: an exec's output is capped at 1 MiB a stream, and JSON writes a byte that is
# not UTF-8 as six ("\ufffd").
MAX_ANSWER_BYTES = 16 << 20


class Op(StrEnum):
    CREATE = "create"
    START = "start"
    RUN = "run"
    STATE = "state"
    LIST = "list"
    WAIT = "wait"
    STATS = "stats"
    KILL = "kill"
    STOP = "stop"
    DELETE = "delete"
    EXEC = "exec"
    EXEC_ATTACH = "exec_attach"
    PORT_DIAL = "port_dial"
    ATTACH = "attach"
    SANDBOX_BRIDGE = "sandbox_bridge"
    SANDBOX_CREATE = "sandbox_create"
    SANDBOX_DELETE = "sandbox_delete"
    SANDBOX_RECONCILE = "sandbox_reconcile"

    @property
    def is_sandbox(self) -> bool:
        return self.value.startswith("sandbox_")


class ContainerStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


@dataclass
class ContainerState:
    """What the launcher knows of one container; also its ``state.json`` on disk."""
    id: str
    status: ContainerStatus = ContainerStatus.CREATED
    pid: int = 0
    pid_start: int = 0  # /proc/<pid>/stat starttime: a reused PID has another
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""  # Completed | Error | OOMKilled | StartError | Unknown
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    log_path: str = ""
    cgroup_path: str = ""
    oom_kills_before: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> ContainerState:
        """A state from an answer or a file; LauncherFailed names what does not fit."""
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise LauncherFailed("BadAnswer", f"a container state is an object with an id, "
                                 f"not {str(raw)[:80]!r}")
        st: ContainerState = _typed(cls, raw, _STATE_TYPES)
        try:
            st.status = ContainerStatus(st.status)
        except ValueError as exc:
            raise LauncherFailed("BadAnswer", f"container state {raw['id']!r}: {exc}") from exc
        return st


_STATE_TYPES: dict[str, type | tuple[type, ...]] = {
    f.name: (int, type(None)) if f.name in ("exit_code", "signal") else
    int if f.type == "int" else str for f in dataclasses.fields(ContainerState)}


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ExecResult:
        return _typed(cls, raw, {"exit_code": int, "stdout": str, "stderr": str,
                                 "timed_out": bool})


@dataclass(frozen=True)
class Stats:
    cpu_ns: int
    memory_bytes: int
    oom_kills: int

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Stats:
        return _typed(cls, raw, {"cpu_ns": int, "memory_bytes": int, "oom_kills": int})


def _typed(cls: Any, raw: dict[str, Any], types: dict[str, type | tuple[type, ...]]) -> Any:
    """``cls`` from the answer's fields of these types (a bool is no int); LauncherFailed
    naming a misfit."""
    fields = {k: raw[k] for k in types if k in raw}
    for name, value in fields.items():
        want = types[name]
        if not isinstance(value, want) or (isinstance(value, bool) and want is not bool):
            what = f"{cls.__name__} {raw['id']!r}" if "id" in raw else cls.__name__
            raise LauncherFailed("BadAnswer", f"{what}: {name} is {type(value).__name__}")
    try:
        return cls(**fields)
    except TypeError as exc:  # a field missing
        raise LauncherFailed("BadAnswer", f"{cls.__name__}: {exc}") from exc


# --- errors ---------------------------------------------------------------------------------

class LauncherError(Exception):
    """An op the launcher did not do.  ``reason`` is the wire's CamelCase word
    (``InvalidSpec``, ``NotRunning``, ...) that the pod manager turns into a pod's reason."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class LauncherUnavailable(LauncherError):
    """No answer: no launcher at the socket, the connection dropped, or it timed out.
    The op may or may not have happened."""

    def __init__(self, message: str, reason: str = "Unavailable") -> None:
        super().__init__(reason, message)


class LauncherNotFound(LauncherError):
    """No container (or exec target) by that id."""


class LauncherFailed(LauncherError):
    """The launcher answered, and the op failed."""


def error_from_answer(reason: str, message: str) -> LauncherError:
    if reason == "NotFound":
        return LauncherNotFound(reason, message)
    if reason in ("Unavailable", "Timeout"):
        return LauncherUnavailable(message, reason)
    return LauncherFailed(reason, message)


# --- lines ------------------------------------------------------------------------------------

def encode_request(op: Op | str, **args: Any) -> bytes:
    return json.dumps({"op": str(op), **args}).encode() + b"\n"


def decode_request(line: bytes) -> tuple[Op, dict[str, Any]]:
    """(op, the whole request); LauncherFailed("BadRequest") for anything else."""
    try:
        req = json.loads(line)
    except ValueError as exc:
        raise LauncherFailed("BadRequest", f"a request is one JSON object a line: {exc}") from exc
    except RecursionError as exc:  # json nests by recursion: a line of "[[[[..." ends here
        raise LauncherFailed("BadRequest", "a request nested too deep") from exc
    if not isinstance(req, dict) or not isinstance(req.get("op"), str):
        raise LauncherFailed("BadRequest", "a request is an object with an op")
    try:
        return Op(req["op"]), req
    except ValueError as exc:
        raise LauncherFailed("BadRequest", f"unknown op {req['op'][:80]!r}") from exc


def encode_reply(result: dict[str, Any]) -> bytes:
    return json.dumps({"ok": True, **result}).encode() + b"\n"


def encode_error(exc: LauncherError) -> bytes:
    return json.dumps({"ok": False, "reason": exc.reason, "message": str(exc)}).encode() + b"\n"


def decode_reply(line: bytes) -> dict[str, Any]:
    """The result of an answer line; the LauncherError it carries, raised."""
    try:
        reply = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise LauncherUnavailable(f"the launcher answered {line[:80]!r}") from exc
    if not isinstance(reply, dict):
        raise LauncherUnavailable(f"the launcher answered {line[:80]!r}")
    if not reply.get("ok"):
        raise error_from_answer(str(reply.get("reason") or "Unknown"), str(reply.get("message", "")))
    return reply


def read_line(buf: bytearray, limit: int = MAX_LINE_BYTES) -> bytes | None:
    """Take one line (without its newline) off the front of ``buf``; None if none is whole.
    A line longer than ``limit`` is an error: nothing this protocol sends is."""
    end = buf.find(b"\n", 0, limit + 1)
    if end < 0:
        if len(buf) > limit:
            raise LauncherFailed("BadRequest", f"request too large: a line over {limit} bytes")
        return None
    line = bytes(buf[:end])
    del buf[:end + 1]
    return line


def exit_code_of(wait_status: int) -> tuple[int, int | None]:
    """(exit code, signal) of a wait status, as a shell reports it: a process killed by
    signal N exits 128+N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return (128 - code, -code) if code < 0 else (code, None)
