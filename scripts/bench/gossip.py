#!/usr/bin/env python3
"""Gossip benchmark: N members as real processes on loopback, ours against serf in the same run.

  ours   python -m nodeagent.gossip.member (SWIM with Lifeguard), lan profile
  serf   Debian's serf agent (memberlist with Lifeguard), its default lan profile,
         observed through its RPC event stream
Every member of a system is started first and idle; then all are told to join member 0
at once, so the clock times gossip, not process start-up.  Events are timed when the
benchmark reads them (one reader thread per member, for both systems).
Measured, for N = 20 and 50 (--quick: 10 and 20):
  converge   join issued -> every member has seen every other join
  detect     kill -9 one member -> every survivor reports it failed (median of 5 kills)
  idle cost  CPU (% of a core) and RSS per member, after converging, over 10 s
  slowed     (root) N=10 members in lab namespaces, one member's link slowed with tc in
             its namespace (a token bucket: this kernel has no netem): false "failed" events
             over 60 s (--quick: 6 members, 30 s)
Ratios are peer/ours for times and costs (> 1: we do better).
Targets: detection and convergence ratio >= 1.0 (ours <= serf), CPU per member
<= 2x serf's.
Usage: scripts/bench/gossip.py [--quick] [--out FILE]
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import msgpack
import psutil

HERE = Path(__file__).resolve().parent
# The slowed member's link: this kernel has no netem (CONFIG_NET_SCH_NETEM unset), so a
# token bucket slows it instead: 16 kbit/s, packets queue up to 1.5 s, then drop.
SHAPING = "tbf rate 16kbit burst 1600 latency 1500ms"


class Member:
    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int) -> None:
        self.name, self.proc, self.port = name, proc, port
        self.seen: dict[tuple[str, str], float] = {}  # (event, member) -> first time read
        self.lock = threading.Lock()

    def saw(self, event: str, member: str) -> None:
        with self.lock:
            self.seen.setdefault((event, member), time.monotonic())

    def when(self, event: str, member: str) -> float | None:
        with self.lock:
            return self.seen.get((event, member))

    def alive(self) -> bool:
        return self.proc.poll() is None


class System:
    name = ""
    members: list[Member]

    def start(self, n: int) -> None:
        raise NotImplementedError

    def join_all(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for m in self.members:
            if m.alive():
                m.proc.kill()
                m.proc.wait()


class Ours(System):
    name = "ours"

    def start(self, n: int) -> None:
        self.members = []
        for i in range(n):
            port = c.free_port()
            proc = subprocess.Popen([sys.executable, "-m", "nodeagent.gossip.member", "--name",
                                     f"m{i}", "--bind", f"127.0.0.1:{port}"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            c._PROCS.append(proc)
            self.members.append(Member(f"m{i}", proc, port))
        for m in self.members:
            assert m.proc.stdout is not None
            line = m.proc.stdout.readline()
            if line.strip() != b"ready":
                raise SystemExit(f"ours: {m.name} did not start")
            threading.Thread(target=self._read, args=(m,), daemon=True).start()

    @staticmethod
    def _read(m: Member) -> None:
        assert m.proc.stdout is not None
        for line in m.proc.stdout:
            ev = json.loads(line)
            if "event" in ev:
                m.saw(ev["event"], ev["member"])

    def join_all(self) -> None:
        seed = self.members[0].port
        for m in self.members[1:]:
            assert m.proc.stdin is not None
            m.proc.stdin.write(f"join 127.0.0.1:{seed}\n".encode())
            m.proc.stdin.flush()


class SerfRPC:
    """serf's RPC protocol (msgpack request/response headers, serf/client)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.unpacker = msgpack.Unpacker(raw=True)
        self.seq = 0
        self.call("handshake", {"Version": 1})

    @classmethod
    def at(cls, host: str, port: int) -> SerfRPC:
        return cls(port, host)

    @classmethod
    def when_up(cls, host: str, port: int, name: str, timeout_s: float = 20) -> SerfRPC:
        """Connect once the agent listens (it has just been started)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return cls(port, host)
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"serf: {name} did not start") from None
                time.sleep(0.05)

    def send(self, command: str, body: dict | None = None) -> None:
        self.seq += 1
        data = msgpack.packb({"Command": command, "Seq": self.seq})
        if body is not None:
            data += msgpack.packb(body)
        self.sock.sendall(data)

    def read(self) -> dict:
        while True:
            for obj in self.unpacker:
                return obj
            data = self.sock.recv(65536)
            if not data:
                raise OSError("serf closed the RPC connection")
            self.unpacker.feed(data)

    def call(self, command: str, body: dict | None = None) -> dict:
        self.send(command, body)
        header = self.read()
        if header.get(b"Error"):
            raise SystemExit(f"serf rpc {command}: {header[b'Error']!r}")
        return header


class Serf(System):
    name = "serf"

    def __init__(self, profile: str = "lan") -> None:
        self.profile = profile  # serf's -profile: lan (its default), wan or local

    def start(self, n: int) -> None:
        binary = c.ensure_apt("serf", "serf")
        work = c.tempdir("bench-gossip-serf-")
        self.members, self.rpc = [], []
        for i in range(n):
            port, rpc = c.free_port(), c.free_port()
            proc = c.spawn([binary, "agent", f"-node=m{i}", f"-bind=127.0.0.1:{port}",
                            f"-rpc-addr=127.0.0.1:{rpc}", f"-profile={self.profile}",
                            "-log-level=warn"],
                           os.path.join(work, f"m{i}.log"))
            self.members.append(Member(f"m{i}", proc, port))
            self.rpc.append(rpc)
        for m, rpc in zip(self.members, self.rpc, strict=True):
            stream = SerfRPC.when_up("127.0.0.1", rpc, m.name)
            stream.call("stream", {"Type": "member-join,member-failed,member-leave"})
            threading.Thread(target=self._read, args=(m, stream), daemon=True).start()

    @staticmethod
    def _read(m: Member, stream: SerfRPC) -> None:
        kinds = {b"member-join": "join", b"member-failed": "failed", b"member-leave": "leave"}
        try:
            while True:
                stream.read()  # the response header of the stream
                body = stream.read()
                kind = kinds.get(body.get(b"Event", b""))
                for member in body.get(b"Members", []):
                    name = member[b"Name"].decode()
                    if kind and name != m.name:
                        m.saw(kind, name)
        except OSError:
            return

    def join_all(self) -> None:
        seed = f"127.0.0.1:{self.members[0].port}"
        conns = [SerfRPC(rpc) for rpc in self.rpc[1:]]
        for conn in conns:  # all requests out first, then the answers
            conn.send("join", {"Existing": [seed], "Replay": False})
        for conn in conns:
            header = conn.read()
            if header.get(b"Error"):
                raise SystemExit(f"serf join: {header[b'Error']!r}")
            conn.read()  # {"Num": n}
            conn.sock.close()


def converge(system: System, timeout_s: float = 60) -> float:
    t0 = time.monotonic()
    system.join_all()
    names = [m.name for m in system.members]
    while True:
        last = 0.0
        done = True
        for m in system.members:
            for other in names:
                if other != m.name:
                    t = m.when("join", other)
                    if t is None:
                        done = False
                        break
                    last = max(last, t)
            if not done:
                break
        if done:
            return last - t0
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit(f"{system.name}: no convergence in {timeout_s} s")
        time.sleep(0.05)


def detect(system: System, victim: Member, timeout_s: float = 90) -> float:
    t0 = time.monotonic()
    victim.proc.kill()
    victim.proc.wait()
    survivors = [m for m in system.members if m.alive()]
    while True:
        times = [m.when("failed", victim.name) for m in survivors]
        if all(t is not None for t in times):
            return max(times) - t0  # type: ignore[type-var,operator]
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit(f"{system.name}: {victim.name} not reported failed in {timeout_s} s")
        time.sleep(0.05)


def idle_cost(system: System, seconds: float) -> tuple[float, float]:
    """Mean CPU (% of a core) and RSS (MiB) per member."""
    procs = [psutil.Process(m.proc.pid) for m in system.members if m.alive()]
    before = [p.cpu_times() for p in procs]
    time.sleep(seconds)
    after = [p.cpu_times() for p in procs]
    cpu = sum((a.user + a.system) - (b.user + b.system) for a, b in zip(after, before, strict=True))
    rss = sum(p.memory_info().rss for p in procs)
    return cpu / seconds / len(procs) * 100, rss / len(procs) / 2**20


def measure(system: System, n: int, kills: int, idle_s: float) -> dict[str, object]:
    system.start(n)
    try:
        conv = converge(system)
        cpu, rss = idle_cost(system, idle_s)
        detections = [detect(system, system.members[n - 1 - k]) for k in range(kills)]
    finally:
        system.stop()
    out = {"converge": conv, "detect": c.percentile(detections, 50), "detect_runs": detections,
           "cpu": cpu, "rss": rss}
    print(f"{system.name:5} N={n:3}: converge {conv:.2f} s, detect median "
          f"{out['detect']:.2f} s {[round(d, 2) for d in detections]}, idle CPU {cpu:.2f} %/member,"
          f" RSS {rss:.1f} MiB/member", file=sys.stderr)
    return out


def slowed(system: str, n: int, seconds: float) -> tuple[int, int]:
    """``_slowed`` in a fresh process: after the loopback measures (dozens of processes,
    threads and pipes) pyroute2 misread the route table here once; a new interpreter
    does not carry any of that."""
    out = subprocess.run([sys.executable, __file__, "--slowed", system, str(n), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 300)
    if out.returncode != 0:
        raise SystemExit(f"{system}: the slowed-member measure failed:\n{out.stderr[-2000:]}")
    false, about = json.loads(out.stdout.strip().splitlines()[-1])
    return false, about


def _slowed(system: str, n: int, seconds: float, shaping: str) -> tuple[int, int]:
    """Members in lab namespaces (one per node, on the lab switch); after they converge,
    the last one's link is slowed with tc in its namespace (``shaping``: a qdisc).  Returns the "failed"
    events reported in ``seconds`` (by anyone, about anyone: every one is false, nobody
    died), and how many of them were about the slowed member."""
    import uuid

    from netns.lab import Lab
    lab = Lab(prefix=f"nbg{uuid.uuid4().hex[:4]}", subnet="192.168.218.0/24",
              state_dir=c.tempdir("bench-gossip-lab-"))
    members: list[Member] = []
    try:
        lab.up(n)
        for i in range(1, n + 1):
            ns, addr = lab.node_ns(i), lab.node_address(i)
            if system == "ours":
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", ns, sys.executable, "-m", "nodeagent.gossip.member",
                     "--name", f"m{i}", "--bind", f"{addr}:7946"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
                c._PROCS.append(proc)
                m = Member(f"m{i}", proc, 7946)
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != b"ready":
                    raise SystemExit(f"ours: m{i} did not start in the lab")
                threading.Thread(target=Ours._read, args=(m,), daemon=True).start()
            else:
                if not lab.route_is_through_lab(addr):
                    raise SystemExit(f"{addr} is not routed through the lab link")
                proc = c.spawn(["ip", "netns", "exec", ns, c.ensure_apt("serf", "serf"), "agent",
                                f"-node=m{i}", f"-bind={addr}:7946", f"-rpc-addr={addr}:7373",
                                "-log-level=warn"], os.devnull)
                m = Member(f"m{i}", proc, 7946)
                stream = SerfRPC.when_up(addr, 7373, m.name)
                stream.call("stream", {"Type": "member-join,member-failed,member-leave"})
                threading.Thread(target=Serf._read, args=(m, stream), daemon=True).start()
            members.append(m)
        seed = f"{lab.node_address(1)}:7946"
        for i, m in enumerate(members[1:], start=2):
            if system == "ours":
                assert m.proc.stdin is not None
                m.proc.stdin.write(f"join {seed}\n".encode())
                m.proc.stdin.flush()
            else:
                SerfRPC.at(lab.node_address(i), 7373).call(
                    "join", {"Existing": [seed], "Replay": False})
        deadline = time.monotonic() + 60
        while not all(m.when("join", o.name) for m in members for o in members if o is not m):
            if time.monotonic() > deadline:
                raise SystemExit(f"{system}: the lab members did not converge")
            time.sleep(0.1)
        subprocess.run(["ip", "netns", "exec", lab.node_ns(n), "tc", "qdisc", "add", "dev",
                        "eth0", "root", *shaping.split()], check=True)
        t0 = time.monotonic()
        time.sleep(seconds)
        false = [(m.name, o.name) for m in members for o in members
                 if (t := m.when("failed", o.name)) is not None and t >= t0]
        return len(false), sum(1 for _, o in false if o == f"m{n}")
    finally:
        for m in members:
            if m.alive():
                m.proc.kill()
                m.proc.wait()
        lab.down()


def main() -> None:
    a = c.args(__doc__ or "")
    c.ensure_bench_extra()
    sizes = (10, 20) if a.quick else (20, 50)
    kills = 3 if a.quick else 5
    idle_s = 5.0 if a.quick else 10.0
    res = c.Results()
    for n in sizes:
        ours = measure(Ours(), n, kills, idle_s)
        serf = measure(Serf(), n, kills, idle_s)
        peer = "serf 0.8 (Debian), lan profile"
        res.add(f"N={n}: all joined -> all see all", "s", ours["converge"], serf["converge"],
                higher_is_better=False, n=1, peer_name=peer, target="ratio >= 1")
        res.add(f"N={n}: kill -9 -> every survivor reports failed, median", "s",
                ours["detect"], serf["detect"], higher_is_better=False, n=kills,
                peer_name=peer, target="ratio >= 1",
                runs_ours=[round(x, 3) for x in ours["detect_runs"]],  # type: ignore[attr-defined]
                runs_peer=[round(x, 3) for x in serf["detect_runs"]])  # type: ignore[attr-defined]
        res.add(f"N={n}: idle CPU per member", "% of a core", ours["cpu"], serf["cpu"],
                higher_is_better=False, n=n, peer_name=peer, target="ratio >= 0.5")
        res.add(f"N={n}: RSS per member", "MiB", ours["rss"], serf["rss"],
                higher_is_better=False, n=n, peer_name=peer)
    if os.geteuid() == 0:
        n, seconds = (6, 30.0) if a.quick else (10, 60.0)
        ours_false, ours_slow = slowed("ours", n, seconds)
        serf_false, serf_slow = slowed("serf", n, seconds)
        print(f"slowed member ({SHAPING}), {seconds:.0f} s: ours {ours_false} false failed "
              f"events ({ours_slow} about it), serf {serf_false} ({serf_slow})", file=sys.stderr)
        res.add(f"N={n}, one member's link slowed (tc {SHAPING}): false 'failed' events in "
                f"{seconds:.0f} s", "events", ours_false, serf_false, higher_is_better=False,
                n=1, peer_name="serf 0.8 (Debian), lan profile", target="<= serf",
                about_slowed_ours=ours_slow, about_slowed_peer=serf_slow)
    else:
        print("slowed-member measure skipped: it needs root (network namespaces, tc)",
              file=sys.stderr)
    res.print_and_write(a.out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--slowed"]:
        print(json.dumps(_slowed(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), SHAPING)))
    else:
        main()
