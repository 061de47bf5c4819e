"""``/raft``: this server's view of the Raft cluster, and leadership transfer.

    GET    /raft                        role, term, leader, commit, applied, members (and,
                                        on the leader, each member's progress)
    POST   /raft/transfer-leader?to=ID  hand leadership to ID (this server must lead)
    POST   /raft/peers {"id", "address"} add a server, as a learner (promoted by the leader
                                        once caught up); a follower forwards it
    POST   /raft/hello {"id", "address", "api"}  a server looking for the others
                                        (bootstrap_expect): -> status and the servers known
    DELETE /raft/peers/ID               remove a server; ask the leader

Not a Kubernetes API: operators' plumbing, as etcdctl's member and move-leader are.  The
changes are served on the operator socket only (api/operator.py); the network API keeps
GET /raft and /raft/hello, which tells nothing to a server but a URL to ask.
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.hostport import parse_host_port
from nodeagent.raft.messages import ConfChange

__all__ = ["add_peer", "hello", "raft_status", "remove_peer", "transfer_leader"]


def _node(store: Any) -> Any:
    node = getattr(store, "node", None)
    if node is None or node.raft is None:
        raise ApiError(404, "NotFound", "this agent is not a Raft server (no --raft-id)")
    return node


def raft_status(store: Any) -> dict[str, Any]:
    node = _node(store)
    r = node.raft
    members = []
    for member in sorted(r.voters | r.learners):
        row: dict[str, Any] = {"id": member, "voter": member in r.voters,
                               "address": "" if member == r.id else
                               ":".join(map(str, node.transport.peers.get(member, ("", ""))))}
        pr = r.progress.get(member)
        if pr is not None:
            row.update(match=pr.match, next=pr.next, state=pr.state.value)
        members.append(row)
    listen = node.transport.listen
    return {"id": r.id, "address": f"{listen[0]}:{node.transport.port}", "role": r.role.value,
            "term": r.term, "leader": r.leader, "commit": r.log.committed,
            "applied": r.log.applied, "lastIndex": r.log.last_index(),
            "snapshotIndex": r.log.snapshot_index, "members": members,
            "known": [{"id": i, "address": a, "api": api}
                      for i, (a, api) in sorted(getattr(store, "discovered", {}).items())]}


def hello(store: Any, body: Any) -> dict[str, Any]:
    """A server looking for the others (bootstrap_expect) says who it is; the answer is
    this server's status with every server it has heard of, so servers that each know
    one seed find all the rest through it."""
    node = _node(store)
    ident, _address, api = _identity(body)
    if ident != node.raft.id and api:
        store.hear_of(api)  # a URL to ask; counted only once it answers (raftbootstrap)
    return raft_status(store)


def _identity(body: Any) -> tuple[int, str, str]:
    if not isinstance(body, dict):
        raise ApiError.bad_request('body: expected {"id": N, "address": "HOST:PORT", ...}')
    ident, address, api = body.get("id"), body.get("address"), body.get("api", "")
    if type(ident) is not int or ident <= 0:
        raise ApiError.bad_request(f"id: {ident!r} is not a positive integer")
    parsed = parse_host_port(address) if isinstance(address, str) else None
    if parsed is None or parsed[1] == 0:
        raise ApiError.bad_request(f"address: {address!r} is not HOST:PORT")
    if not isinstance(api, str) or (api and not api.startswith(("http://", "https://"))):
        raise ApiError.bad_request(f"api: {api!r} is not an http(s) URL")
    return ident, str(address), api


def transfer_leader(store: Any, to: str) -> dict[str, Any]:
    node = _node(store)
    if not to.isdigit() or int(to) not in node.raft.voters or int(to) == node.raft.id:
        raise ApiError.bad_request(f"to: {to!r} is not another voting member "
                                   f"(members: {sorted(node.raft.voters)})")
    if not node.is_leader:
        raise ApiError(409, "Conflict", f"this server does not lead; the leader is "
                       f"{node.leader or 'not known'}")
    node.transfer_leadership(int(to))
    return {"transferringTo": int(to)}


def _leader(store: Any) -> Any:
    node = _node(store)
    if not node.is_leader:
        raise ApiError(409, "Conflict", f"this server does not lead; the leader is "
                       f"{node.leader or 'not known'}")
    if node.raft.pending_conf_index > node.raft.log.applied:
        raise ApiError(409, "Conflict", "another membership change is still being applied; "
                       "retry in a moment")
    return node


def add_peer(store: Any, body: Any) -> dict[str, Any]:
    """Asked of a follower, the change goes to the leader (as etcd's member add), which
    checks it again; asked of the leader, a refusal is answered here."""
    ident, address, _ = _identity(body)
    node = _node(store)
    if ident in node.raft.voters | node.raft.learners:
        raise ApiError(409, "Conflict", f"server {ident} is a member already")
    if not node.is_leader and not node.leader:
        raise ApiError(503, "ServiceUnavailable", "no leader is known; retry in a moment")
    if node.is_leader:
        _leader(store)
    node.change_membership(ConfChange("add_learner", ident, address))
    return {"adding": ident, "address": address}


def remove_peer(store: Any, ident: str) -> dict[str, Any]:
    node = _leader(store)
    if not ident.isdigit() or int(ident) not in node.raft.voters | node.raft.learners:
        raise ApiError(404, "NotFound", f"server {ident} is not a member "
                       f"(members: {sorted(node.raft.voters | node.raft.learners)})")
    if int(ident) in node.raft.voters and len(node.raft.voters) == 1:
        raise ApiError(409, "Conflict", "the last voting member cannot be removed")
    node.change_membership(ConfChange("remove", int(ident)))
    return {"removing": int(ident)}
