"""What a node takes from a server's /renew answer: certificates for the key it made,
signed by a CA it trusts, the node one naming it.  Forged or broken answers are refused
before anything is written, so a bad answer cannot leave the node without working
certificates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from nodeagent import pki
from nodeagent.clusterpki import NODE_GROUP, AgentPki, node_user
from nodeagent.join import JoinError, csr_for, renewed_leaves


def _pem(cert: object) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()  # type: ignore[attr-defined]


@pytest.fixture
def node(tmp_path: Path) -> tuple[AgentPki, pki.Issued]:
    ca = pki.make_ca()
    agent_pki = AgentPki(tmp_path)
    agent_pki.install(ca.cert_pem)
    return agent_pki, ca


def test_a_proper_answer_is_taken(node: tuple[AgentPki, pki.Issued]) -> None:
    agent_pki, ca = node
    key, _csr = csr_for("n1")
    answer = {"node": _pem(pki.sign_client(ca, key.public_key(), node_user("n1"), (NODE_GROUP,))),
              "server": _pem(pki.sign_serving(ca, key.public_key(), "n1", ["n1"]))}
    node_pem, server_pem = renewed_leaves(agent_pki, "n1", key, answer)
    assert node_pem == answer["node"].encode() and server_pem == answer["server"].encode()


def test_forged_and_broken_answers_are_refused(node: tuple[AgentPki, pki.Issued]) -> None:
    agent_pki, ca = node
    key, _csr = csr_for("n1")
    other_key, _ = csr_for("n1")
    stranger = pki.make_ca()

    def answer(signer: pki.Issued, public: object, user: str = node_user("n1")) -> dict:
        return {"node": _pem(pki.sign_client(signer, public, user, (NODE_GROUP,))),  # type: ignore[arg-type]
                "server": _pem(pki.sign_serving(signer, public, "n1", ["n1"]))}  # type: ignore[arg-type]
    for bad, says in (
        (None, "no node certificate"),
        ({"node": "garbage", "server": "garbage"}, "no node certificate"),
        ({"node": 7}, "no node certificate"),
        (answer(stranger, key.public_key()), "signed by no CA"),
        (answer(ca, other_key.public_key()), "not for this node's key"),
        (answer(ca, key.public_key(), node_user("n2")), "not node n1"),
    ):
        with pytest.raises(JoinError, match=says):
            renewed_leaves(agent_pki, "n1", key, bad)
