"""Three real agents as Raft servers on loopback (no root): the store replicated, any
agent's API takes writes and serves reads, exactly one runs the coordinator (its
controllers turn a Deployment into a ReplicaSet and pods), and after kill -9 of the
leader's agent another takes over: writes go on, nothing acknowledged is lost, and the
coordinator runs again on the new leader."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_raft_node import free_ports
from waiting import until

from agentproc import AgentProcess, admin_tls, cluster_ca

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "c", "image": "kubia"}]}}}}


@pytest.fixture
def http(tmp_path):
    """The cluster's admin, for any of its agents (they share one CA)."""
    with httpx.Client(verify=admin_tls(cluster_ca(tmp_path)), timeout=10) as client:
        yield client


@pytest.fixture
def agents(tmp_path):
    ports = free_ports(3)
    procs = {}
    for i in (1, 2, 3):
        peers = ",".join(f"{j}=127.0.0.1:{ports[j - 1]}" for j in (1, 2, 3) if j != i)
        procs[i] = AgentProcess(tmp_path / f"a{i}", f"node{i}", "--no-fsync", "--raft-id", str(i),
                                "--raft-listen", f"127.0.0.1:{ports[i - 1]}", "--raft-peers",
                                peers, "--raft-tick-ms", "20", ca=cluster_ca(tmp_path))
    try:
        for p in procs.values():
            p.start()
        yield procs
    finally:
        for p in procs.values():
            p.close()


def since_start(a: AgentProcess) -> str:
    """The agent's log since it last started (a restarted agent appends to it)."""
    text = a.log_text()
    return text[text.rfind("store (raft) recovered"):]


def leader_of(agents) -> int:
    """The one agent running the coordinator now (0 if none or several)."""
    running = [i for i, a in agents.items() if a.proc and a.proc.poll() is None
               and since_start(a).count("starting the coordinator") >
               since_start(a).count("coordinator stopped")]
    return running[0] if len(running) == 1 else 0


def test_agents_replicate_and_the_leaders_coordinator_survives_its_death(agents, http):
    def create(i: int, name: str) -> bool:
        r = http.post(f"{agents[i].url}/api/v1/namespaces/default/configmaps", timeout=10,
                       json={"metadata": {"name": name}, "data": {"k": name}})
        return r.status_code == 201
    until(lambda: create(2, "first"), what="a write through agent 2")
    for i in (1, 3):  # reads anywhere are linearizable: the write is there at once
        r = http.get(f"{agents[i].url}/api/v1/namespaces/default/configmaps/first", timeout=10)
        assert r.status_code == 200 and r.json()["data"] == {"k": "first"}
    leader = until(lambda: leader_of(agents), what="one coordinator")
    # The coordinator (on the leader only) turns a Deployment into a ReplicaSet and pods.
    follower = next(i for i in agents if i != leader)
    r = http.post(f"{agents[follower].url}/apis/apps/v1/namespaces/default/deployments",
                   json=DEPLOYMENT, timeout=10)
    assert r.status_code == 201, r.text
    until(lambda: len(http.get(f"{agents[follower].url}/api/v1/namespaces/default/pods",
                                timeout=10).json()["items"]) == 2, what="two pods")
    # kill -9 the leader's agent: another agent leads and coordinates; writes go on.
    agents[leader].proc.send_signal(signal.SIGKILL)
    agents[leader].proc.wait()
    survivors = [i for i in agents if i != leader]
    for n in range(10):
        until(lambda n=n: create(survivors[n % 2], f"after{n}"), what=f"write {n} after the kill")
    new = until(lambda: leader_of({i: agents[i] for i in survivors}), what="a new coordinator")
    assert new in survivors
    r = http.patch(f"{agents[survivors[0]].url}/apis/apps/v1/namespaces/default/deployments/web",
                    json={"spec": {"replicas": 3}}, timeout=10,
                    headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    until(lambda: len(http.get(f"{agents[survivors[1]].url}/api/v1/namespaces/default/pods",
                                timeout=10).json()["items"]) == 3, what="scaled by the new leader")
    names = {c["metadata"]["name"] for c in http.get(
        f"{agents[survivors[1]].url}/api/v1/namespaces/default/configmaps", timeout=10).json()["items"]}
    assert {"first", *(f"after{n}" for n in range(10))} <= names  # nothing acknowledged lost


def test_a_stopping_leader_hands_leadership_over_first(agents, http):
    leader = until(lambda: leader_of(agents), what="one coordinator")
    agents[leader].stop(signal.SIGTERM)
    said = agents[leader].log_text()
    assert "handing leadership to" in said, said[-2000:]
    target = int(said.split("handing leadership to ")[1].split()[0])
    # The target itself leads (an election would have picked either survivor).
    until(lambda: "starting the coordinator" in agents[target].log_text(), 10,
          what=f"agent {target} leading")
    until(lambda: leader_of({i: a for i, a in agents.items() if i != leader}) == target,
          what="the target as the only coordinator")


def test_nodeagent_raft_lists_peers_and_moves_leadership(agents, http):
    import subprocess
    import sys
    leader = until(lambda: leader_of(agents), what="one coordinator")

    def raft_cli(*args: str, via: int = leader) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nodeagent", "raft", *args, "--socket",
                               str(agents[via].socket)], capture_output=True, text=True,
                              timeout=30)
    out = raft_cli("list-peers")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"server {leader}: leader") and len(lines) == 5, out.stdout
    assert all(" yes " in ln for ln in lines[2:]) and sum("*" in ln for ln in lines[2:]) == 1
    target, other = (i for i in agents if i != leader)
    bad = raft_cli("transfer-leader", str(target), via=other)  # asked of a follower
    assert bad.returncode != 0 and "does not lead" in bad.stderr
    assert raft_cli("transfer-leader", "9").returncode != 0
    moved = raft_cli("transfer-leader", str(target))
    assert moved.returncode == 0, moved.stderr
    until(lambda: leader_of(agents) == target, what=f"agent {target} leading")


def test_a_server_joins_as_a_learner_is_promoted_and_another_is_removed(agents, tmp_path, http):
    import subprocess
    import sys
    leader = until(lambda: leader_of(agents), what="one coordinator")
    port = free_ports(1)[0]
    members = ",".join(f"{i}=127.0.0.1:{a.extra[a.extra.index('--raft-listen') + 1].split(':')[1]}"
                       for i, a in agents.items())
    fourth = AgentProcess(tmp_path / "a4", "node4", "--no-fsync", "--raft-id", "4", "--raft-join",
                          "--raft-listen", f"127.0.0.1:{port}", "--raft-peers", members,
                          "--raft-tick-ms", "20", ca=cluster_ca(tmp_path))
    try:
        fourth.start()

        def raft_cli(*args: str, via: str = str(agents[leader].socket)) \
                -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "nodeagent", "raft", *args, "--socket",
                                   via], capture_output=True, text=True, timeout=30)
        bad = raft_cli("add-peer", "4", "nowhere")
        assert bad.returncode != 0 and "address" in bad.stderr
        added = raft_cli("add-peer", "4", f"127.0.0.1:{port}")
        assert added.returncode == 0, added.stderr

        def members_now() -> dict[int, str]:
            out = raft_cli("list-peers").stdout.splitlines()[2:]
            return {int(ln.split()[0]): ln.split()[2] for ln in out}
        until(lambda: members_now() == {1: "yes", 2: "yes", 3: "yes", 4: "yes"}, 20,
              what="server 4 promoted to voter")
        # The newcomer serves writes and (linearizable) reads like the others.
        r = http.post(f"{fourth.url}/api/v1/namespaces/default/configmaps", timeout=10,
                       json={"metadata": {"name": "from-four"}})
        assert r.status_code == 201, r.text
        # Retire a follower: the cluster goes on with the other three.
        gone = next(i for i in agents if i != leader)
        assert raft_cli("remove-peer", str(gone)).returncode == 0
        until(lambda: set(members_now()) == {1, 2, 3, 4} - {gone}, 20, what=f"{gone} removed")
        agents[gone].close()
        r = http.post(f"{fourth.url}/api/v1/namespaces/default/configmaps", timeout=10,
                       json={"metadata": {"name": "after-removal"}})
        assert r.status_code == 201, r.text
    finally:
        fourth.close()


def test_no_acknowledged_write_is_lost_while_leaders_are_killed_again_and_again(agents, http):
    """A client writes the whole time through whichever agent answers; the leader's agent
    is killed -9 three times (and started again from its disk).  Every write that was
    acknowledged is there at the end, on every agent."""
    import threading
    acked: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            name = f"w{n}"
            for i in (1, 2, 3):
                a = agents[i]
                if not (a.proc and a.proc.poll() is None and a.url):
                    continue
                try:
                    r = http.post(f"{a.url}/api/v1/namespaces/default/configmaps", timeout=3,
                                   json={"metadata": {"name": name}})
                except httpx.HTTPError:
                    continue
                if r.status_code == 201:
                    acked.append(name)
                    break
                if r.status_code == 409:  # an earlier attempt that timed out did it
                    break
            n += 1
    until(lambda: leader_of(agents), what="one coordinator")
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            time.sleep(1)
            leader = until(lambda: leader_of(agents), what="a leader to kill")
            agents[leader].proc.send_signal(signal.SIGKILL)
            agents[leader].proc.wait()
            until(lambda leader=leader: leader_of({i: a for i, a in agents.items()
                                                   if i != leader}), what="a new leader")
            agents[leader].start()
        time.sleep(1)
    finally:
        stop.set()
        thread.join(10)
    assert len(acked) > 20, acked
    for i in (1, 2, 3):
        have = {c["metadata"]["name"] for c in http.get(
            f"{agents[i].url}/api/v1/namespaces/default/configmaps", timeout=10).json()["items"]}
        lost = [n for n in acked if n not in have]
        assert not lost, f"agent {i} lacks acknowledged writes {lost[:10]}"


def test_an_agent_that_is_not_a_server_works_through_the_servers(agents, tmp_path, http):
    """An agent started with --servers keeps a copy of the store: its API serves
    linearizable reads and watches from the copy; it runs no coordinator; a write through
    it is its node's own, and the servers refuse what a node may not write; when the
    server it follows is killed it goes on with another, and a watch on its API does not
    notice."""
    until(lambda: leader_of(agents), what="one coordinator")
    client = AgentProcess(tmp_path / "client", "client", "--no-fsync", "--servers",
                          ",".join(a.url for a in agents.values()), "--join-token-file",
                          str(agents[1].join_token()))
    try:
        client.start()
        r = http.post(f"{agents[1].url}/api/v1/namespaces/default/configmaps", timeout=10,
                       json={"metadata": {"name": "on-server"}, "data": {"k": "1"}})
        assert r.status_code == 201, r.text
        # Read right after a write elsewhere: the client's API is linearizable.
        r = http.get(f"{client.url}/api/v1/namespaces/default/configmaps/on-server", timeout=10)
        assert r.status_code == 200 and r.json()["data"] == {"k": "1"}, r.text
        assert r.json()["metadata"]["resourceVersion"] == http.get(
            f"{agents[2].url}/api/v1/namespaces/default/configmaps/on-server",
            timeout=10).json()["metadata"]["resourceVersion"]
        # A write through the client is the client node's own: the servers refuse it (a
        # node writes its own Node, its pods' status and events), with the reason.
        r = http.post(f"{client.url}/api/v1/namespaces/default/configmaps", timeout=10,
                      json={"metadata": {"name": "via-client"}})
        assert r.status_code == 403 and "this agent is not a server" in r.json()["message"], \
            r.text
        r = http.post(f"{agents[1].url}/api/v1/namespaces/default/configmaps", timeout=10,
                      json={"metadata": {"name": "via-server"}})
        assert r.status_code == 201, r.text
        # A watch on the client's API, then the server it follows is killed -9.
        followed = client.log_text().split("store copy: following ")[1].split()[0]
        victim = next(i for i, a in agents.items() if a.url == followed)
        rv = r.json()["metadata"]["resourceVersion"]
        seen: list[str] = []
        with http.stream("GET", f"{client.url}/api/v1/namespaces/default/configmaps",
                          params={"watch": "1", "resourceVersion": rv}, timeout=30) as watch:
            agents[victim].proc.send_signal(signal.SIGKILL)
            agents[victim].proc.wait()
            survivor = next(i for i in agents if i != victim)
            until(lambda: http.post(f"{agents[survivor].url}/api/v1/namespaces/default/"
                                     "configmaps", json={"metadata": {"name": "after-kill"}},
                                     timeout=5).status_code == 201, what="a write after the kill")
            r = until(lambda: http.post(f"{agents[survivor].url}/api/v1/namespaces/default/"
                                        "configmaps", json={"metadata": {"name": "client-after-kill"}},
                                        timeout=10).status_code in (201, 409),
                      what="another write after the kill")
            for line in watch.iter_lines():
                seen.append(line)
                if "client-after-kill" in line:
                    break
        names = [ln.split('"name":"')[1].split('"')[0] for ln in seen if '"ADDED"' in ln]
        assert names == ["after-kill", "client-after-kill"], seen
        assert "starting the coordinator" not in client.log_text()
        assert "store copy: server" in client.log_text()  # it noticed and moved on
    finally:
        client.close()


def test_servers_started_with_bootstrap_expect_form_a_cluster_and_a_late_one_joins(tmp_path, http):
    """No static member list: server 1 knows no one, 2 and 3 know server 1's API; once
    the three found each other they form one cluster; a restarted server keeps its
    membership; a fourth that finds the cluster asks to be added and becomes a voter."""
    ports = free_ports(4)

    def server(i: int, *seeds: str) -> AgentProcess:
        extra = ("--raft-seeds", ",".join(seeds)) if seeds else ()
        return AgentProcess(tmp_path / f"b{i}", f"node{i}", "--no-fsync", "--raft-id", str(i),
                            "--raft-listen", f"127.0.0.1:{ports[i - 1]}", "--raft-tick-ms", "20",
                            "--raft-bootstrap-expect", "3", *extra, ca=cluster_ca(tmp_path))
    procs = {1: server(1)}
    try:
        procs[1].start()
        time.sleep(0.5)  # alone it waits: no cluster of one
        assert http.get(f"{procs[1].url}/raft", timeout=5).json()["members"] == []
        for bad, field in (({"id": "x"}, "id"), ({"id": 7, "address": "nowhere"}, "address"),
                           ({"id": 7, "address": "h:1", "api": "ftp://x"}, "api"), ([], "body")):
            r = http.post(f"{procs[1].url}/raft/hello", json=bad, timeout=5)
            assert r.status_code == 400 and r.json()["message"].startswith(field), r.text
        # A hello that names a server nobody can reach counts for nothing: a server is
        # counted once it answered itself (a forged one once became a voter).
        forged = {"id": 9, "address": "127.0.0.1:1", "api": "http://127.0.0.1:1"}
        assert http.post(f"{procs[1].url}/raft/hello", json=forged, timeout=5).status_code == 200
        time.sleep(1.0)  # two bootstrap rounds
        assert http.get(f"{procs[1].url}/raft", timeout=5).json()["known"] == [
            {"id": 1, "address": f"127.0.0.1:{ports[0]}", "api": procs[1].url}]
        for i in (2, 3):
            procs[i] = server(i, procs[1].url).start()

        def voters(a: AgentProcess) -> set[int]:
            st = http.get(f"{a.url}/raft", timeout=5).json()
            return {m["id"] for m in st["members"] if m["voter"]}
        for a in procs.values():
            until(lambda a=a: voters(a) == {1, 2, 3}, what=f"{a.name} in the cluster of three")
        leader = until(lambda: leader_of(procs), what="one coordinator")
        r = http.post(f"{procs[2].url}/api/v1/namespaces/default/configmaps", timeout=10,
                       json={"metadata": {"name": "bootstrapped"}})
        assert r.status_code == 201, r.text
        # A restart does not bootstrap again: the membership was saved.
        follower = next(i for i in procs if i != leader)
        procs[follower].stop()
        procs[follower].start()
        until(lambda: voters(procs[follower]) == {1, 2, 3}, what="membership after a restart")
        assert procs[follower].log_text().count("bootstrapping with 3 servers") <= 1
        # A late server finds the cluster through one seed and says how to add it; an
        # operator does, on the leader's socket; it is promoted once caught up.
        procs[4] = server(4, procs[follower].url).start()
        until(lambda: "nodeagent raft add-peer 4 " in procs[4].log_text(), 30,
              what="server 4 naming the command that adds it")
        assert voters(procs[leader]) == {1, 2, 3}
        add = subprocess.run([sys.executable, "-m", "nodeagent", "raft", "add-peer", "4",
                              f"127.0.0.1:{ports[3]}", "--socket", str(procs[leader].socket)],
                             capture_output=True, text=True, timeout=30)
        assert add.returncode == 0, add.stderr
        until(lambda: voters(procs[leader]) == {1, 2, 3, 4}, 30, what="server 4 a voter")
        r = http.get(f"{procs[4].url}/api/v1/namespaces/default/configmaps/bootstrapped",
                      timeout=10)
        assert r.status_code == 200, r.text
    finally:
        for p in procs.values():
            p.close()


def test_agents_find_each_other_by_gossip_with_one_seed(tmp_path, http):
    """Servers with bootstrap_expect and no seed list but gossip form a cluster; an agent
    that is not a server, given only one gossip address, finds the servers and works
    through them; 'nodeagent members' shows everyone; a killed agent is seen failed and a
    stopped one as left."""
    import base64
    import os
    import subprocess
    import sys
    raft_ports, gossip_ports = free_ports(3), free_ports(5)
    key = tmp_path / "gossip.key"  # the servers of a cluster formed at once share one
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    key.chmod(0o600)

    def gossip(i: int, *more: str) -> tuple[str, ...]:
        seed = () if i == 1 else ("--gossip-join", f"127.0.0.1:{gossip_ports[0]}")
        return ("--gossip-listen", f"127.0.0.1:{gossip_ports[i - 1]}", "--gossip-profile",
                "local", *seed, *more)
    procs = {}
    try:
        for i in (1, 2, 3):
            procs[i] = AgentProcess(tmp_path / f"g{i}", f"node{i}", "--no-fsync", "--raft-id",
                                    str(i), "--raft-listen", f"127.0.0.1:{raft_ports[i - 1]}",
                                    "--raft-tick-ms", "20", "--raft-bootstrap-expect", "3",
                                    "--gossip-key-file", str(key), *gossip(i),
                                    ca=cluster_ca(tmp_path)).start()
        leader = until(lambda: leader_of(procs), what="a leader, bootstrapped through gossip")
        # The client knows one gossip address and a server to join through (which hands it
        # its certificates and the gossip key); it starts once it found a server by gossip
        # and copied the store.
        client = procs[4] = AgentProcess(tmp_path / "g4", "client", "--no-fsync",
                                         "--node-labels", "zone=a,disk=ssd", "--join-url",
                                         procs[1].url, "--join-token-file",
                                         str(procs[1].join_token()), *gossip(4)).start()
        # Its copy follows the server it found: a write to the leader is read through it.
        r = http.post(f"{procs[leader].url}/api/v1/namespaces/default/configmaps", timeout=10,
                      json={"metadata": {"name": "via-gossip"}})
        assert r.status_code == 201, r.text
        assert http.get(f"{client.url}/api/v1/namespaces/default/configmaps/via-gossip",
                        timeout=10).status_code == 200

        def members(via: int = 1) -> dict[str, tuple[str, str]]:
            out = subprocess.run([sys.executable, "-m", "nodeagent", "members", "--socket",
                                  str(procs[via].socket)], capture_output=True, text=True,
                                 timeout=30)
            assert out.returncode == 0, out.stderr
            rows = [ln.split() for ln in out.stdout.splitlines()[1:]]
            return {row[0]: (row[2], row[3]) for row in rows}
        four = {"node1": ("alive", "server"), "node2": ("alive", "server"),
                "node3": ("alive", "server"), "client": ("alive", "client")}
        # Both views asked below: node2 may hear of the client a moment after node1.
        until(lambda: members() == four and members(2) == four, what="four members alive")
        rows = {m["name"]: m for m in http.get(f"{procs[2].url}/gossip/members",
                                                  timeout=10).json()["members"]}
        assert rows["client"]["labels"] == {"zone": "a", "disk": "ssd"}
        assert rows[f"node{leader}"]["raft"].startswith(f"{leader}=127.0.0.1:")
        # A user event through one agent reaches the others (serf event).
        out = subprocess.run([sys.executable, "-m", "nodeagent", "event", "deploy", "v2",
                              "--socket", str(client.socket)], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        # Gossip sends it twice from each agent (local profile): one it missed comes with
        # the next push-pull (every 15 s), as serf's do.
        until(lambda: all("gossip: user event deploy" in procs[i].log_text() for i in (1, 2, 3)),
              40, what="the user event everywhere")
        bad = subprocess.run([sys.executable, "-m", "nodeagent", "event", "_keyring",
                              "--socket", str(client.socket)], capture_output=True, text=True,
                             timeout=30)
        assert bad.returncode != 0 and "name" in bad.stderr
        # On the network API the operator's calls are not served at all.
        assert http.post(f"{client.url}/gossip/events", json={"name": "x"},
                          timeout=10).status_code == 404
        procs[4].proc.send_signal(signal.SIGKILL)
        procs[4].proc.wait()
        until(lambda: members()["client"][0] == "failed", 30, what="the client seen failed")
        follower = next(i for i in (1, 2, 3) if i != leader)
        procs[follower].stop()
        watcher = next(i for i in (1, 2, 3) if i != follower)
        until(lambda: members(watcher)[f"node{follower}"][0] == "left", 15,
              what="a stopped server seen leaving")
        # node1, the seed with no seed of its own, restarted after leaving (which the
        # others never reconnect to): it rejoins through the members it knew, not alone.
        other = next(i for i in (2, 3) if i != follower)
        if follower != 1:
            procs[1].stop()
            until(lambda: members(other)["node1"][0] == "left", 15, what="node1 left")
        procs[1].start()
        until(lambda: members(other)["node1"][0] == "alive" and
              members(1).get(f"node{other}", ("",))[0] == "alive", 30,
              what="node1 back among the others")
    finally:
        for p in procs.values():
            p.close()


def test_gossip_keys_rotate_across_agents_without_losing_anyone(tmp_path, http):
    """Agents gossip encrypted; 'nodeagent keys install|use|remove' through one agent
    rotates every agent's keyring (the change travels as an encrypted gossip event);
    nobody is suspected meanwhile, and an agent that has only the new key joins."""
    import base64
    import os
    import subprocess
    import sys

    from nodeagent.gossip.keyring import fingerprint
    raw = {"old": os.urandom(32), "new": os.urandom(32)}
    files = {}
    for name, key in raw.items():  # keys travel in files, never on a command line
        files[name] = tmp_path / f"{name}.key"
        files[name].write_text(base64.b64encode(key).decode())
        files[name].chmod(0o600)
    old, new = fingerprint(raw["old"]), fingerprint(raw["new"])
    raft_ports, gossip_ports = free_ports(3), free_ports(4)

    def server(i: int, key: Path) -> AgentProcess:
        seed = () if i == 1 else ("--gossip-join", f"127.0.0.1:{gossip_ports[0]}")
        return AgentProcess(tmp_path / f"k{i}", f"node{i}", "--no-fsync", "--raft-id", str(i),
                            "--raft-listen", f"127.0.0.1:{raft_ports[i - 1]}", "--raft-tick-ms",
                            "20", "--raft-bootstrap-expect", "3", "--gossip-listen",
                            f"127.0.0.1:{gossip_ports[i - 1]}", "--gossip-profile", "local",
                            "--gossip-key-file", str(key), *seed, ca=cluster_ca(tmp_path))

    def cli(*args: str, via: AgentProcess) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nodeagent", *args, "--socket",
                               str(via.socket)],
                              capture_output=True, text=True, timeout=30)

    def statuses(via: AgentProcess) -> set[str]:
        out = cli("members", via=via).stdout.splitlines()[1:]
        return {f"{ln.split()[0]}={ln.split()[2]}" for ln in out}

    procs = {i: server(i, files["old"]) for i in (1, 2, 3)}
    try:
        for p in procs.values():
            p.start()
        until(lambda: statuses(procs[3]) == {"node1=alive", "node2=alive", "node3=alive"},
              what="three members alive")
        assert all(cli("keys", "list", via=p).stdout.split() == [old, "(primary)"]
                   for p in procs.values())  # fingerprints: the key itself never leaves
        assert raw["old"].hex() not in cli("keys", "list", via=procs[1]).stdout
        for step in (("install", str(files["new"])), ("use", new), ("remove", old)):
            out = cli("keys", *step, via=procs[2])
            assert out.returncode == 0, out.stderr
            until(lambda step=step: all(
                (step[0] == "install" and new in cli("keys", "list", via=p).stdout) or
                (step[0] == "use" and f"{new}  (primary)" in cli("keys", "list", via=p).stdout) or
                (step[0] == "remove" and old not in cli("keys", "list", via=p).stdout)
                for p in procs.values()), 15, what=f"keys {step[0]} everywhere")
        bad = cli("keys", "remove", new, via=procs[1])  # the primary cannot go
        assert bad.returncode != 0 and "primary" in bad.stderr
        for p in procs.values():
            log = p.log_text()
            assert "gossip: suspect" not in log and "gossip: failed" not in log, log[-2000:]
        # A newcomer with only the new key is let in.
        procs[4] = AgentProcess(tmp_path / "k4", "client", "--no-fsync", "--gossip-listen",
                                f"127.0.0.1:{gossip_ports[3]}", "--gossip-profile", "local",
                                "--gossip-key-file", str(files["new"]), "--gossip-join",
                                f"127.0.0.1:{gossip_ports[0]}", "--join-url", procs[1].url,
                                "--join-token-file", str(procs[1].join_token())).start()
        until(lambda: "client=alive" in statuses(procs[1]), what="the newcomer alive")
    finally:
        for p in procs.values():
            p.close()


def test_watches_go_on_across_a_leader_change_resuming_from_their_resource_version(agents, http):
    """A client watching through the leader's API, whose leader is then killed, starts the
    watch again on another agent from the last resourceVersion it saw (what kubectl and
    informers do): it gets every change since, once each, in order, though a new leader
    committed some of them; and a watch on a follower's API is not even interrupted."""
    import json
    import threading
    until(lambda: http.get(f"{agents[1].url}/api/v1/namespaces/default", timeout=5)
          .status_code == 200, what="the default namespace")
    leader = until(lambda: leader_of(agents), what="a leader")
    follower = next(i for i in agents if i != leader)
    rv = http.get(f"{agents[leader].url}/api/v1/namespaces/default/configmaps",
                   timeout=10).json()["metadata"]["resourceVersion"]
    seen: dict[str, list[str]] = {"leader": [], "follower": []}
    last_rv = {"leader": rv}

    def watch(who: str, url: str, since: str) -> None:
        try:
            with http.stream("GET", f"{url}/api/v1/namespaces/default/configmaps",
                              params={"watch": "1", "resourceVersion": since},
                              timeout=httpx.Timeout(10, read=30)) as resp:
                for line in resp.iter_lines():
                    if line.strip():
                        ev = json.loads(line)
                        if not ev["object"]["metadata"]["name"].startswith("cm-"):
                            continue  # the coordinator's own (kube-root-ca.crt), racing
                        seen[who].append(ev["object"]["metadata"]["name"])
                        last_rv[who] = ev["object"]["metadata"]["resourceVersion"]
                        if len(seen[who]) == 20:
                            return
        except httpx.HTTPError:
            return  # the agent died under the watch
    on_follower = threading.Thread(target=watch, args=("follower", agents[follower].url, rv))
    on_leader = threading.Thread(target=watch, args=("leader", agents[leader].url, rv))
    on_follower.start()
    on_leader.start()

    def create(i: int, name: str) -> bool:
        r = http.post(f"{agents[i].url}/api/v1/namespaces/default/configmaps", timeout=5,
                       json={"metadata": {"name": name}})
        return r.status_code == 201
    for n in range(10):
        until(lambda n=n: create(follower, f"cm-{n:02d}"), what=f"write {n}")
    until(lambda: len(seen["leader"]) == 10, what="the leader's watch to see 10")
    agents[leader].proc.send_signal(signal.SIGKILL)
    agents[leader].proc.wait()
    on_leader.join(30)
    for n in range(10, 20):
        until(lambda n=n: create(follower, f"cm-{n:02d}"), what=f"write {n} after the kill")
    # Resume where the dead agent's watch stopped, on another agent.
    other = next(i for i in agents if i not in (leader, follower))
    resumed = threading.Thread(target=watch, args=("leader", agents[other].url,
                                                   last_rv["leader"]))
    resumed.start()
    resumed.join(30)
    on_follower.join(30)
    wanted = [f"cm-{n:02d}" for n in range(20)]
    assert seen["leader"] == wanted, seen["leader"]
    assert seen["follower"] == wanted, seen["follower"]
