"""``/raft``: this server's view of the Raft cluster, and leadership transfer.

    GET  /raft                          role, term, leader, commit, applied, members (and,
                                        on the leader, each member's progress)
    POST /raft/transfer-leader?to=ID    hand leadership to ID (this server must lead)

Not a Kubernetes API: operators' plumbing, as etcdctl's member and move-leader are.
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.status import ApiError

__all__ = ["raft_status", "transfer_leader"]


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
