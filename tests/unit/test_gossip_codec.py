"""Gossip packets on the wire: every message survives a round trip, and no bytes a peer (or
an attacker) can send make decode raise anything but DecodeError."""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.gossip.codec import MAX_META_BYTES, VERSION, DecodeError, decode, encode, message_size
from nodeagent.gossip.messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    Member,
    MemberState,
    Nack,
    Ping,
    PushPull,
    Suspect,
    UserEvent,
)

names = st.text(min_size=1, max_size=20)
ints = st.integers(0, 2**63 - 1)
addrs = st.tuples(st.text(min_size=1, max_size=15), st.integers(0, 65535))
messages = st.one_of(
    st.builds(Ping, ints, names, names, addrs),
    st.builds(IndirectPing, ints, names, addrs, names, addrs, st.booleans()),
    st.builds(Ack, ints), st.builds(Nack, ints),
    st.builds(Alive, ints, names, addrs, st.binary(max_size=MAX_META_BYTES)),
    st.builds(Suspect, ints, names, names), st.builds(Dead, ints, names, names),
    st.builds(UserEvent, ints, names, st.binary(max_size=100)))
members = st.builds(Member, names, addrs, ints, st.sampled_from(MemberState),
                    st.binary(max_size=50))


@given(st.lists(messages, max_size=6))
def test_every_compound_packet_survives_the_wire(ms):
    data = encode(ms)
    assert decode(data) == ms
    assert len(data) <= sum(map(message_size, ms)) + 8  # the budget the core counts on


events = st.builds(UserEvent, ints, names, st.binary(max_size=100))


@given(st.lists(members, max_size=5), ints, st.booleans(), st.lists(events, max_size=4))
def test_push_pull_survives_the_wire(ms, ltime, join, evs):
    pp = PushPull(tuple(ms), ltime, join, tuple(evs))
    assert decode(encode(pp)) == [pp]


def test_a_push_pull_without_events_from_an_older_agent_is_read():
    pp = PushPull((), 7, True)
    old = msgpack.packb([VERSION, [[8, [], 7, True]]], use_bin_type=True)
    assert decode(old) == [pp]


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_are_refused_cleanly(data):
    try:
        decode(data)
    except DecodeError:
        pass


shapes = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
                      | st.text(max_size=5) | st.binary(max_size=5),
                      lambda inner: st.lists(inner, max_size=8), max_leaves=30)


@settings(max_examples=500)
@given(st.lists(st.lists(shapes, max_size=8), max_size=3))
def test_well_formed_msgpack_of_the_wrong_shape_is_refused_cleanly(body):
    try:
        decode(msgpack.packb([1, body], use_bin_type=True))
    except DecodeError:
        pass


def test_oversized_metadata_is_refused():
    data = encode([Alive(1, "n", ("h", 1), b"x" * (MAX_META_BYTES + 1))])
    try:
        decode(data)
        raise AssertionError("oversized metadata accepted")
    except DecodeError as exc:
        assert "meta" in str(exc)


def test_a_push_pull_listing_more_members_than_the_cap_is_refused():
    from nodeagent.gossip.codec import MAX_MEMBERS
    many = tuple(Member(f"m{i}", ("10.0.0.1", i)) for i in range(MAX_MEMBERS + 1))
    data = encode(PushPull(many))
    try:
        decode(data)
    except DecodeError as exc:
        assert "members" in str(exc)
    else:
        raise AssertionError("a push-pull over the member cap was taken")


def test_news_of_strangers_stops_at_the_member_table_cap():
    import random

    from nodeagent.gossip.config import GossipConfig
    from nodeagent.gossip.core import Gossip
    core = Gossip(GossipConfig(max_members=8), "me", ("10.0.0.1", 7946), rng=random.Random(1))
    invented = tuple(Member(f"fake{i}", ("10.9.0.1", 1000 + i), 1) for i in range(200))
    core.merge(PushPull(invented), 0)
    assert len(core.members) == 8 and core.refused_members == 193
