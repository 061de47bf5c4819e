"""``GET .../pods/{name}/log``: a container's output, as the kubelet serves it.

The pod manager writes each container attempt's output as a CRI log file
(``<logs dir>/<ns>_<pod>_<uid>/<container>/<attempt>.log``, rotated); this reads
the newest attempt (or the one before with ``previous``), with ``tailLines``,
``sinceSeconds``/``sinceTime``, ``timestamps``, ``limitBytes``, and ``follow``
that keeps the response open and sends lines as they are written (the file is
polled: an inotify watch per follower is not worth its file descriptor).
Errors are the apiserver's: a pod with several containers needs ``container``,
a container that never ran has no log yet.  Pods on other nodes are served by
their node's agent (with the cluster).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import trio

from nodeagent.api.status import ApiError
from runtime.logs import LogLine, format_time, parse_line, read_logs

__all__ = ["PodLogs"]

POLL_S = 0.2
Obj = dict[str, Any]


class PodLogs:
    def __init__(self, node: str, logs_dir: str) -> None:
        self.node, self.logs_dir = node, logs_dir

    def path(self, pod: Obj, container: str, previous: bool) -> str:
        meta = pod["metadata"]
        name = pod["metadata"]["name"]
        d = os.path.join(self.logs_dir, f"{meta['namespace']}_{name}_{meta['uid']}", container)
        attempts = sorted((int(f[:-4]) for f in _listdir(d) if f.endswith(".log")
                           and f[:-4].isdigit()), reverse=True)
        if previous:
            if len(attempts) < 2:
                raise ApiError.bad_request(f'previous terminated container "{container}" in pod '
                                           f'"{name}" not found')
            return os.path.join(d, f"{attempts[1]}.log")
        if not attempts:
            reason = _waiting_reason(pod, container) or "ContainerCreating"
            raise ApiError.bad_request(f'container "{container}" in pod "{name}" is waiting to '
                                       f"start: {reason}")
        return os.path.join(d, f"{attempts[0]}.log")

    def container(self, pod: Obj, requested: str | None) -> str:
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        init = [c["name"] for c in [*(spec.get("initContainers") or []),
                                    *(spec.get("ephemeralContainers") or [])]]
        name = pod["metadata"]["name"]
        if not requested:
            if len(names) == 1:
                return names[0]
            raise ApiError.bad_request(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(names)}]" + (f" or one of the init containers: [{' '.join(init)}]"
                                          if init else ""))
        if requested not in names + init:
            raise ApiError.bad_request(f"container {requested} is not valid for pod {name}")
        return requested

    async def serve(self, pod: Obj, query: Any) -> tuple[bytes, AsyncIterator[bytes] | None]:
        """(what is there now, and with follow an iterator of what comes next)."""
        if (pod.get("spec") or {}).get("nodeName") not in (self.node, None):
            raise ApiError(404, "NotFound", f"the logs of pod {pod['metadata']['name']} are on "
                           f"node {pod['spec']['nodeName']}, whose agent serves them")
        container = self.container(pod, query.get("container"))
        path = self.path(pod, container, _flag(query.get("previous")))
        tail = _int(query, "tailLines")
        since_ns = None
        since_s = _int(query, "sinceSeconds", minimum=1)
        if since_s is not None:
            since_ns = time.time_ns() - since_s * 1_000_000_000
        elif query.get("sinceTime"):
            from nodeagent.objects.podutil import parse_time
            since_ns = int(parse_time(query["sinceTime"]) * 1e9)
        stamps = _flag(query.get("timestamps"))
        limit = _int(query, "limitBytes", minimum=1)
        lines = await trio.to_thread.run_sync(
            functools.partial(read_logs, path, tail=tail, since_ns=since_ns))
        body = b"".join(_render(line, stamps) for line in lines)
        if limit is not None:
            body = body[:limit]
        if not _flag(query.get("follow")) or (limit is not None and len(body) >= limit):
            return body, None
        return body, _follow(path, stamps, limit - len(body) if limit else None)


async def _follow(path: str, stamps: bool, left: int | None) -> AsyncIterator[bytes]:
    """New complete lines of the file (following rotation), until the client goes."""
    async for lines in follow_lines(path):
        out = b"".join(_render(line, stamps) for line in lines)
        if left is not None:
            out, left = out[:left], left - len(out[:left])
        if out:
            yield out
        if left is not None and left <= 0:
            return


async def follow_lines(path: str, poll_s: float = POLL_S) -> AsyncIterator[list[LogLine]]:
    """The lines written to a container's log file from now on (following rotation), as
    they come; kubectl logs -f and pods/attach read them."""
    st = os.stat(path)
    pos, inode = st.st_size, st.st_ino
    partial = b""
    while True:
        await trio.sleep(poll_s)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if st.st_ino != inode:
            pos, inode = 0, st.st_ino
        if st.st_size <= pos:
            continue
        data = await trio.to_thread.run_sync(_read_at, path, pos, st.st_size - pos)
        complete, _, rest = (partial + data).rpartition(b"\n")
        pos += len(data)
        partial = rest
        lines = [line for raw in complete.split(b"\n") if raw
                 for line in [parse_line(raw + b"\n")] if line is not None]
        if lines:
            yield lines


def _read_at(path: str, pos: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(pos)
        return f.read(size)


def _render(line: LogLine, stamps: bool) -> bytes:
    text = line.text + (b"" if line.partial else b"\n")
    return (format_time(line.time_ns).encode() + b" " + text) if stamps else text


def _listdir(d: str) -> list[str]:
    try:
        return os.listdir(d)
    except FileNotFoundError:
        return []


def _flag(value: str | None) -> bool:
    return value in ("true", "1", "True")


def _int(query: Any, name: str, minimum: int = 0) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError.bad_request(f'{name}: Invalid value: "{raw}": must be an integer') from None
    if value < minimum:
        raise ApiError.bad_request(f"{name}: Invalid value: {value}: must be greater than or "
                                   f"equal to {minimum}")
    return value


def _waiting_reason(pod: Obj, container: str) -> str | None:
    for st in (pod.get("status") or {}).get("containerStatuses") or []:
        if st.get("name") == container:
            return ((st.get("state") or {}).get("waiting") or {}).get("reason")
    return None
