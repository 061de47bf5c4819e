"""Shared plumbing for benchmarks: peers' installation, processes, ports, stats, output.

Every benchmark runs its peer in the same run, prints a table and writes JSON
lines ``{"name", "unit", "ours", "peer", "ratio", "n", ...}`` (DESIGN.md,
Contracts).  Processes started here are killed on exit, also on failure.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _in_project_venv() -> None:
    """Benchmarks run in the project's venv (with the bench extras), made if missing."""
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    subprocess.run(["bash", "-c", 'source "$1/scripts/lib/env.sh" && ensure_venv test,bench',
                    "_", str(ROOT)], check=True)
    python = str(venv / "bin" / "python")
    os.execv(python, [python, *sys.argv])


_in_project_venv()
_PROCS: list[subprocess.Popen[bytes]] = []
_DIRS: list[str] = []


def _cleanup() -> None:
    for p in _PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    for d in _DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def args(description: str) -> argparse.Namespace:
    name = Path(sys.argv[0]).stem
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a smaller run (about a minute)")
    p.add_argument("--out", default=str(ROOT / "bench-results" / f"{name}.jsonl"),
                   help="JSON lines output (default bench-results/%(prog)s.jsonl)")
    return p.parse_args()


def tempdir(prefix: str) -> str:
    d = tempfile.mkdtemp(prefix=prefix)
    _DIRS.append(d)
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv: list[str], log: str, cwd: str | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab")
    p = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                         start_new_session=True, cwd=cwd)
    out.close()
    _PROCS.append(p)
    return p


def ensure_apt(package: str, binary: str) -> str:
    path = shutil.which(binary)
    if path:
        return path
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {package} (apt)", file=sys.stderr)
    if subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env,
                      stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    path = shutil.which(binary)
    if not path:
        raise SystemExit(f"{package} installed but {binary} not found")
    return path


def ensure_bench_extra() -> None:
    try:
        import etcd3  # noqa: F401
        import pysyncobj  # noqa: F401
    except ImportError:
        print("installing the bench extra (python-etcd3, grpcio, pysyncobj)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[test,bench]"],
                       check=True)


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: str
    tls: ssl.SSLContext | None = None  # the admin's (the agent's admin kubeconfig); None: HTTP

    def http(self, **kw: Any) -> Any:
        """An httpx.Client calling as the cluster's admin."""
        import httpx
        return httpx.Client(base_url=self.url, verify=self.tls or True, **kw)

    def ahttp(self, **kw: Any) -> Any:
        import httpx
        return httpx.AsyncClient(base_url=self.url, verify=self.tls or True, **kw)


def start_agent(*extra: str, tree: str | None = None) -> Agent:
    """An agent on loopback; ``tree``: run that source tree's agent (a git worktree of
    another commit) instead of this one's, with the same venv."""
    work = tempdir("bench-agent-")
    log = os.path.join(work, "agent.log")
    # ``python -m`` puts the working directory first on the path: run from the tree.
    proc = spawn([sys.executable, "-m", "nodeagent", "run", "--name", "bench", "--data-dir",
                  os.path.join(work, "data"), "--api-listen", "127.0.0.1:0", *extra], log,
                 cwd=tree)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = Path(log).read_text(errors="replace") if os.path.exists(log) else ""
        m = re.search(r"agent ready .*api=(\S+)", text)
        if m:
            data = os.path.join(work, "data")
            return Agent(proc, m.group(1), data, _admin_tls(data) if m.group(1).startswith(
                "https://") else None)
        if proc.poll() is not None:
            raise SystemExit(f"agent exited:\n{text}")
        time.sleep(0.05)
    raise SystemExit("agent did not start")


def _admin_tls(data_dir: str) -> ssl.SSLContext:
    from nodeagent.api.kubeconfig import load
    ctx = load(os.path.join(data_dir, "admin.kubeconfig")).ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    return ctx


@dataclass
class Certs:
    """A CA and, signed by it, a serving certificate for 127.0.0.1 and a client one: how
    a peer runs with TLS and client certificates (etcd's --client-cert-auth)."""
    dir: str

    @classmethod
    def make(cls, where: str) -> Certs:
        from nodeagent import pki
        ca = pki.make_ca("bench-ca")
        d = Path(where)
        pki.save(ca, d / "ca.crt", d / "ca.key")
        pki.save(pki.issue_peer(ca, "server", (), ["127.0.0.1", "localhost"]),
                 d / "server.crt", d / "server.key")
        pki.save(pki.issue_client(ca, "root"), d / "client.crt", d / "client.key")
        return cls(where)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def etcd_args(self) -> list[str]:
        """etcd's flags for TLS with client certificates on its client and peer URLs."""
        out: list[str] = []
        for side in ("", "peer-"):
            out += [f"--{side}cert-file", self.path("server.crt"),
                    f"--{side}key-file", self.path("server.key"),
                    f"--{side}trusted-ca-file", self.path("ca.crt"),
                    f"--{side}client-cert-auth"]
        return out

    def client_context(self) -> ssl.SSLContext:
        from nodeagent import pki
        return pki.client_context(Path(self.path("ca.crt")), Path(self.path("client.crt")),
                                  Path(self.path("client.key")))


@dataclass
class Etcd:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    certs: Certs | None = None  # TLS with client certificates

    @property
    def url(self) -> str:
        return f"{'https' if self.certs else 'http'}://{self.host}:{self.port}"

    def grpc(self, **kw: Any) -> Any:
        """A python-etcd3 client (over TLS with a client certificate when etcd has one)."""
        import etcd3
        if self.certs is not None:
            kw.update(ca_cert=self.certs.path("ca.crt"), cert_key=self.certs.path("client.key"),
                      cert_cert=self.certs.path("client.crt"))
        return etcd3.client(host=self.host, port=self.port, **kw)

    def http(self, **kw: Any) -> Any:
        import httpx
        verify = self.certs.client_context() if self.certs else True
        return httpx.Client(base_url=self.url, verify=verify, **kw)

    def ahttp(self, **kw: Any) -> Any:
        import httpx
        verify = self.certs.client_context() if self.certs else True
        return httpx.AsyncClient(base_url=self.url, verify=verify, **kw)


def start_etcd(tls: bool = False) -> Etcd:
    """A single-member etcd on loopback; ``tls``: clients over TLS with client
    certificates (--client-cert-auth), and its peer URL over TLS too."""
    binary = ensure_apt("etcd-server", "etcd")
    work = tempdir("bench-etcd-")
    client, peer = free_port(), free_port()
    certs = Certs.make(work) if tls else None
    scheme = "https" if tls else "http"
    argv = [binary, "--name", "bench", "--data-dir", os.path.join(work, "data"),
            "--listen-client-urls", f"{scheme}://127.0.0.1:{client}",
            "--advertise-client-urls", f"{scheme}://127.0.0.1:{client}",
            "--listen-peer-urls", f"{scheme}://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"{scheme}://127.0.0.1:{peer}",
            "--initial-cluster", f"bench={scheme}://127.0.0.1:{peer}",
            "--log-level", "error", "--logger", "zap",
            "--quota-backend-bytes", str(4 * 1024**3)]
    if certs is not None:
        argv += certs.etcd_args()
    proc = spawn(argv, os.path.join(work, "etcd.log"))
    etcd = Etcd(proc, "127.0.0.1", client, certs)
    import httpx
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with etcd.http(timeout=1) as h:
                if h.get("/health").status_code == 200:
                    return etcd
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("etcd exited: see " + work)
        time.sleep(0.1)
    raise SystemExit("etcd did not start")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


@dataclass
class Results:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, unit: str, ours: float, peer: float | None, *, higher_is_better: bool,
            n: int, peer_name: str = "", target: str = "", **extra: Any) -> None:
        if peer in (None, 0):
            ratio = None
        elif higher_is_better:
            ratio = ours / peer
        else:
            ratio = peer / ours if ours else None
        self.rows.append({"name": name, "unit": unit, "ours": round(ours, 3),
                          "peer": None if peer is None else round(peer, 3),
                          "ratio": None if ratio is None else round(ratio, 3), "n": n,
                          "peer_name": peer_name, "target": target,
                          "higher_is_better": higher_is_better, **extra})

    def print_and_write(self, out: str) -> None:
        head = ["benchmark", "unit", "ours", "peer", "ratio", "target", "peer setting"]
        rows = [head] + [[r["name"], r["unit"], _fmt(r["ours"]), _fmt(r["peer"]),
                          _fmt(r["ratio"]), r["target"], r["peer_name"]] for r in self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        print("ratio > 1 means we are better (faster / smaller); it is ours/peer for rates and "
              "peer/ours for times and sizes.")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a") as f:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for r in self.rows:
                f.write(json.dumps({**r, "time": stamp}) + "\n")
        print(f"wrote {out}")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def median(values: list[float]) -> float:
    return statistics.median(values)
