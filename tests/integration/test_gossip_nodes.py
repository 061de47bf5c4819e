"""Gossip on real sockets (UDP and TCP on loopback, no root): members join through one seed,
a killed one is declared failed, one that leaves is seen leaving, bad packets are dropped
without harm, and an encrypted cluster rotates its key without losing anyone."""

from __future__ import annotations

import base64
import os
import random
import socket

import trio

from nodeagent.gossip.config import local
from nodeagent.gossip.driver import GossipNode
from nodeagent.gossip.keyring import Keyring, KeyringError, decode_key
from nodeagent.gossip.messages import MemberState

ALIVE = MemberState.ALIVE


async def start(nursery: trio.Nursery, name: str, keyring: Keyring | None = None,
                ) -> tuple[GossipNode, trio.CancelScope]:
    node = GossipNode(local(), name, ("127.0.0.1", 0), keyring=keyring,
                      rng=random.Random(name))
    scope = trio.CancelScope()

    async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await node.run(task_status=task_status)
    await nursery.start(run)
    return node, scope


def sees(node: GossipNode, want: dict[str, MemberState]) -> bool:
    have = {m.name: m.state for m in node.members()}
    return all(have.get(k) is v for k, v in want.items())


async def wait(check, timeout_s: float = 20.0) -> None:
    with trio.fail_after(timeout_s):
        while True:
            if check():
                return
            await trio.sleep(0.05)


async def test_members_join_through_one_seed_detect_a_kill_and_see_a_leave():
    async with trio.open_nursery() as nursery:
        nodes = {}
        scopes = {}
        for name in ("n1", "n2", "n3", "n4"):
            nodes[name], scopes[name] = await start(nursery, name)
        events = nodes["n1"].subscribe()
        for name in ("n2", "n3", "n4"):
            nodes[name].join([nodes["n1"].addr])
        everyone = dict.fromkeys(nodes, ALIVE)
        await wait(lambda: all(sees(n, everyone) for n in nodes.values()))

        scopes["n3"].cancel()  # as kill -9: it says nothing
        await wait(lambda: all(sees(nodes[n], {"n3": MemberState.DEAD})
                               for n in ("n1", "n2", "n4")), 30)
        await nodes["n4"].leave()
        scopes["n4"].cancel()
        await wait(lambda: all(sees(nodes[n], {"n4": MemberState.LEFT}) for n in ("n1", "n2")))
        seen = []
        while True:
            try:
                ev = events.receive_nowait()
            except trio.WouldBlock:
                break
            if ev.member is not None:
                seen.append((ev.kind, ev.member.name))
        assert ("failed", "n3") in seen and ("leave", "n4") in seen, seen
        assert ("failed", "n4") not in seen and ("failed", "n2") not in seen, seen

        # Garbage on the UDP port is counted and dropped; the member goes on.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for junk in (b"", b"\x00", os.urandom(300), b"\x92\x01\x91\x93\x00\x01\x02"):
                s.sendto(junk, nodes["n1"].addr)
        await wait(lambda: nodes["n1"].bad_packets >= 3)
        await trio.sleep(1.5)
        assert sees(nodes["n1"], {"n2": ALIVE}) and sees(nodes["n2"], {"n1": ALIVE})
        nursery.cancel_scope.cancel()


async def test_an_encrypted_cluster_refuses_strangers_and_rotates_its_key():
    key_a, key_b = os.urandom(32), os.urandom(16)
    async with trio.open_nursery() as nursery:
        nodes = {}
        for name in ("e1", "e2", "e3"):
            nodes[name], _ = await start(nursery, name, Keyring([key_a]))
        for name in ("e2", "e3"):
            nodes[name].join([nodes["e1"].addr])
        everyone = dict.fromkeys(nodes, ALIVE)
        await wait(lambda: all(sees(n, everyone) for n in nodes.values()))
        failures = nodes["e1"].subscribe()

        # A member without the key cannot join: its plaintext is refused.
        stranger, _ = await start(nursery, "stranger")
        stranger.join([nodes["e1"].addr])
        await wait(lambda: nodes["e1"].bad_packets > 0)
        assert "stranger" not in {m.name for m in nodes["e1"].members()}

        # Rotation as serf does it: install everywhere, use everywhere, remove everywhere.
        for n in nodes.values():
            n.keyring.install(key_b)
        await trio.sleep(1)
        for n in nodes.values():
            n.keyring.use(key_b)
        await trio.sleep(1)
        for n in nodes.values():
            n.keyring.remove(key_a)
        await trio.sleep(3)  # a few probe rounds on the new key alone
        assert all(sees(n, everyone) for n in nodes.values())
        while True:
            try:
                ev = failures.receive_nowait()
            except trio.WouldBlock:
                break
            assert ev.kind not in ("suspect", "failed"), ev  # nobody lost during rotation
        nursery.cancel_scope.cancel()


def test_keys_are_checked():
    assert decode_key(base64.b64encode(b"k" * 16).decode()) == b"k" * 16
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        try:
            decode_key(bad)
            raise AssertionError(f"{bad!r} accepted")
        except KeyringError:
            pass
    ring = Keyring([b"a" * 16])
    try:
        ring.remove(b"a" * 16)
        raise AssertionError("removed the primary key")
    except KeyringError as exc:
        assert "primary" in str(exc)
    sealed = ring.seal(b"hello")
    assert ring.open(sealed) == b"hello"
    try:
        Keyring([b"b" * 16]).open(sealed)
        raise AssertionError("opened with the wrong key")
    except KeyringError:
        pass


async def test_a_push_pull_that_finds_the_queue_full_is_dropped_and_the_agent_goes_on():
    from nodeagent.gossip.messages import Member, PushPull
    async with trio.open_nursery() as nursery:
        a, _ = await start(nursery, "a")
        b, _ = await start(nursery, "b")
        # The core's queue full to the brim (a flood of packets would do the same) ...
        while True:
            try:
                a._send.send_nowait(("call", lambda core: None))
            except trio.WouldBlock:
                break
        # ... when a push-pull arrives (what the TCP handler calls, at once: the core's task
        # would drain the queue while a real connection is set up): it is dropped, not
        # raised out of the connection's task into the agent's nursery.
        assert await a._answer([PushPull((Member("x", ("127.0.0.1", 9)),))]) is None
        assert a.dropped == 1
        b.join([a.addr])  # and once the queue drains, gossip works as before
        await wait(lambda: sees(a, {"b": ALIVE}) and sees(b, {"a": ALIVE}))
        nursery.cancel_scope.cancel()
