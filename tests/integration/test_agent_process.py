"""The agent as a process: config sources, --help, sd_notify readiness, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from agentproc import AgentProcess
from nodeagent.config import AgentConfig, load_config


def test_flags_beat_environment_beat_file(tmp_path):
    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text('name = "from-file"\ndata_dir = "/file"\nsnapshot-every = 5\n')
    cfg = load_config(str(cfg_file), {"NODEAGENT_DATA_DIR": "/env", "NODEAGENT_NAME": "from-env"},
                      {"name": "from-flag", "data_dir": None})
    assert (cfg.name, cfg.data_dir, cfg.snapshot_every) == ("from-flag", "/env", 5)


def test_bad_config_names_the_setting(tmp_path):
    cfg_file = tmp_path / "agent.toml"
    cfg_file.write_text("snapshot_every = 'often'\n")
    p = subprocess.run([sys.executable, "-m", "nodeagent", "run", "--config", str(cfg_file)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "snapshot_every" in p.stderr and "'often' is not an integer" in p.stderr
    p = subprocess.run([sys.executable, "-m", "nodeagent", "run", "--api-listen", "nowhere"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "api_listen: 'nowhere' is not HOST:PORT" in p.stderr


def test_help_explains_every_setting():
    p = subprocess.run([sys.executable, "-m", "nodeagent", "run", "--help"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0
    for field in AgentConfig.__dataclass_fields__:
        assert "--" + field.replace("_", "-") in p.stdout, field


def test_watchdog_pings_at_half_the_interval(tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(sock_path)
        notify.settimeout(20)
        os.environ.update(NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
        try:
            agent = AgentProcess(tmp_path / "a", "dog").start()
        finally:
            del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
        try:
            pings: list[str] = []
            while len(pings) < 4:  # STATUS updates aside
                m = notify.recv(4096).decode()
                if not m.startswith("STATUS="):
                    pings.append(m)
            assert pings[0].startswith("READY=1")
            assert pings[1:] == ["WATCHDOG=1"] * 3  # every 0.2 s while the agent runs
        finally:
            agent.close()


def test_ready_notification_and_clean_stop_on_sigterm(tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(sock_path)
        notify.settimeout(20)
        os.environ["NOTIFY_SOCKET"] = sock_path
        try:
            agent = AgentProcess(tmp_path / "a", "notify").start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        try:
            msg = notify.recv(4096).decode()
            assert "READY=1" in msg and agent.url.removeprefix("https://") in msg
            assert agent.stop(signal.SIGTERM) == 0
            later = [notify.recv(4096).decode()]
            while later[-1].startswith("STATUS="):  # a STATUS update may come first
                later.append(notify.recv(4096).decode())
            assert "STOPPING=1" in later[-1], later
        finally:
            agent.close()
    assert "agent stopped" in agent.log_text()
    # What was written before the stop is there after a restart.
    agent2 = AgentProcess(tmp_path / "a", "notify").start()
    try:
        with agent2.client() as http:
            assert http.get("/api/v1/namespaces/default").status_code == 200
    finally:
        agent2.close()


def test_cluster_settings_are_checked_with_the_setting_named():
    """Raft, gossip and copy settings that cannot work are refused at start, by name."""
    import pytest

    from nodeagent.errors import ConfigError
    bad = [
        ({"servers": "ftp://x:1"}, "servers"),
        ({"servers": "https://h:1", "raft_id": 1, "raft_listen": "127.0.0.1:7000"}, "servers"),
        ({"raft_bootstrap_expect": 3}, "raft_bootstrap_expect"),
        ({"raft_bootstrap_expect": 3, "raft_id": 1, "raft_listen": "127.0.0.1:7000",
          "raft_peers": "2=127.0.0.1:7001"}, "raft_bootstrap_expect"),
        ({"raft_seeds": "nowhere"}, "raft_seeds"),
        ({"gossip_listen": "nowhere"}, "gossip_listen"),
        ({"gossip_join": "127.0.0.1:7946"}, "gossip_listen"),
        ({"gossip_listen": "127.0.0.1:7946", "gossip_join": "h"}, "gossip_join"),
        ({"gossip_listen": "127.0.0.1:7946", "gossip_key": "c2hvcnQ="}, "gossip_key"),
        ({"gossip_listen": "127.0.0.1:7946", "gossip_profile": "fast"}, "gossip_profile"),
        ({"node_labels": "zone"}, "node_labels"),
        ({"node_labels": "bad key=x"}, "node_labels"),
        # Gossip without a key beyond loopback takes anyone's packets: refused unless asked
        # (a secure agent makes the key, or gets it when it joins).
        ({"gossip_listen": "10.0.0.1:7946", "insecure_http": True}, "gossip_listen"),
        ({"gossip_listen": "0.0.0.0:7946", "insecure_http": True}, "gossip_listen"),
        ({"servers": "http://10.0.0.1:6443"}, "servers"),  # the APIs speak HTTPS
        ({"join_token": "not-a-token", "servers": "https://10.0.0.1:6443"}, "join_token"),
        ({"join_token": "NA1-" + "a" * 64 + "-abcdef.0123456789abcdef"}, "join_token"),
        ({"join_token_file": "/nonexistent"}, "join_token_file"),
        ({"gossip_listen": "127.0.0.1:7946", "gossip_key_file": "/nonexistent"},
         "gossip_key_file"),
        ({"operator_socket": "/tmp/" + "s" * 120}, "operator_socket"),
    ]
    for settings, field in bad:
        with pytest.raises(ConfigError) as info:
            AgentConfig(**settings)
        assert info.value.field == field, (settings, str(info.value))
    AgentConfig(gossip_listen="10.0.0.1:7946", gossip_insecure=True)
    cfg = AgentConfig(node_labels="zone=a, disk=ssd", gossip_listen="127.0.0.1:0",
                      gossip_join="127.0.0.1:7946,10.0.0.2:7946")
    assert cfg.labels() == {"zone": "a", "disk": "ssd"}
    assert cfg.gossip_seeds() == [("127.0.0.1", 7946), ("10.0.0.2", 7946)]
