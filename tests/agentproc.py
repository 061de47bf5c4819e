"""A real ``nodeagent run`` process for integration and e2e tests.

The agent binds port 0 on loopback and we read the address it logs, so tests
never race for ports.  Its stderr goes to a file in its data directory's
parent, printed when a start fails.  :meth:`AgentProcess.close` kills it
whatever state it is in; fixtures call it on teardown.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

_READY = re.compile(r"agent ready .*api=(\S+)")


class AgentProcess:
    def __init__(self, workdir: Path, name: str = "test", *extra: str,
                 env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "agent.log"
        self.name = name
        self.extra = extra
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout_s: float = 20.0) -> AgentProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        offset = self.log_path.stat().st_size
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nodeagent", "run", "--name", self.name,
             "--data-dir", str(self.data_dir), "--api-listen", "127.0.0.1:0", *self.extra],
            stdout=log, stderr=log, env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            m = _READY.search(text)
            if m:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"agent did not start; log:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def socket(self) -> Path:
        """The agent's operator socket (nodeagent raft|snapshot|keys --socket)."""
        return self.data_dir / "operator.sock"

    def client(self, timeout_s: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout_s)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        """Signal the agent and wait for it; returns its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
