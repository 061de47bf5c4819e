"""``/raft``: this server's view of the Raft cluster, and leadership transfer.

    GET    /raft                        role, term, leader, commit, applied, members (and,
                                        on the leader, each member's progress)
    POST   /raft/transfer-leader?to=ID  hand leadership to ID (this server must lead)
    POST   /raft/peers {"id", "address"} add a server, as a learner (promoted by the leader
                                        once caught up); ask the leader
    DELETE /raft/peers/ID               remove a server; ask the leader

Not a Kubernetes API: operators' plumbing, as etcdctl's member and move-leader are.
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.status import ApiError
from nodeagent.config import parse_host_port
from nodeagent.raft.messages import ConfChange

__all__ = ["add_peer", "raft_status", "remove_peer", "transfer_leader"]


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
    return {"id": r.id, "role": r.role.value, "term": r.term, "leader": r.leader,
            "commit": r.log.committed, "applied": r.log.applied, "lastIndex": r.log.last_index(),
            "snapshotIndex": r.log.snapshot_index, "members": members}


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
    if not isinstance(body, dict):
        raise ApiError.bad_request("body: expected {\"id\": N, \"address\": \"HOST:PORT\"}")
    ident, address = body.get("id"), body.get("address")
    if type(ident) is not int or ident <= 0:
        raise ApiError.bad_request(f"id: {ident!r} is not a positive integer")
    parsed = parse_host_port(address) if isinstance(address, str) else None
    if parsed is None or parsed[1] == 0:
        raise ApiError.bad_request(f"address: {address!r} is not HOST:PORT")
    node = _leader(store)
    if ident in node.raft.voters | node.raft.learners:
        raise ApiError(409, "Conflict", f"server {ident} is a member already")
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
