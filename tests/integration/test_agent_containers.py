"""Containers outlive the agent: kill -9 it while containers run and exit; it reconnects.

Real agent and launcher processes; root (containers).  The agent starts the
launcher in its own session the first time; a restarted agent finds the same
launcher and every container's state, exits during its absence included.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path

from waiting import needs_root

from agentproc import AgentProcess
from containers import build_bundle, remove_cgroup_tree
from runtime.client import LauncherClient
from runtime.spec import load_bundle, spec_to_dict

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_root("containers")


def test_containers_survive_agent_kill_9_and_are_found_again(tmp_path):
    base = load_bundle(str(build_bundle(tmp_path / "bundle")))
    sock = str(tmp_path / "launcher.sock")
    parent = f"nodeagent-test-{os.getpid()}"
    agent = AgentProcess(tmp_path / "agent", "node1", "--launcher-socket", sock)
    launcher_pid = None
    try:
        agent.start()
        with LauncherClient(sock) as c:
            for cid, args in (("long", ("sleep", "30")), ("short", ("sh", "-c", "sleep 1; exit 3"))):
                c.call("run", id=cid, spec=spec_to_dict(dataclasses.replace(
                    base, args=args, cgroup_path=f"{parent}/{cid}")))
            long_pid = c.call("state", id="long")["state"]["pid"]
        launcher_pid = int(subprocess.run(["pgrep", "-f", f"runtime launcher .*{sock}"],
                                          capture_output=True, text=True).stdout.split()[0])
        agent.stop(signal.SIGKILL)
        time.sleep(1.5)  # "short" exits while no agent runs
        assert Path(f"/proc/{long_pid}").exists()
        agent.start()
        assert "launcher connected" in agent.log_text()
        assert "containers=2 running=1 exited=1" in agent.log_text()
        again = int(subprocess.run(["pgrep", "-f", f"runtime launcher .*{sock}"],
                                   capture_output=True, text=True).stdout.split()[0])
        assert again == launcher_pid  # the same launcher, not a second one
        with LauncherClient(sock) as c:
            assert c.call("state", id="short")["state"]["exit_code"] == 3
            assert c.call("state", id="long")["state"]["status"] == "running"
    finally:
        agent.close()
        if os.path.exists(sock):
            with LauncherClient(sock) as c:
                for st in c.call("list")["containers"]:
                    c.call("delete", id=st["id"], force=True)
        if launcher_pid:
            os.kill(launcher_pid, signal.SIGTERM)
        remove_cgroup_tree(parent)
