"""kill -9 the agent in the middle of concurrent writes: nothing acknowledged is lost.

Real agent processes, real files and fsync.  Writers create ConfigMaps over
HTTP from several threads and remember every create the API acknowledged
(with its resourceVersion).  The agent is killed with SIGKILL while they are
writing, restarted, and must show every acknowledged object at the revision
it was acknowledged with; the store's history must have no revision holes.
Done three times over the same data directory, once with frequent snapshots,
so recovery also runs from a snapshot plus a log with a torn tail.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx
import trio

from agentproc import AgentProcess
from nodeagent.store import LocalStore

WRITERS = 8


def write_until_dead(agent: AgentProcess, tag: str, acked: dict[str, int],
                     lock: threading.Lock) -> None:
    with agent.client(timeout_s=10) as http:
        i = 0
        while True:
            name = f"{tag}-{threading.get_ident() % 100000}-{i}"
            i += 1
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                    "data": {"payload": "x" * 200}}
            try:
                r = http.post("/api/v1/namespaces/default/configmaps", json=body)
            except httpx.HTTPError:
                return  # the agent died under us; this write was never acknowledged
            if r.status_code != 201:
                return
            with lock:
                acked[name] = int(r.json()["metadata"]["resourceVersion"])


def crash_round(agent: AgentProcess, tag: str, acked: dict[str, int], run_s: float) -> None:
    agent.start()
    lock = threading.Lock()
    threads = [threading.Thread(target=write_until_dead, args=(agent, tag, acked, lock))
               for _ in range(WRITERS)]
    for t in threads:
        t.start()
    before = len(acked)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(acked) - before < 300:
        time.sleep(0.01)
    time.sleep(run_s)
    agent.stop(signal.SIGKILL)
    for t in threads:
        t.join(15)
    assert len(acked) - before >= 300, "writers made too little progress to test anything"


def check_everything_acknowledged_is_there(agent: AgentProcess, acked: dict[str, int]) -> None:
    agent.start()
    try:
        with agent.client() as http:
            r = http.get("/api/v1/namespaces/default/configmaps")
            assert r.status_code == 200
            stored = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"])
                      for i in r.json()["items"]}
        missing = sorted(set(acked) - set(stored))
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        changed = [n for n, rv in acked.items() if stored[n] != rv]
        assert not changed, f"acknowledged revisions differ: {changed[:5]}"
    finally:
        agent.stop(signal.SIGTERM)


async def revisions_in_log(data_dir: str) -> tuple[int, int, list[int]]:
    """Open the store directly (agent stopped) and read back its history."""
    store = LocalStore(data_dir)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        start = store.compact_revision + 1
        revs = [e.revision for e in store.mvcc.events_since(start)]
        nursery.cancel_scope.cancel()
    return start, store.revision, revs


def test_kill_9_during_concurrent_writes_loses_nothing_acknowledged(tmp_path):
    acked: dict[str, int] = {}
    plain = AgentProcess(tmp_path / "a", "crash")
    snapshotting = AgentProcess(tmp_path / "a", "crash", "--snapshot-every", "150")
    try:
        crash_round(plain, "r1", acked, 0.3)
        check_everything_acknowledged_is_there(plain, acked)
        crash_round(snapshotting, "r2", acked, 0.5)
        check_everything_acknowledged_is_there(snapshotting, acked)
        crash_round(plain, "r3", acked, 0.2)
        check_everything_acknowledged_is_there(plain, acked)
    finally:
        plain.close()
        snapshotting.close()
    start, last, revs = trio.run(revisions_in_log, str(plain.data_dir))
    # Every revision since the last snapshot is in the history exactly once, in order.
    distinct = sorted(set(revs))
    assert distinct == list(range(start, last + 1))
    assert revs == sorted(revs)
    assert max(acked.values()) <= last
