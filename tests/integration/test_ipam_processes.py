"""IPAM under real concurrency and crashes: several processes, kill -9 mid-write."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

from netns.ipam import Ipam


def _allocate_many(directory: str, prefix: str, n: int, out: multiprocessing.Queue) -> None:
    ipam = Ipam(directory, "10.244.5.0/24")
    out.put([ipam.allocate(f"{prefix}-{i}") for i in range(n)])


def test_processes_allocating_at_once_never_share_an_address(tmp_path):
    q: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_allocate_many, args=(str(tmp_path), f"w{w}", 40, q))
             for w in range(4)]
    for p in procs:
        p.start()
    got = [ip for _ in procs for ip in q.get(timeout=30)]
    for p in procs:
        p.join(10)
    assert len(got) == 160 and len(set(got)) == 160


def test_kill_9_while_allocating_leaves_a_consistent_table(tmp_path):
    """Real processes killed mid-write: the table is whole and every address has one owner."""
    script = ("import sys; from netns.ipam import Ipam\n"
              "ipam = Ipam(sys.argv[1], '10.244.8.0/22')\n"
              "i = 0\n"
              "while True:\n"
              "    ipam.allocate(f'{sys.argv[2]}-{i}'); i += 1\n")
    for round_ in range(5):
        p = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"r{round_}"],
                             cwd=os.getcwd())
        time.sleep(0.2)
        p.send_signal(signal.SIGKILL)
        p.wait()
        table = Ipam(str(tmp_path), "10.244.8.0/22").allocations()
        assert len(table) == len(set(table.values()))
    assert len(table) > 5
