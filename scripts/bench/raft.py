#!/usr/bin/env python3
"""Raft benchmark: three servers on loopback, ours against etcd and PySyncObj in the same run.

Each system is a 3-member cluster of real processes holding a key-value map:
  ours       scripts/bench/_raftkv.py (nodeagent.raft: core, storage with fsync, TCP),
             with TLS: Raft as mutual TLS as the agent runs it (messages bound to their
             sender's certificate) and clients showing a certificate of the cluster's CA
  etcd       Debian's etcd-server 3.4, driven through its gRPC API (python-etcd3); with
             TLS: peer and client TLS, both with client certificates (--client-cert-auth)
  PySyncObj  scripts/bench/_pysyncobj_kv.py, with and without batching (no journal: it
             never fsyncs, so ours is also run without fsync for that comparison)
One Python load generator drives all of them (threads, one connection each).
Measured (TLS on both sides unless a row says plain):
  writes     1 and 16 concurrent clients: ops/s, p50 and p99 latency; TLS against etcd
             with TLS, plain against plain, and what TLS costs us (ours TLS / ours plain)
  first put  a new connection's first write, the TLS handshake included
  failover   kill -9 the leader, time until a write succeeds again (median, max), with
             etcd's default timeouts (heartbeat 100 ms, election 1000 ms) and with a
             150-300 ms election timeout (heartbeat 15 ms)
  memory     RSS of a member after N writes, snapshots on
Each row's ratio is ours/peer for rates and peer/ours for times and sizes (> 1: we do
better); the PySyncObj rows take the better of its two settings as the peer.
Targets: >= 2x PySyncObj and >= 0.3x etcd at 16 clients; failover median <=
etcd's with the same timeouts and <= 500 ms at 150-300 ms.
Usage: scripts/bench/raft.py [--quick] [--out FILE]
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import psutil

from nodeagent.framing import frame

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
_LEN = struct.Struct("<I")


@dataclass
class Member:
    argv: list[str]
    log: str
    client: tuple[str, int]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = c.spawn(self.argv, self.log)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, name: str, members: list[Member]) -> None:
        self.name, self.members = name, members

    def start(self) -> None:
        for m in self.members:
            m.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.leader() is not None:
                return
            time.sleep(0.1)
        raise SystemExit(f"{self.name}: no leader after 30 s")

    def stop(self) -> None:
        for m in self.members:
            if m.alive():
                m.kill9()

    def client(self, timeout_s: float = 3.0,
               first: Member | None = None) -> Callable[[bytes, bytes], bool]:
        """A put function on a connection of its own, to ``first`` (the leader, when the
        load asks: every system then at its best, no forwarding hop) or else member 1; a
        put waits at most ``timeout_s`` per attempt (failover measures with short ones)
        and tries the others."""
        raise NotImplementedError

    def leader(self) -> Member | None:
        """The member that says it leads, if any answers so."""
        for m in self.members:
            if not m.alive():
                continue
            try:
                if self.leads(m):
                    return m
            except Exception:  # a member starting or dying (etcd3 raises several kinds)
                continue
        return None

    def leads(self, m: Member) -> bool:
        raise NotImplementedError


class FramedCluster(Cluster):
    """Ours and PySyncObj: the length-framed msgpack protocol of _raftkv.py."""

    def __init__(self, name: str, members: list[Member],
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(name, members)
        self.tls = tls  # the client's TLS (ours with TLS)

    def _connect(self, address: tuple[str, int], timeout_s: float) -> socket.socket:
        sock = socket.create_connection(address, timeout=timeout_s)
        # As gRPC does: a small write (a TLS handshake's last flight, then a request) is
        # not held back waiting for the ACK of the one before.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.wrap_socket(sock, server_hostname=address[0]) if self.tls else sock

    def client(self, timeout_s: float = 3.0,
               first: Member | None = None) -> Callable[[bytes, bytes], bool]:
        import msgpack
        state: dict[str, socket.socket | None] = {"sock": None}
        order = sorted(self.members, key=lambda m: m is not first)

        def call(sock: socket.socket, req: list) -> list:
            sock.sendall(frame(msgpack.packb(req)))
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + _LEN.unpack_from(buf)[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buf += chunk
            return msgpack.unpackb(buf[4:])

        def put(key: bytes, value: bytes) -> bool:
            for _ in range(len(order) * 2):
                if state["sock"] is None:
                    m = order[0]
                    try:
                        state["sock"] = self._connect(m.client, timeout_s + 1)
                    except OSError:
                        order.append(order.pop(0))
                        continue
                sock = state["sock"]
                assert sock is not None
                try:
                    reply = call(sock, ["put", key, value, timeout_s])
                except OSError:
                    sock.close()
                    state["sock"] = None
                    order.append(order.pop(0))
                    continue
                if reply[0] == "ok":
                    return True
                leader = reply[2] if len(reply) > 2 else 0
                sock.close()
                state["sock"] = None
                if leader and 0 < leader <= len(self.members):
                    order.sort(key=lambda m: m is not self.members[leader - 1])
                else:
                    order.append(order.pop(0))
                    time.sleep(0.01)
            return False
        return put

    def leads(self, m: Member) -> bool:
        import msgpack
        with self._connect(m.client, 1) as s:
            s.sendall(frame(msgpack.packb(["status"])))
            data = s.recv(1024)
        return bool(data) and bool(msgpack.unpackb(data[4:])[1])


def cluster_certs(work: str) -> ssl.SSLContext:
    """Our cluster's PKI as the agent makes it: a CA, each server's Raft certificate
    (raft:<id> in nodeagent:servers), and the bench client's; returns the client's TLS."""
    from nodeagent import pki
    from nodeagent.clusterpki import SERVER_GROUP, raft_user
    d = Path(work)
    ca = pki.make_ca()
    pki.save(ca, d / "ca.crt", d / "ca.key")
    for i in (1, 2, 3):
        pki.save(pki.issue_peer(ca, raft_user(i), (SERVER_GROUP,), ["127.0.0.1", "localhost"]),
                 d / f"raft-{i}.crt", d / f"raft-{i}.key")
    pki.save(pki.issue_client(ca, "bench"), d / "client.crt", d / "client.key")
    return pki.client_context(d / "ca.crt", d / "client.crt", d / "client.key")


def ours(tick_ms: float, election_ticks: int, fsync: bool = True, tls: bool = True) -> Cluster:
    work = c.tempdir("bench-raft-ours-")
    raft = [c.free_port() for _ in range(3)]
    client_tls = cluster_certs(work) if tls else None
    members = []
    for i in range(3):
        peers = ",".join(f"{j + 1}=127.0.0.1:{raft[j]}" for j in range(3) if j != i)
        client = ("127.0.0.1", c.free_port())
        argv = [sys.executable, str(HERE / "_raftkv.py"), "--id", str(i + 1), "--dir",
                os.path.join(work, f"n{i + 1}"), "--raft", f"127.0.0.1:{raft[i]}", "--peers", peers,
                "--client", f"{client[0]}:{client[1]}", "--tick-ms", str(tick_ms),
                "--election-ticks", str(election_ticks)] + ([] if fsync else ["--no-fsync"]) + \
            (["--tls", work] if tls else [])
        members.append(Member(argv, os.path.join(work, f"n{i + 1}.log"), client))
    return FramedCluster("ours" + ("" if fsync else " (no fsync)") + (" TLS" if tls else ""),
                         members, client_tls)


def pysyncobj(batch: bool, heartbeat_ms: float, election_ms: float) -> Cluster:
    work = c.tempdir("bench-raft-pso-")
    raft = [c.free_port() for _ in range(3)]
    members = []
    for i in range(3):
        client = ("127.0.0.1", c.free_port())
        argv = [sys.executable, str(HERE / "_pysyncobj_kv.py"), "--self", f"127.0.0.1:{raft[i]}",
                "--partners", ",".join(f"127.0.0.1:{raft[j]}" for j in range(3) if j != i),
                "--client", f"{client[0]}:{client[1]}", "--heartbeat-ms", str(heartbeat_ms),
                "--election-ms", str(election_ms)] + (["--batch"] if batch else [])
        members.append(Member(argv, os.path.join(work, f"n{i + 1}.log"), client))
    return FramedCluster("PySyncObj" + (" (batching)" if batch else " (no batching)"), members)


class EtcdCluster(Cluster):
    def __init__(self, name: str, members: list[Member], certs: c.Certs | None) -> None:
        super().__init__(name, members)
        self.certs = certs

    def _grpc(self, m: Member, timeout_s: float) -> Any:
        import etcd3
        tls = {} if self.certs is None else {
            "ca_cert": self.certs.path("ca.crt"), "cert_key": self.certs.path("client.key"),
            "cert_cert": self.certs.path("client.crt")}
        return etcd3.client(host=m.client[0], port=m.client[1], timeout=timeout_s, **tls)

    def client(self, timeout_s: float = 3.0,
               first: Member | None = None) -> Callable[[bytes, bytes], bool]:
        state: dict[str, object] = {"i": self.members.index(first) if first else 0,
                                    "client": None}

        def put(key: bytes, value: bytes) -> bool:
            for _ in range(6):
                if state["client"] is None:
                    m = self.members[int(state["i"]) % 3]  # type: ignore[call-overload]
                    state["client"] = self._grpc(m, timeout_s)
                try:
                    state["client"].put(key, value)  # type: ignore[attr-defined]
                    return True
                except Exception:  # etcd3 raises several kinds: try the next member
                    state["client"] = None
                    state["i"] = int(state["i"]) + 1  # type: ignore[call-overload]
            return False
        return put

    def leads(self, m: Member) -> bool:
        st = self._grpc(m, 1).status()
        return bool(st.leader is not None and st.leader.client_urls and
                    st.leader.client_urls[0].endswith(f":{m.client[1]}"))


def etcd(heartbeat_ms: int, election_ms: int, tls: bool = True) -> Cluster:
    binary = c.ensure_apt("etcd-server", "etcd")
    work = c.tempdir("bench-raft-etcd-")
    certs = c.Certs.make(work) if tls else None
    scheme = "https" if tls else "http"
    peer = [c.free_port() for _ in range(3)]
    initial = ",".join(f"m{i + 1}={scheme}://127.0.0.1:{peer[i]}" for i in range(3))
    members = []
    for i in range(3):
        client = ("127.0.0.1", c.free_port())
        argv = [binary, "--name", f"m{i + 1}", "--data-dir", os.path.join(work, f"m{i + 1}"),
                "--listen-client-urls", f"{scheme}://127.0.0.1:{client[1]}",
                "--advertise-client-urls", f"{scheme}://127.0.0.1:{client[1]}",
                "--listen-peer-urls", f"{scheme}://127.0.0.1:{peer[i]}",
                "--initial-advertise-peer-urls", f"{scheme}://127.0.0.1:{peer[i]}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--heartbeat-interval", str(heartbeat_ms), "--election-timeout", str(election_ms),
                "--log-level", "error", "--logger", "zap"]
        if certs is not None:
            argv += certs.etcd_args()
        members.append(Member(argv, os.path.join(work, f"m{i + 1}.log"), client))
    return EtcdCluster("etcd" + (" TLS" if tls else ""), members, certs)


def load(cluster: Cluster, clients: int, total: int) -> tuple[float, float, float]:
    """ops/s, p50 ms, p99 ms of ``total`` puts from ``clients`` threads, each connected
    to the leader (followers of all three forward writes, at a cost)."""
    leader = cluster.leader()
    puts = [cluster.client(first=leader) for _ in range(clients)]
    for n, put in enumerate(puts):  # connect (and find the leader) before the clock
        put(f"warm{n}".encode(), b"x")
    lat: list[float] = []
    lock = threading.Lock()
    value = b"v" * 256

    def worker(put: Callable[[bytes, bytes], bool], n: int) -> None:
        mine = []
        for i in range(total // clients):
            t = time.perf_counter()
            if not put(f"k{n}-{i}".encode(), value):
                raise SystemExit(f"{cluster.name}: a write failed under load")
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)
    threads = [threading.Thread(target=worker, args=(p, n)) for n, p in enumerate(puts)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return len(lat) / elapsed, c.percentile(lat, 50) * 1000, c.percentile(lat, 99) * 1000


def failover(cluster: Cluster, times: int) -> list[float]:
    """kill -9 the leader; seconds until a write through a survivor succeeds."""
    out = []
    for n in range(times):
        leader = cluster.leader()
        deadline = time.monotonic() + 20
        while leader is None and time.monotonic() < deadline:
            time.sleep(0.05)
            leader = cluster.leader()
        if leader is None:
            raise SystemExit(f"{cluster.name}: no leader before failover {n}")
        put = cluster.client(timeout_s=0.1)
        put(b"before", b"x")
        t0 = time.monotonic()
        leader.kill9()
        while not put(f"after{n}".encode(), b"x"):
            time.sleep(0.005)
            if time.monotonic() - t0 > 30:
                raise SystemExit(f"{cluster.name}: no write 30 s after the leader died")
        out.append(time.monotonic() - t0)
        leader.start()  # back, from its disk
        time.sleep(1.5)
    return out


def first_put(cluster: Cluster, times: int) -> list[float]:
    """Seconds from nothing to a first write acknowledged, on a new connection to the
    leader each time."""
    leader = cluster.leader()
    out = []
    for i in range(times):
        t0 = time.perf_counter()
        if not cluster.client(first=leader)(f"first{i}".encode(), b"x"):
            raise SystemExit(f"{cluster.name}: a first write failed")
        out.append(time.perf_counter() - t0)
    return out


def rss_after(cluster: Cluster, writes: int) -> float:
    put = cluster.client()
    value = b"v" * 256
    for i in range(writes):
        put(f"m{i % 10_000}".encode(), value)  # 10,000 keys rewritten: the log, not the map, grows
    time.sleep(1)
    leader = cluster.leader()
    assert leader is not None and leader.proc is not None
    return psutil.Process(leader.proc.pid).memory_info().rss / 2**20


def main() -> None:
    a = c.args(__doc__ or "")
    c.ensure_bench_extra()
    quick = a.quick
    ops1, ops16 = (1000, 4000) if quick else (5000, 20000)
    fails = 3 if quick else 20
    mem_writes = 5000 if quick else 100_000
    res = c.Results()

    def measured(make: Callable[[], Cluster], fn: Callable[[Cluster], T]) -> T:
        cl = make()
        cl.start()
        try:
            return fn(cl)
        finally:
            cl.stop()

    # Writes: each system in its fastest honest setting; ours with and without fsync.
    systems: dict[str, Callable[[], Cluster]] = {
        "ours TLS": lambda: ours(100, 10),
        "ours": lambda: ours(100, 10, tls=False),
        "ours (no fsync)": lambda: ours(100, 10, fsync=False, tls=False),
        "etcd TLS": lambda: etcd(100, 1000),
        "etcd": lambda: etcd(100, 1000, tls=False),
        "PySyncObj (no batching)": lambda: pysyncobj(False, 100, 1000),
        "PySyncObj (batching)": lambda: pysyncobj(True, 100, 1000),
    }
    writes: dict[str, dict[int, tuple[float, float, float]]] = {}
    for name, make in systems.items():
        writes[name] = {}
        for clients, total in ((1, ops1), (16, ops16)):
            if name == "PySyncObj (batching)":  # ~5 ops/s per client: it waits for a batch
                total = min(total, 50 if clients == 1 else 1600)
            writes[name][clients] = measured(make, functools.partial(load, clients=clients,
                                                                     total=total))
            print(f"{name:26} {clients:2} clients: {writes[name][clients][0]:7.0f} ops/s, "
                  f"p50 {writes[name][clients][1]:.2f} ms, p99 {writes[name][clients][2]:.2f} ms",
                  file=sys.stderr)
    for clients in (1, 16):
        w = {k: v[clients] for k, v in writes.items()}
        pso = max(w["PySyncObj (no batching)"][0], w["PySyncObj (batching)"][0])
        n = ops1 if clients == 1 else ops16
        res.add(f"writes/s, {clients} client(s), TLS, vs etcd TLS (gRPC)", "ops/s",
                w["ours TLS"][0], w["etcd TLS"][0], higher_is_better=True, n=n,
                peer_name="etcd 3.4, 3 members, peer and client TLS with client certificates",
                target=">= 0.3x" if clients == 16 else "",
                p50_ms=round(w["ours TLS"][1], 2), p99_ms=round(w["ours TLS"][2], 2),
                peer_p50_ms=round(w["etcd TLS"][1], 2), peer_p99_ms=round(w["etcd TLS"][2], 2))
        res.add(f"writes/s, {clients} client(s), vs etcd (gRPC)", "ops/s", w["ours"][0],
                w["etcd"][0], higher_is_better=True, n=n,
                peer_name="etcd 3.4, 3 members, both plain", note="both without TLS",
                p50_ms=round(w["ours"][1], 2), p99_ms=round(w["ours"][2], 2),
                peer_p50_ms=round(w["etcd"][1], 2), peer_p99_ms=round(w["etcd"][2], 2))
        res.add(f"TLS cost: writes/s, {clients} client(s), ours TLS vs ours plain", "ops/s",
                w["ours TLS"][0], w["ours"][0], higher_is_better=True, n=n,
                peer_name="ours without TLS, same run",
                etcd_tls_vs_plain=round(w["etcd TLS"][0] / w["etcd"][0], 3))
        res.add(f"writes/s, {clients} client(s), no fsync, vs PySyncObj (best)", "ops/s",
                w["ours (no fsync)"][0], pso, higher_is_better=True,
                n=ops1 if clients == 1 else ops16, peer_name="PySyncObj 0.3.17, best of batching "
                "on/off", target=">= 2x" if clients == 16 else "",
                p50_ms=round(w["ours (no fsync)"][1], 2), p99_ms=round(w["ours (no fsync)"][2], 2))
    # Failover, with the same timeouts on both sides.
    for label, mk_ours, mk_etcd, target in (
            ("heartbeat 100 ms, election 1000 ms", lambda: ours(100, 10), lambda: etcd(100, 1000),
             "<= etcd"),
            ("heartbeat 15 ms, election 150-300 ms", lambda: ours(15, 10), lambda: etcd(15, 150),
             "<= 0.5 s")):
        ours_f = measured(mk_ours, lambda cl: failover(cl, fails))
        etcd_f = measured(mk_etcd, lambda cl: failover(cl, fails))
        mo, me = c.percentile(ours_f, 50), c.percentile(etcd_f, 50)
        print(f"failover {label}: ours {mo:.3f} s (max {max(ours_f):.3f}), "
              f"etcd {me:.3f} s (max {max(etcd_f):.3f})", file=sys.stderr)
        res.add(f"failover, {label}: median", "s", mo, me, higher_is_better=False, n=fails,
                peer_name="etcd 3.4, same timeouts", target=target,
                max_ours=round(max(ours_f), 3), max_peer=round(max(etcd_f), 3),
                runs_ours=[round(x, 3) for x in ours_f], runs_peer=[round(x, 3) for x in etcd_f])
    # A new connection's first write, the TLS handshake included.
    first = {name: measured(make, lambda cl: first_put(cl, 10 if quick else 50))
             for name, make in (("ours", lambda: ours(100, 10)), ("etcd", lambda: etcd(100, 1000)))}
    res.add("first write on a new connection (TLS handshake included): median", "ms",
            c.percentile(first["ours"], 50) * 1000, c.percentile(first["etcd"], 50) * 1000,
            higher_is_better=False, n=len(first["ours"]), peer_name="etcd 3.4 TLS, gRPC "
            "channel made for it", p99_ours_ms=round(c.percentile(first["ours"], 99) * 1000, 2),
            p99_peer_ms=round(c.percentile(first["etcd"], 99) * 1000, 2))
    # Memory of a member after many writes (snapshots on).
    mem = {name: measured(make, lambda cl: rss_after(cl, mem_writes))
           for name, make in (("ours", lambda: ours(100, 10)), ("etcd", lambda: etcd(100, 1000)),
                              ("PySyncObj", lambda: pysyncobj(False, 100, 1000)))}
    res.add(f"RSS of the leader after {mem_writes} writes", "MiB", mem["ours"], mem["etcd"],
            higher_is_better=False, n=mem_writes, peer_name="etcd 3.4",
            pysyncobj_mib=round(mem["PySyncObj"], 1))
    res.print_and_write(a.out)


if __name__ == "__main__":
    main()
