"""Secrets at rest, looked for the way an attacker with the disk would: every byte of a
server's data directory (the WAL, the Raft log, snapshots) and of a backup is searched
for a Secret's value, as text and as base64, and it is not there -- while a ConfigMap's
value written beside it is (so the search finds what is there).  'nodeagent secrets
rotate-key' gives every server a new key and seals every Secret again with it."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from test_raft_agents import agents  # noqa: F401  (the fixture)
from waiting import until

from agentproc import AgentProcess, admin_tls, cluster_ca
from nodeagent.api.encryption import Keys

VALUE = "s3cr3t-VALUE-that-must-not-leak"
PLAIN = "configmap-value-that-may-be-seen"


def _needles() -> list[bytes]:
    return [VALUE.encode(), base64.b64encode(VALUE.encode())]


def _found(where: Path, needle: bytes) -> list[str]:
    """Files under ``where`` (but its keys: pki/) whose bytes hold ``needle``."""
    return [str(p) for p in where.rglob("*") if p.is_file() and "pki" not in p.parts
            and needle in p.read_bytes()]


def _write_both(http) -> None:
    r = http.post("/api/v1/namespaces/default/secrets",
                  json={"metadata": {"name": "db"}, "stringData": {"password": VALUE}})
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/namespaces/default/configmaps",
                  json={"metadata": {"name": "plain"}, "data": {"v": PLAIN}})
    assert r.status_code == 201, r.text


def test_no_secret_value_in_a_data_dir_or_a_backup(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "a", "a", "--snapshot-every", "5").start()
    try:
        with agent.client() as http:
            _write_both(http)
            for i in range(10):  # past a store snapshot, so one holds them too
                http.post("/api/v1/namespaces/default/configmaps",
                          json={"metadata": {"name": f"fill-{i}"}})
            got = http.get("/api/v1/namespaces/default/secrets/db").json()
            assert base64.b64decode(got["data"]["password"]).decode() == VALUE
        backup = tmp_path / "backup.snap"
        out = subprocess.run([sys.executable, "-m", "nodeagent", "snapshot", "save", str(backup),
                              "--socket", str(agent.socket)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
    finally:
        agent.stop()
    assert _found(agent.data_dir, PLAIN.encode())  # the search works
    assert PLAIN.encode() in backup.read_bytes()
    for needle in _needles():
        assert not _found(agent.data_dir, needle)
        assert needle not in backup.read_bytes()
    config = agent.data_dir / "pki" / "encryption-config.yaml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert Keys.load(config).primary == "key1"
    # Restarted from its disk, it reads them again.
    agent.start()
    try:
        with agent.client() as http:
            got = http.get("/api/v1/namespaces/default/secrets/db").json()
            assert base64.b64decode(got["data"]["password"]).decode() == VALUE
    finally:
        agent.close()


def test_a_value_no_key_opens_is_skipped_not_a_crash(tmp_path: Path) -> None:
    """A store whose key file was replaced: its Secrets are reported and left out of
    lists; everything else is served."""
    agent = AgentProcess(tmp_path / "a", "a").start()
    try:
        with agent.client() as http:
            _write_both(http)
    finally:
        agent.stop()
    Keys.new().save(agent.data_dir / "pki" / "encryption-config.yaml")  # another key
    agent.start()
    try:
        with agent.client() as http:
            r = http.get("/api/v1/namespaces/default/secrets")
            assert r.status_code == 200 and r.json()["items"] == []
            assert http.get("/api/v1/namespaces/default/configmaps/plain").status_code == 200
        assert "no key of the encryption configuration opens it" in agent.log_text()
    finally:
        agent.close()


def test_servers_hold_no_value_and_rotate_the_key_together(agents, tmp_path: Path) -> None:  # noqa: F811
    servers = agents  # three Raft servers with one CA and one key (test_raft_agents)
    import httpx
    with httpx.Client(verify=admin_tls(cluster_ca(tmp_path)), timeout=10) as http:
        until(lambda: http.post(f"{servers[1].url}/api/v1/namespaces/default/configmaps",
                                json={"metadata": {"name": "first"}}).status_code == 201,
              what="a leader")
        r = http.post(f"{servers[2].url}/api/v1/namespaces/default/secrets",
                      json={"metadata": {"name": "db"}, "stringData": {"password": VALUE}})
        assert r.status_code == 201, r.text
        # Tried until every server registered itself (it refuses while one has not).
        def rotate() -> subprocess.CompletedProcess[str] | None:
            o = subprocess.run([sys.executable, "-m", "nodeagent", "secrets", "rotate-key",
                                "--socket", str(servers[1].socket)], capture_output=True,
                               text=True, timeout=120)
            return o if o.returncode == 0 else None
        out = until(rotate, 30, "a rotation that reaches every server")
        assert out is not None
        assert "primary key now key2 on node1, node2, node3; 1 Secrets" in out.stdout, out.stdout
        for s in servers.values():
            keys = Keys.load(s.data_dir / "pki" / "encryption-config.yaml")
            assert [n for n, _ in keys.keys] == ["key2", "key1"]
            got = http.get(f"{s.url}/api/v1/namespaces/default/secrets/db").json()
            assert base64.b64decode(got["data"]["password"]).decode() == VALUE
            for needle in _needles():
                assert not _found(s.data_dir, needle), s.data_dir
    # After a restart each server reads it with the key it was handed.
    servers[3].stop()
    servers[3].start()
    with httpx.Client(verify=admin_tls(cluster_ca(tmp_path)), timeout=10) as http:
        got = until(lambda: http.get(f"{servers[3].url}/api/v1/namespaces/default/secrets/db"),
                    what="server 3 back")
        assert base64.b64decode(got.json()["data"]["password"]).decode() == VALUE
