"""Gossip between lab nodes (each member in its own network namespace on the lab switch):
encrypted members converge, rotate their key while they keep gossiping, see a member cut
off by nft in its namespace as failed and take it back when the cut heals, and see a
killed member as failed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from waiting import needs_root

pytestmark = needs_root("network namespaces")

from pyroute2 import netns  # noqa: E402
from waiting import until  # noqa: E402

from netns.lab import Lab  # noqa: E402

PORT = 7946


class Member:
    """``python -m nodeagent.gossip.member`` in a lab node's namespace."""

    def __init__(self, lab: Lab, i: int, key: str, join: str = "") -> None:
        self.name = f"n{i}"
        argv = ["ip", "netns", "exec", lab.node_ns(i), sys.executable, "-m",
                "nodeagent.gossip.member", "--name", self.name, "--bind",
                f"{lab.node_address(i)}:{PORT}", "--profile", "local", "--key", key]
        if join:
            argv += ["--join", join]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        self.events: list[tuple[str, str]] = []
        self.members: dict[str, str] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.lock:
                if "event" in msg:
                    self.events.append((msg["event"], msg["member"]))
                elif "members" in msg:
                    self.members = msg["members"]

    def say(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def view(self) -> dict[str, str]:
        self.say("members")
        time.sleep(0.1)
        with self.lock:
            return dict(self.members)

    def saw(self, kind: str, member: str) -> bool:
        with self.lock:
            return (kind, member) in self.events

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def nft(ns: str, script: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script, text=True,
                   check=True)


CUT = f"""table inet gossipcut {{
  chain in {{ type filter hook input priority 0; udp dport {PORT} drop; tcp dport {PORT} drop; }}
  chain out {{ type filter hook output priority 0; udp dport {PORT} drop; tcp dport {PORT} drop; }}
}}"""


def test_lab_members_rotate_keys_survive_a_cut_and_see_a_kill(tmp_path):
    lab = Lab(prefix=f"ng{uuid.uuid4().hex[:5]}", subnet="192.168.217.0/24",
              state_dir=str(tmp_path / "lab"))
    members: dict[str, Member] = {}
    try:
        lab.up(4)
        old, new = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
        members["n1"] = Member(lab, 1, old)
        for i in (2, 3, 4):
            members[f"n{i}"] = Member(lab, i, old, join=f"{lab.node_address(1)}:{PORT}")
        everyone = {n: "alive" for n in members}
        until(lambda: all(m.view() == everyone for m in members.values()), what="convergence")

        # Rotation while they keep probing and gossiping: install, use, remove everywhere.
        for step in (f"install {new}", f"use {new}", f"remove {old}"):
            for m in members.values():
                m.say(step)
            time.sleep(1.5)
        time.sleep(3)
        assert all(m.view() == everyone for m in members.values())
        assert not any(m.saw(kind, n) for m in members.values() for n in members
                       for kind in ("suspect", "failed")), "someone was lost in the rotation"

        # n4 cut off by nft in its own namespace: both sides see the other failed.
        nft(lab.node_ns(4), CUT)
        until(lambda: all(members[n].view().get("n4") == "dead" for n in ("n1", "n2", "n3")),
              40, what="n4 failed for the others")
        until(lambda: members["n4"].view().get("n1") == "dead", 40, what="the others failed for n4")
        nft(lab.node_ns(4), "delete table inet gossipcut")
        until(lambda: all(m.view() == everyone for m in members.values()), 60,
              what="everyone alive again after the cut healed")

        # kill -9 a member: the others report it failed.
        members["n3"].kill()
        until(lambda: all(members[n].view().get("n3") == "dead" for n in ("n1", "n2", "n4")),
              40, what="n3 failed")
    finally:
        for m in members.values():
            m.kill()
        lab.down()
        assert not [n for n in netns.listnetns() if n.startswith(lab.prefix)]
