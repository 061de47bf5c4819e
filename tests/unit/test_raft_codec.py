"""Raft messages on the wire: every message survives a round trip, and no bytes a
peer (or an attacker) can send make decode raise anything but CodecError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.raft.codec import CodecError, decode, encode
from nodeagent.raft.messages import Entry, EntryKind, Message, MessageType, SnapshotMeta

ids = st.integers(0, 2**63 - 1)
small = st.integers(0, 1000)
entries = st.builds(Entry, small, small, st.sampled_from(EntryKind), st.binary(max_size=40))
snapshots = st.none() | st.builds(SnapshotMeta, small, small, st.tuples(small, small),
                                  st.tuples(small))
messages = st.builds(Message, st.sampled_from(MessageType), ids, ids, ids, log_term=small,
                     index=small, entries=st.lists(entries, max_size=4).map(tuple),
                     commit=small, reject=st.booleans(), hint=small,
                     context=st.binary(max_size=16), snapshot=snapshots, offset=small,
                     data=st.binary(max_size=64), done=st.booleans())


@given(messages)
def test_every_message_survives_the_wire(m):
    assert decode(encode(m)) == m


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_are_refused_cleanly(data):
    try:
        decode(data)
    except CodecError:
        pass


@settings(max_examples=300)
@given(messages, st.integers(0, 300), st.integers(0, 255))
def test_a_damaged_message_is_refused_or_read_as_some_message(m, at, value):
    raw = bytearray(encode(m))
    raw[at % len(raw)] = value
    try:
        assert isinstance(decode(bytes(raw)), Message)
    except CodecError:
        pass


@pytest.mark.parametrize(("raw", "field"), [
    ([2, 1, 1, 2, 1, 0, 0, [], 0, False, 0, b"", None, 0, b"", False], "version"),
    ([1, 99, 1, 2, 1, 0, 0, [], 0, False, 0, b"", None, 0, b"", False], "type"),
    ([1, 1, -1, 2, 1, 0, 0, [], 0, False, 0, b"", None, 0, b"", False], "src"),
    ([1, 1, 1, 2, 1, 0, 0, [[1, 1, 0, "text"]], 0, False, 0, b"", None, 0, b"", False],
     "entries[0].data"),
    ([1, 1, 1, 2, 1, 0, 0, [], 0, 1, 0, b"", None, 0, b"", False], "reject"),
    ([1, 1, 1, 2, 1, 0, 0, [], 0, False, 0, b"", [1, 1], 0, b"", False], "snapshot"),
])
def test_a_bad_field_is_named(raw, field):
    with pytest.raises(CodecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        decode(msgpack.packb(raw, use_bin_type=True))
