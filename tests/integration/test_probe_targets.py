"""Probes against real targets where pods live: an HTTP server inside a pod's network
namespace probed from its node's namespace, and exec probes run in a real container
through the launcher.  Root; namespaces and containers are the test's own."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import trio
from waiting import needs_root

pytestmark = needs_root("namespaces and containers")


from containers import build_bundle, remove_cgroup_tree  # noqa: E402
from netns.lab import Lab  # noqa: E402
from nodeagent.containers import ensure_launcher  # noqa: E402
from probes.spec import handler_for  # noqa: E402
from runtime.spec import load_bundle, spec_to_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_http_probe_reaches_a_pod_ip_from_the_node_namespace(tmp_path):
    lab = Lab(prefix=f"np{uuid.uuid4().hex[:5]}", subnet="192.168.216.0/24",
              state_dir=str(tmp_path / "lab"))
    server = None
    try:
        lab.up(1)
        pod = lab.pods(1).create("web")
        server = subprocess.Popen(["ip", "netns", "exec", pod.netns, sys.executable, "-m",
                                   "http.server", "8080", "--bind", "0.0.0.0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.8)
        script = textwrap.dedent(f"""
            import trio
            from probes.spec import handler_for
            container = {{"ports": [{{"name": "http", "containerPort": 8080}}]}}
            async def main():
                for probe in ({{"httpGet": {{"port": "http", "path": "/"}}}},
                              {{"tcpSocket": {{"port": 8080}}}},
                              {{"httpGet": {{"port": "nope"}}}}):
                    _, handler = handler_for(probe, container, "{pod.ip}")
                    print(await handler(1.0))
            trio.run(main)
        """)
        p = subprocess.run(["ip", "netns", "exec", lab.node_ns(1), sys.executable, "-c", script],
                           capture_output=True, text=True, timeout=30, cwd=ROOT)
        lines = p.stdout.splitlines()
        assert lines[0] == "(True, '')" and lines[1] == "(True, '')", p.stdout + p.stderr
        assert "'nope' is not a port of the container" in lines[2]
    finally:
        if server is not None:
            server.kill()
            server.wait()
        lab.down()


async def test_exec_probe_runs_in_the_container(tmp_path):
    base = load_bundle(str(build_bundle(tmp_path / "bundle")))
    sock = str(tmp_path / "launcher.sock")
    parent = f"nodeagent-test-{uuid.uuid4().hex[:6]}"
    try:
        launcher = await ensure_launcher(sock, str(tmp_path / "state"))  # as the agent does
        spec = dataclasses.replace(base, args=("sh", "-c", "touch /tmp/healthy; sleep 30"),
                                   readonly_rootfs=False, cgroup_path=f"{parent}/app")
        assert (await launcher.call("run", id="app", spec=spec_to_dict(spec)))["ok"]

        async def exec_fn(args: list[str], timeout_s: float) -> tuple[int, str]:
            r = await launcher.call("exec", id="app", args=args, timeout_s=timeout_s)
            return (r["exit_code"], r["stdout"] + r["stderr"]) if r["ok"] else (126, r["message"])
        await trio.sleep(0.3)
        _, healthy = handler_for({"exec": {"command": ["cat", "/tmp/healthy"]}}, {}, "", exec_fn)
        assert await healthy(2.0) == (True, "")
        _, sick = handler_for({"exec": {"command": ["cat", "/tmp/missing"]}}, {}, "", exec_fn)
        ok, message = await sick(2.0)
        assert not ok and "exited with 1" in message and "No such file" in message
        _, slow = handler_for({"exec": {"command": ["sleep", "10"]}}, {}, "", exec_fn)
        t0 = trio.current_time()
        ok, message = await slow(0.3)
        assert not ok and "exited with 137" in message and trio.current_time() - t0 < 3
        await launcher.call("delete", id="app", force=True)
        await launcher.aclose()
    finally:
        await trio.run_process(["pkill", "-f", f"runtime launcher .*--socket {sock}"], check=False)
        remove_cgroup_tree(parent)
