"""The replica stream's writes from anyone: any transaction, of any keys and values, is
taken only if the API would have written it, else refused with a 4xx; lists and watches
of every kind go on serving whatever got in."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeagent.objects.kinds import RESOURCES
from nodeagent.store.mvcc import Compare, Op, Txn
from nodeagent.store.wire import MEDIA_TYPE

KEYS = st.one_of(
    st.sampled_from([r.key("default" if r.namespaced else None, "x") for r in RESOURCES]),
    st.sampled_from(["/registry/allocations/clusterip/10.96.0.9",
                     "/registry/allocations/nodeport/TCP/30001", "/registry/", "/", "",
                     "/registry/pods/default/", "/registry/pods//x", "/registry/x/y/z"]),
    st.text(max_size=40))
OBJECTS = st.one_of(
    st.builds(lambda kind, extra: {"apiVersion": "v1", "kind": kind,
                                   "metadata": {"name": "x", "namespace": "default"}, **extra},
              st.sampled_from(["ConfigMap", "Service", "Pod", "Secret", "Endpoints"]),
              st.dictionaries(st.sampled_from(["data", "spec", "status", "subsets", "type"]),
                              st.dictionaries(st.text(max_size=8), st.text(max_size=20),
                                              max_size=3), max_size=3)),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3))
VALUES = st.one_of(OBJECTS.map(lambda o: json.dumps(o).encode()), st.binary(max_size=80))
OPS = st.builds(Op, st.sampled_from(["put", "delete", "delete_prefix"]), KEYS, VALUES)
CMPS = st.builds(Compare, KEYS, st.sampled_from(["mod", "create", "version"]), st.just("="),
                 st.integers(0, 10))
TXNS = st.builds(Txn, st.lists(CMPS, max_size=2).map(tuple), st.lists(OPS, max_size=3).map(tuple),
                 st.lists(OPS, max_size=2).map(tuple))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(txn=TXNS)
def test_any_transaction_is_taken_only_if_the_api_would_write_it(fuzz_agent, txn) -> None:
    with fuzz_agent.client() as c:
        r = c.post("/replica/txn", content=txn.encode(), headers={"content-type": MEDIA_TYPE})
    assert r.status_code < 500, (r.status_code, r.text[:300])


def test_every_kind_still_lists(fuzz_agent) -> None:
    with fuzz_agent.client() as c:
        for r in RESOURCES:
            path = f"{r.group_path}/{r.plural}"
            got = c.get(path)
            assert got.status_code == 200, (path, got.text[:200])


def test_the_agent_stayed_healthy(fuzz_agent) -> None:
    fuzz_agent.check_healthy()


WIDE_JSON = b"[" + b",".join([b"[]"] * 1_000_000) + b"]"
WIDE_MSGPACK = b"\xdd\x00\x0f\x42\x40" + b"\x90" * 1_000_000  # an array of a million arrays
NESTED_MSGPACK = (b"\x93\xdc\x04\x00" + (b"\xdc\x04\x00" + b"\xc0" * 1024) * 1024 + b"\x90\x90")


def test_the_widest_bodies_at_the_agents_own_doors(fuzz_agent) -> None:
    """The calls between agents parse what anyone sends, as the API does: a wide body to
    /raft/hello once held the loop 700 ms on any agent, and a wide transaction 150 ms."""
    with fuzz_agent.client() as c:
        r = c.post("/raft/hello", content=WIDE_JSON, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "values" in r.json()["message"]
        for body in (WIDE_MSGPACK, NESTED_MSGPACK):
            r = c.post("/replica/txn", content=body, headers={"content-type": MEDIA_TYPE})
            assert r.status_code == 400 and "malformed" in r.json()["message"]
    fuzz_agent.check_healthy()
