"""scripts/install into a scratch root: the venv, the config, the example images and the
systemd unit; `systemd-analyze verify` finds nothing wrong with the unit; and the
installed agent, started as systemd starts it (its ExecStart, NOTIFY_SOCKET,
WATCHDOG_USEC), says READY=1, pets the watchdog and says STOPPING=1 on SIGTERM.

systemd itself is not PID 1 here, so the unit is not started by it; the VM lab
(scripts/vmlab) is where systemd runs the agent for real."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("busybox") is None:
        pytest.skip("busybox (busybox-static) is needed to build the example images; "
                    "scripts/test installs it as root")
    t = tmp_path_factory.mktemp("install")
    env = {**os.environ, "NODEAGENT_PREFIX": str(t / "opt"), "NODEAGENT_CONFIG_DIR": str(t / "etc"),
           "NODEAGENT_DATA_DIR": str(t / "var"), "NODEAGENT_UNIT_DIR": str(t / "units"),
           "NODEAGENT_NO_APT": "1"}
    p = subprocess.run([str(ROOT / "scripts" / "install"), "--name", "n1", "--address",
                        "127.0.0.1", "--server", "1", "--bootstrap-expect", "1"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return t


def test_the_unit_is_what_systemd_wants_and_verify_passes(installed):
    unit = (installed / "units" / "nodeagent.service").read_text()
    service = dict(line.split("=", 1) for line in unit.splitlines()
                   if "=" in line and not line.startswith("#"))
    assert service["Type"] == "notify" and service["Delegate"] == "yes"
    assert service["KillMode"] == "process" and service["Restart"] == "on-failure"
    assert service["WatchdogSec"] == "30s"
    assert service["UMask"] == "0077"  # what the agent writes is root's alone
    assert service["ExecStart"] == (f"{installed}/opt/venv/bin/nodeagent run --config "
                                    f"{installed}/etc/agent.toml")
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze (Debian's systemd) is not installed")
    p = subprocess.run(["systemd-analyze", "verify", str(installed / "units" / "nodeagent.service")],
                       capture_output=True, text=True, timeout=60)
    complaints = [line for line in p.stderr.splitlines() if "nodeagent.service" in line]
    assert p.returncode == 0 and not complaints, p.stderr
    config = tomllib.loads((installed / "etc" / "agent.toml").read_text())
    assert config["raft_id"] == 1 and config["raft_bootstrap_expect"] == 1
    assert config["cluster_cidr"] == "10.244.0.0/16" and config["name"] == "n1"
    # No key given: the first server makes one (gossip is never plaintext by default).
    assert "gossip_insecure" not in config and "gossip_key_file" not in config
    assert (installed / "etc" / "agent.toml").stat().st_mode & 0o777 == 0o600
    assert (installed / "var" / "images").is_dir()  # busybox and kubia imported


def test_the_installed_agent_talks_to_systemd_as_type_notify_with_a_watchdog(installed, tmp_path):
    unit = (installed / "units" / "nodeagent.service").read_text()
    exec_start = next(line.split("=", 1)[1] for line in unit.splitlines()
                      if line.startswith("ExecStart="))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(30)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    # This test's own ports; no pods (no launcher) and no service rules on this machine.
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "WATCHDOG_USEC": "1000000", "NODEAGENT_API_LISTEN": "127.0.0.1:0",
           "NODEAGENT_RAFT_LISTEN": f"127.0.0.1:{ports[0]}",
           "NODEAGENT_GOSSIP_LISTEN": f"127.0.0.1:{ports[1]}",
           "NODEAGENT_LAUNCHER_SOCKET": "", "NODEAGENT_PROXY": ""}
    proc = subprocess.Popen(shlex.split(exec_start), env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "agent.log", "wb"), start_new_session=True)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not any(m.startswith("WATCHDOG=1") for m in seen):
            assert time.monotonic() < deadline, seen
            seen.append(notify.recv(4096).decode())
        ready = next(m for m in seen if m.startswith("READY=1"))
        assert "STATUS=serving API on https://127.0.0.1:" in ready
        assert seen.index(ready) < next(i for i, m in enumerate(seen) if m == "WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in seen:
            seen.append(notify.recv(4096).decode())
        assert proc.wait(30) == 0
    finally:
        notify.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
