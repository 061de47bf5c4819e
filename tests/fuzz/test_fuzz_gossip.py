"""Gossip packets and push-pulls from anyone: the codec's own tests cover decoding (tests/
unit/test_gossip_codec.py); here whatever decodes is stepped into a core, which never
raises and keeps its table within bounds, and a live agent fed junk over UDP and TCP
keeps its members."""

from __future__ import annotations

import random
import socket

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.framing import frame
from nodeagent.gossip.codec import encode
from nodeagent.gossip.config import GossipConfig, local
from nodeagent.gossip.core import Gossip
from nodeagent.gossip.driver import GossipNode
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

NAMES = st.sampled_from(["me", "a", "b", "c"]) | st.text(min_size=1, max_size=12)
INTS = st.integers(0, 2**63 - 1)
ADDRS = st.tuples(st.sampled_from(["127.0.0.1", "10.0.0.2", "::1", "x"]), st.integers(0, 65535))
MEMBERS = st.builds(Member, NAMES, ADDRS, INTS, st.sampled_from(MemberState),
                    st.binary(max_size=40))
MESSAGES = st.one_of(
    st.builds(Ping, INTS, NAMES, NAMES, ADDRS),
    st.builds(IndirectPing, INTS, NAMES, ADDRS, NAMES, ADDRS, st.booleans()),
    st.builds(Ack, INTS), st.builds(Nack, INTS),
    st.builds(Alive, INTS, NAMES, ADDRS, st.binary(max_size=60)),
    st.builds(Suspect, INTS, NAMES, NAMES), st.builds(Dead, INTS, NAMES, NAMES),
    st.builds(UserEvent, INTS, NAMES, st.binary(max_size=60)),
    st.builds(PushPull, st.lists(MEMBERS, max_size=40).map(tuple), INTS, st.booleans(),
              st.lists(st.builds(UserEvent, INTS, NAMES, st.binary(max_size=20)),
                       max_size=5).map(tuple)))


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(st.tuples(MESSAGES, st.integers(0, 5_000)), max_size=40),
       seed=st.integers(0, 2**32))
def test_a_core_takes_any_messages_without_raising_or_growing_past_its_cap(steps, seed):
    core = Gossip(GossipConfig(max_members=16), "me", ("127.0.0.1", 7946),
                  rng=random.Random(seed))
    now = 0
    for message, dt in steps:
        now += dt
        if isinstance(message, PushPull):
            core.merge(message, now)
        else:
            core.step(message, now)
        core.tick(now)
        core.ready()
        assert len(core.members) <= 16
        assert core.members["me"].state is MemberState.ALIVE  # it refutes what it hears of itself


async def test_a_live_agent_fed_junk_keeps_its_members() -> None:
    rng = random.Random(11)

    async def start(name: str) -> GossipNode:
        node = GossipNode(local(), name, ("127.0.0.1", 0), rng=random.Random(name))
        await nursery.start(node.run)
        return node
    async with trio.open_nursery() as nursery:
        a, b = await start("a"), await start("b")
        b.join([a.addr])
        with trio.fail_after(20):
            while {m.name for m in a.members()} != {"a", "b"}:  # noqa: ASYNC110
                await trio.sleep(0.05)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(500):
            junk = rng.randbytes(rng.randint(0, 1400))
            udp.sendto(rng.choice([junk, b"\x01" + junk, encode([Alive(rng.randint(0, 9),
                                                                       f"fake{rng.random()}",
                                                                       ("10.9.9.9", 1), b"")])]),
                       a.addr)
        udp.close()
        for _ in range(40):
            stream = await trio.open_tcp_stream(*a.addr)
            junk = rng.randbytes(rng.randint(0, 500))
            try:
                await stream.send_all(rng.choice([frame(junk), junk, b"\xff\xff\xff\x7f"]))
            except trio.BrokenResourceError:
                pass
            await stream.aclose()
        await trio.sleep(1.0)
        states = {m.name: m.state for m in a.members()}
        assert states["b"] is MemberState.ALIVE and len(states) <= local().max_members
        assert a.bad_packets > 0
        nursery.cancel_scope.cancel()
