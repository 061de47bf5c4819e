"""The store's commands and changes on the wire (servers <-> agents that copy the store):
what a peer sends either decodes into something the state machine can apply, or is refused
with StoreError -- a command ``apply`` could not take would stop every Raft server."""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.store import MVCC, Compare, Op, StoreError, Txn
from nodeagent.store.wire import decode_result, encode_result, event_rows, revisions

keys = st.text(alphabet="abc/", max_size=6)
compares = st.one_of(
    st.builds(Compare, keys, st.sampled_from(["mod", "create", "version"]),
              st.sampled_from(["=", "!=", "<", ">"]), st.integers(0, 10)),
    st.builds(Compare, keys, st.just("value"), st.sampled_from(["=", "!=", "<", ">"]),
              st.binary(max_size=3)))
ops = st.builds(Op, st.sampled_from(["put", "delete", "delete_prefix"]), keys,
                st.binary(max_size=3))
txns = st.builds(Txn, st.lists(compares, max_size=3).map(tuple),
                 st.lists(ops, max_size=3).map(tuple), st.lists(ops, max_size=3).map(tuple))
anything = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
                        | st.text(alphabet="=!<>abc/modvalueputdelete_prefix", max_size=8)
                        | st.binary(max_size=5),
                        lambda inner: st.lists(inner, max_size=4), max_leaves=20)


@settings(max_examples=300)
@given(st.lists(txns, max_size=6))
def test_a_copy_fed_the_changes_equals_the_replica_that_made_them(commands):
    """MVCC.install from the wire rows gives the same state, revisions and events."""
    source, copy = MVCC(), MVCC()
    for txn in commands:
        result, events = source.apply(Txn.decode(txn.encode()))
        assert decode_result(encode_result(result)) == result
        for revision, changes in revisions(event_rows(events)):
            installed = copy.install(revision, changes)
            assert [(e.type, e.kv, e.prev_kv) for e in installed] == \
                [(e.type, e.kv, e.prev_kv) for e in events]
    assert copy.snapshot() == source.snapshot()
    assert copy.events_since(1) == source.events_since(1)


@settings(max_examples=500)
@given(st.lists(st.lists(st.lists(anything, min_size=2, max_size=4), max_size=2), min_size=3,
                max_size=3) | anything)
def test_any_command_bytes_decode_to_an_applicable_txn_or_store_error(shape):
    try:
        txn = Txn.decode(msgpack.packb(shape, use_bin_type=True))
    except StoreError:
        return
    MVCC().apply(txn)  # must not raise


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_random_bytes_are_refused_cleanly(data):
    for decode in (Txn.decode, decode_result):
        try:
            decode(data)
        except StoreError:
            pass
    try:
        revisions(msgpack.unpackb(data, raw=False))
    except StoreError:
        pass
    except (ValueError, msgpack.UnpackException):
        pass  # not msgpack at all: the copy's stream reader treats it as a broken stream


@settings(max_examples=300)
@given(anything)
def test_malformed_change_rows_are_refused_with_store_error(rows):
    try:
        revisions(rows)
    except StoreError:
        pass
