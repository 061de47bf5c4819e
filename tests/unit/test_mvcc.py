"""The store's state machine: revisions, ranges, transactions, history, compaction, snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.store.errors import CompactedError, FutureRevisionError
from nodeagent.store.mvcc import MVCC, Compare, Op, OpKind, Txn


def put(key: str, value: bytes = b"v") -> Txn:
    return Txn(success=(Op(OpKind.PUT, key, value),))


def delete(key: str) -> Txn:
    return Txn(success=(Op(OpKind.DELETE, key),))


def test_revisions_versions_and_create_revision():
    m = MVCC()
    m.apply(put("/a", b"1"))
    m.apply(put("/b", b"1"))
    m.apply(put("/a", b"2"))
    a = m.get("/a")
    assert a is not None
    assert (a.value, a.create_revision, a.mod_revision, a.version) == (b"2", 1, 3, 2)
    assert m.revision == 3
    m.apply(delete("/a"))
    assert m.get("/a") is None and m.revision == 4
    m.apply(put("/a", b"3"))
    a = m.get("/a")
    assert a is not None and (a.create_revision, a.version) == (5, 1)


def test_a_txn_that_writes_nothing_does_not_bump_the_revision():
    m = MVCC()
    m.apply(put("/a"))
    res, events = m.apply(delete("/missing"))
    assert events == [] and m.revision == 1 and res.revision == 1


def test_compare_and_swap():
    m = MVCC()
    m.apply(put("/k", b"1"))
    stale = Txn((Compare("/k", "mod", "=", 0),), (Op(OpKind.PUT, "/k", b"x"),), ())
    res, _ = m.apply(stale)
    assert not res.succeeded and m.get("/k").value == b"1"
    fresh = Txn((Compare("/k", "mod", "=", 1),), (Op(OpKind.PUT, "/k", b"2"),), ())
    res, _ = m.apply(fresh)
    assert res.succeeded and m.get("/k").value == b"2"
    create_if_absent = Txn((Compare("/new", "version", "=", 0),), (Op(OpKind.PUT, "/new", b"n"),),
                           (Op(OpKind.PUT, "/other", b"o"),))
    assert m.apply(create_if_absent)[0].succeeded
    assert not m.apply(create_if_absent)[0].succeeded
    assert m.get("/other") is not None  # the failure branch ran
    by_value = Txn((Compare("/k", "value", "=", b"2"),), (Op(OpKind.DELETE, "/k"),), ())
    assert m.apply(by_value)[0].succeeded and m.get("/k") is None


def test_range_by_prefix_with_limit_and_continue():
    m = MVCC()
    for i in range(10):
        m.apply(put(f"/pods/default/p{i}"))
    m.apply(put("/pods/other/x"))
    m.apply(put("/podsx"))
    items, more, _ = m.range("/pods/default/", limit=4)
    assert [kv.key for kv in items] == [f"/pods/default/p{i}" for i in range(4)] and more
    items, more, _ = m.range("/pods/default/", start_after=items[-1].key, limit=10)
    assert [kv.key for kv in items] == [f"/pods/default/p{i}" for i in range(4, 10)]
    assert not more
    assert m.count("/pods/") == 11


def test_past_revisions_and_compaction():
    m = MVCC(history_revisions=5)
    for i in range(4):
        m.apply(put("/k", str(i).encode()))
    items, _, rev = m.range("/k", revision=2)
    assert rev == 2 and items[0].value == b"1"
    with pytest.raises(FutureRevisionError):
        m.range("/k", revision=99)
    for _ in range(20):
        m.apply(put("/k", b"x"))
    assert m.compact_revision > 0
    with pytest.raises(CompactedError):
        m.range("/k", revision=2)
    with pytest.raises(CompactedError):
        m.events_since(1)
    assert len(m.events_since(m.revision)) == 1


def test_delete_prefix_emits_one_event_per_key_at_one_revision():
    m = MVCC()
    for k in ("/ns/a/1", "/ns/a/2", "/ns/b/1"):
        m.apply(put(k))
    _, events = m.apply(Txn(success=(Op(OpKind.DELETE_PREFIX, "/ns/a/"),)))
    assert [(e.type, e.kv.key, e.revision) for e in events] == [
        ("DELETE", "/ns/a/1", 4), ("DELETE", "/ns/a/2", 4)]
    assert m.count("/ns/") == 1


def test_snapshot_restore_round_trip():
    m = MVCC()
    for i in range(50):
        m.apply(put(f"/k{i % 7}", str(i).encode()))
    m.apply(delete("/k3"))
    n = MVCC()
    n.restore(m.snapshot())
    assert n.revision == m.revision
    assert n.range("/")[0] == m.range("/")[0]
    with pytest.raises(CompactedError):  # history is not part of a snapshot
        n.events_since(1)


def test_txn_encoding_round_trip():
    t = Txn((Compare("/a", "value", "=", b"\x00\xff"),), (Op(OpKind.PUT, "/a", b"\x01"),),
            (Op(OpKind.DELETE, "/b"),))
    assert Txn.decode(t.encode()) == t


# --- property: the store is a versioned dict ------------------------------------------------

KEYS = st.sampled_from(["/a", "/a/1", "/a/2", "/b", "/b/1", "/c"])
OPS = st.one_of(
    st.tuples(st.just("put"), KEYS, st.binary(max_size=4)),
    st.tuples(st.just("delete"), KEYS, st.just(b"")),
    st.tuples(st.just("delete_prefix"), st.sampled_from(["/a/", "/b", "/"]), st.just(b"")),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(OPS, min_size=1, max_size=3), max_size=40),
       st.integers(min_value=3, max_value=50))
def test_matches_a_model_at_every_retained_revision(txns, window):
    m = MVCC(history_revisions=window)
    model: dict[str, bytes] = {}
    states = {0: {}}
    for ops in txns:
        before = dict(model)
        for kind, key, value in ops:
            if kind == "put":
                model[key] = value
            elif kind == "delete":
                model.pop(key, None)
            else:
                for k in [k for k in model if k.startswith(key)]:
                    del model[k]
        _, events = m.apply(Txn(success=tuple(Op(*o) for o in ops)))
        assert bool(events) == (model != before or any(o[0] == "put" for o in ops))
        states[m.revision] = dict(model)
    assert {kv.key: kv.value for kv in m.range("")[0]} == model
    for rev, state in states.items():
        if rev <= m.compact_revision:
            continue
        assert {kv.key: kv.value for kv in m.range("", revision=rev)[0]} == state
        # Replaying the history from rev+1 over that state gives today's state.
        replay = dict(state)
        for ev in m.events_since(rev + 1):
            if ev.type == "PUT":
                replay[ev.kv.key] = ev.kv.value
            else:
                replay.pop(ev.kv.key, None)
        assert replay == model
    revs = [e.revision for e in m.events_since(m.compact_revision + 1)]
    assert revs == sorted(revs)
