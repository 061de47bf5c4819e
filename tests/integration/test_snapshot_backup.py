"""nodeagent snapshot save and restore with real agents: a backup taken from a Raft
cluster while it runs, restored into a single agent and into a new three-server cluster,
holds every object written before it with its resourceVersion, and new writes carry on
from there; a damaged file or a used data directory is refused with a clear error."""

from __future__ import annotations

import subprocess
import sys

from test_raft_agents import agents, until  # noqa: F401  (the fixture)
from test_raft_node import free_ports

from agentproc import AgentProcess, cluster_ca


def nodeagent(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "nodeagent", *args], capture_output=True,
                       text=True, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    assert (p.returncode == 0) == ok, f"nodeagent {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
    return p


def _configmaps(a: AgentProcess) -> dict[str, tuple[str, str]]:
    with a.client() as http:
        items = http.get("/api/v1/namespaces/default/configmaps").json()["items"]
    return {c["metadata"]["name"]: (c["data"]["v"], c["metadata"]["resourceVersion"])
            for c in items if c["metadata"]["name"] != "kube-root-ca.crt"}  # every namespace's


def test_a_backup_of_a_running_cluster_restores_into_one_agent_and_a_new_cluster(agents, tmp_path):  # noqa: F811
    with agents[1].client() as http:
        until(lambda: http.get("/api/v1/namespaces/default").status_code == 200,
              what="the default namespace")
        for i in range(20):
            r = http.post("/api/v1/namespaces/default/configmaps", json={
                "metadata": {"name": f"cm-{i}"}, "data": {"v": str(i)}})
            assert r.status_code == 201, r.text
    written = _configmaps(agents[1])
    assert len(written) == 20

    backup = tmp_path / "backup.snap"
    out = nodeagent("snapshot", "save", str(backup), "--socket", str(agents[2].socket)).stdout
    assert out.startswith(f"Snapshot saved at {backup}: revision ")

    # Damaged files and used directories are refused before anything is written.
    bad = tmp_path / "bad.snap"
    bad.write_bytes(backup.read_bytes()[:-10])
    err = nodeagent("snapshot", "restore", str(bad), "--data-dir", str(tmp_path / "x"),
                    ok=False).stderr
    assert "checksum does not match" in err and not (tmp_path / "x").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("mine")
    err = nodeagent("snapshot", "restore", str(backup), "--data-dir", str(tmp_path / "used"),
                    ok=False).stderr
    assert "is not empty" in err

    # One agent.
    single = AgentProcess(tmp_path / "single", "single", "--no-fsync")
    nodeagent("snapshot", "restore", str(backup), "--data-dir", str(single.data_dir))
    single.start()
    try:
        assert _configmaps(single) == written
        with single.client() as http:
            r = http.post("/api/v1/namespaces/default/configmaps",
                          json={"metadata": {"name": "after"}, "data": {"v": "new"}})
            assert r.status_code == 201
            assert int(r.json()["metadata"]["resourceVersion"]) > max(
                int(rv) for _, rv in written.values())
    finally:
        single.close()

    # A new cluster of three servers, each restored from the same file.
    for a in agents.values():
        a.close()
    ports = free_ports(3)
    new = {}
    for i in (1, 2, 3):
        peers = ",".join(f"{j}=127.0.0.1:{ports[j - 1]}" for j in (1, 2, 3) if j != i)
        new[i] = AgentProcess(tmp_path / f"r{i}", f"node{i}", "--no-fsync", "--raft-id", str(i),
                              "--raft-listen", f"127.0.0.1:{ports[i - 1]}", "--raft-peers", peers,
                              "--raft-tick-ms", "20", ca=cluster_ca(tmp_path / "new"))
        nodeagent("snapshot", "restore", str(backup), "--data-dir", str(new[i].data_dir),
                  "--raft-id", str(i), "--raft-voters", "1,2,3")
    try:
        for a in new.values():
            a.start()
        for a in new.values():
            until(lambda a=a: _configmaps(a) == written, what="the restored state on each")
        with new[3].client() as http:  # writes go through the new leader
            r = until(lambda: http.post("/api/v1/namespaces/default/configmaps", json={
                "metadata": {"name": "after"}, "data": {"v": "new"}}), what="a write")
            assert r.status_code == 201, r.text
        until(lambda: "after" in _configmaps(new[1]), what="the write replicated")
    finally:
        for a in new.values():
            a.close()


def test_restore_for_a_raft_server_names_its_voters(tmp_path):
    err = nodeagent("snapshot", "restore", str(tmp_path / "missing.snap"), "--data-dir",
                    str(tmp_path / "d"), ok=False).stderr
    assert "does not exist" in err
    junk = tmp_path / "junk.snap"
    junk.write_bytes(b"\x00garbage")
    err = nodeagent("snapshot", "restore", str(junk), "--data-dir", str(tmp_path / "d"),
                    ok=False).stderr
    assert "not a nodeagent snapshot" in err
    err = nodeagent("snapshot", "restore", str(junk), "--data-dir", str(tmp_path / "d"),
                    "--raft-id", "2", ok=False).stderr
    assert "--raft-voters" in err
