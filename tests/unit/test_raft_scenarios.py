"""Golden Raft scenarios, in the style of etcd-io/raft's interaction tests.

Each file in ``raft_scenarios/`` is a script: a command, ``----``, and the output the
command must produce (every message delivered, and state where asked), then a blank
line.  The run replays the script against the core and compares; a change in the
protocol shows up as a diff in review.  ``RAFT_REWRITE=1`` writes the files back with
what the code does now (read the diff before committing it).

Commands:
  cluster N [pre_vote=0] [check_quorum=0]   N servers, all voters
  tick ID N                                  N ticks on server ID
  campaign ID                                start an election now
  propose ID DATA                            a client write at ID
  read ID CONTEXT                            a ReadIndex at ID
  transfer ID TO                             leadership transfer from ID to TO
  isolate ID / heal                          drop everything to and from ID / stop that
  stabilize                                  deliver messages until there are none
  status                                     each server's role, term, log, commit, applied
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from nodeagent.raft.core import Config, Raft
from nodeagent.raft.messages import EntryKind, Message

DIR = Path(__file__).parent / "raft_scenarios"
REWRITE = os.environ.get("RAFT_REWRITE") == "1"


def describe(m: Message) -> str:
    out = f"{m.src}->{m.dst} {m.type.name} term={m.term}"
    if m.type.name in ("APPEND", "VOTE", "PRE_VOTE"):
        out += f" log_term={m.log_term} index={m.index}"
    if m.entries:
        out += " entries=[" + " ".join(
            f"{e.term}/{e.index}" + (f":{e.data.decode()}" if e.kind is EntryKind.NORMAL else
                                     f":{e.kind.name.lower()}") for e in m.entries) + "]"
    if m.commit:
        out += f" commit={m.commit}"
    if m.type.name.endswith("_RESP") and m.type.name != "READ_INDEX_RESP":
        out += " reject" if m.reject else ""
        if m.type.name == "APPEND_RESP":
            out += f" index={m.index}" + (f" hint={m.hint}" if m.reject else "")
    if m.type.name == "READ_INDEX_RESP":
        out += f" index={m.index}"
    if m.context:
        out += f" context={m.context.decode()}"
    return out


class Scenario:
    def __init__(self) -> None:
        self.servers: dict[int, Raft] = {}
        self.wire: list[Message] = []
        self.cut: set[int] = set()
        self.applied: dict[int, list[str]] = {}
        self.reads: dict[int, list[str]] = {}

    def _flush(self) -> None:
        for i, r in sorted(self.servers.items()):
            while r.has_ready():
                rd = r.ready()
                self.wire.extend(rd.messages)
                self.applied[i] += [e.data.decode() for e in rd.committed
                                    if e.kind is EntryKind.NORMAL]
                self.reads[i] += [f"{s.context.decode()}@{s.index}" for s in rd.read_states]
                r.advance(rd)

    def run(self, cmd: str) -> str:
        words = cmd.split()
        name, args = words[0], words[1:]
        out: list[str] = []
        if name == "cluster":
            n = int(args[0])
            opts = dict(a.split("=") for a in args[1:])
            ids = tuple(range(1, n + 1))
            for i in ids:
                self.servers[i] = Raft(Config(id=i, pre_vote=opts.get("pre_vote", "1") == "1",
                                              check_quorum=opts.get("check_quorum", "1") == "1"),
                                       ids, rng=random.Random(i))
                self.applied[i], self.reads[i] = [], []
        elif name == "tick":
            for _ in range(int(args[1])):
                self.servers[int(args[0])].tick()
        elif name == "campaign":
            self.servers[int(args[0])].campaign()
        elif name == "propose":
            ok = self.servers[int(args[0])].propose(args[1].encode())
            out.append("ok" if ok else "dropped")
        elif name == "read":
            ok = self.servers[int(args[0])].read_index(args[1].encode())
            out.append("ok" if ok else "dropped")
        elif name == "transfer":
            ok = self.servers[int(args[0])].transfer_leadership(int(args[1]))
            out.append("ok" if ok else "refused")
        elif name == "isolate":
            self.cut.add(int(args[0]))
        elif name == "heal":
            self.cut.clear()
        elif name == "stabilize":
            for _ in range(100):
                self._flush()
                if not self.wire:
                    break
                batch, self.wire = self.wire, []
                for m in batch:
                    lost = m.src in self.cut or m.dst in self.cut
                    out.append(describe(m) + (" (lost)" if lost else ""))
                    if not lost:
                        self.servers[m.dst].step(m)
        elif name == "status":
            self._flush()
            for i, r in sorted(self.servers.items()):
                log = " ".join(f"{e.term}/{e.index}" for e in r.log.entries)
                out.append(f"{i}: {r.role.value} term={r.term} leader={r.leader} "
                           f"log=[{log}] commit={r.log.committed} "
                           f"applied={self.applied[i]} reads={self.reads[i]}")
        else:
            raise ValueError(f"unknown command {name!r}")
        self._flush()
        return "\n".join(out)


def parse(text: str) -> list[tuple[str, str]]:
    """[(command, expected output)]; comments (#) between blocks are kept by rewrite."""
    blocks = []
    for chunk in text.strip().split("\n\n"):
        lines = [ln for ln in chunk.splitlines() if not ln.startswith("#")]
        if not lines:
            continue
        sep = lines.index("----")
        blocks.append(("\n".join(lines[:sep]), "\n".join(lines[sep + 1:])))
    return blocks


@pytest.mark.parametrize("path", sorted(DIR.glob("*.txt")), ids=lambda p: p.stem)
def test_golden_scenario(path: Path):
    text = path.read_text()
    scenario = Scenario()
    rewritten = []
    for chunk in text.strip().split("\n\n"):
        comments = [ln for ln in chunk.splitlines() if ln.startswith("#")]
        lines = [ln for ln in chunk.splitlines() if not ln.startswith("#")]
        if not lines:
            rewritten.append("\n".join(comments))
            continue
        sep = lines.index("----") if "----" in lines else len(lines)
        command, expected = lines[0], "\n".join(lines[sep + 1:])
        got = scenario.run(command)
        if REWRITE:
            rewritten.append("\n".join([*comments, command, "----", *([got] if got else [])]))
        else:
            assert got == expected, f"{path.name}: after {command!r}\n--- expected\n{expected}" \
                                    f"\n--- got\n{got}\n(RAFT_REWRITE=1 rewrites the file)"
    if REWRITE:
        path.write_text("\n\n".join(rewritten) + "\n")
