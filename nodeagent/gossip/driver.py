"""The gossip core on real sockets: UDP for packets, TCP (same port) for push-pull and the
fallback ping, one Trio task owning the core.

Everything that reaches the core -- packets, push-pull states, TCP acks, the
agent's calls -- goes through one memory channel to the task that owns it
(``_loop``), which wakes for that or for the core's next deadline, then sends
what ``ready()`` asks.  A packet that does not open or decode is counted and
dropped (``bad_packets``); nothing a peer sends can end the receive loop.

TCP exchanges are one request, one answer, each a length-framed packet (sealed
like UDP ones when a keyring is set): a ``PushPull`` is answered with ours, a
``Ping`` with an ``Ack``.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable

import trio

from nodeagent.framing import FrameTooLarge, frame, read_frames
from nodeagent.gossip.codec import DecodeError, decode, encode
from nodeagent.gossip.config import GossipConfig
from nodeagent.gossip.core import Gossip
from nodeagent.gossip.keyring import ENCRYPTED_VERSION, Keyring, KeyringError
from nodeagent.gossip.messages import Ack, Address, Member, MemberEvent, Ping, PushPull

__all__ = ["GossipNode"]

log = logging.getLogger("nodeagent.gossip")

MAX_TCP_BYTES = 4 * 1024 * 1024  # a push-pull of codec.MAX_MEMBERS members fits well
TCP_TIMEOUT_S = 10.0
MAX_TCP_CONNECTIONS = 64  # served at once; more are closed at once (a flood costs nothing)
LEAVE_TIMEOUT_S = 3.0


def _now_ms() -> int:
    return int(trio.current_time() * 1000)


class GossipNode:
    def __init__(self, config: GossipConfig, name: str, bind: Address, *,
                 advertise: Address | None = None, meta: bytes = b"",
                 keyring: Keyring | None = None, rng: random.Random | None = None) -> None:
        self.config, self.name, self.bind = config, name, bind
        self.advertise = advertise
        self.meta = meta
        self.keyring = keyring
        self.rng = rng or random.Random()
        self.core: Gossip | None = None
        self.addr: Address = bind
        self.bad_packets = 0
        self._send, self._recv = trio.open_memory_channel[tuple](4096)
        self.dropped = 0  # items not queued for the core: the queue was full
        self._tcp_slots = trio.Semaphore(MAX_TCP_CONNECTIONS)
        self._subscribers: list[trio.MemorySendChannel[MemberEvent]] = []
        self._nursery: trio.Nursery | None = None
        self._sock: trio.socket.SocketType | None = None
        self._changed = trio.Event()

    # --- the agent's side -------------------------------------------------------------------

    def members(self) -> list[Member]:
        return [] if self.core is None else list(self.core.members.values())

    def subscribe(self, buffer: int = 1024) -> trio.MemoryReceiveChannel[MemberEvent]:
        """Member events from now on (join, update, suspect, alive, failed, leave, user)."""
        send, recv = trio.open_memory_channel[MemberEvent](buffer)
        self._subscribers.append(send)
        return recv

    def join(self, seeds: list[Address]) -> None:
        """Exchange state with the seeds; each is retried until one answers."""
        self._send.send_nowait(("call", lambda core: core.join(seeds)))

    def set_meta(self, meta: bytes) -> None:
        self._send.send_nowait(("call", lambda core: core.set_meta(meta)))

    def user_event(self, name: str, payload: bytes = b"") -> None:
        self._send.send_nowait(("call", lambda core: core.user_event(name, payload)))

    async def leave(self, timeout_s: float = LEAVE_TIMEOUT_S) -> None:
        """Tell the others we leave on purpose and wait (a little) until it went out."""
        self._send.send_nowait(("call", lambda core: core.leave()))
        with trio.move_on_after(timeout_s):
            while self.core is None or not self.core.leaving or \
                    not self.core.left_broadcast_done():
                await self._changed.wait()

    # --- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED) -> None:
        sock, listeners = await self._bind()
        with sock:
            port = sock.getsockname()[1]
            self.addr = self.advertise or (self.bind[0], port)
            self.core = Gossip(self.config, self.name, self.addr, rng=self.rng, meta=self.meta,
                               now_ms=_now_ms())
            self._sock = sock
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._receive_udp, sock)
                nursery.start_soon(trio.serve_listeners, self._serve_tcp, listeners)
                log.info("gossip: %s on %s:%d (udp and tcp)%s", self.name, *self.addr,
                         ", encrypted" if self.keyring else "")
                task_status.started(self.addr)
                await self._loop()

    async def _bind(self) -> tuple[trio.socket.SocketType, list[trio.SocketListener]]:
        """UDP and TCP on the same port.  With port 0 the kernel picks a free UDP port,
        whose TCP twin may be taken (by any outgoing connection): then pick again, as
        memberlist does."""
        for attempt in range(20):
            sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                await sock.bind(self.bind)
                port = sock.getsockname()[1]
                return sock, await trio.open_tcp_listeners(port, host=self.bind[0])
            except OSError:
                sock.close()
                if self.bind[1] != 0 or attempt == 19:
                    raise
        raise AssertionError("unreachable")

    async def _loop(self) -> None:
        core = self.core
        assert core is not None
        while True:
            with trio.move_on_at(core.next_deadline_ms() / 1000):
                self._handle(core, await self._recv.receive())
                while True:
                    try:
                        self._handle(core, self._recv.receive_nowait())
                    except trio.WouldBlock:
                        break
            core.tick(_now_ms())
            await self._flush(core)

    def _handle(self, core: Gossip, item: tuple) -> None:
        kind = item[0]
        now = _now_ms()
        if kind == "msgs":
            for m in item[1]:
                if not isinstance(m, PushPull):
                    core.step(m, now)
        elif kind == "merge":
            core.merge(item[1], now, joined=item[2])
        elif kind == "exchange":
            core.merge(item[1], now)
            item[2].send_nowait(core.local_state())
        elif kind == "tcp_ack":
            core.ack_over_tcp(item[1])
        elif kind == "call":
            item[1](core)

    async def _flush(self, core: Gossip) -> None:
        rd = core.ready()
        assert self._sock is not None and self._nursery is not None
        for addr, messages in rd.packets:
            try:
                await self._sock.sendto(self._seal(encode(messages)), addr)
            except OSError as exc:  # unreachable, no route: the probe will tell
                log.debug("gossip: send to %s:%d failed: %s", *addr, exc)
        for addr, ping in rd.tcp_pings:
            self._nursery.start_soon(self._tcp_ping, addr, ping)
        for addr, state in rd.push_pulls:
            self._nursery.start_soon(self._push_pull, addr, state)
        for ev in rd.events:
            if ev.member is not None:
                log.info("gossip: %s %s (%s:%d, incarnation %d)", ev.kind, ev.member.name,
                         *ev.member.addr, ev.member.incarnation)
            for send in list(self._subscribers):
                try:
                    send.send_nowait(ev)
                except trio.WouldBlock:
                    log.warning("gossip: a slow subscriber missed a %s event", ev.kind)
                except trio.BrokenResourceError:
                    self._subscribers.remove(send)
        self._changed.set()
        self._changed = trio.Event()

    # --- packets ----------------------------------------------------------------------------

    def _seal(self, data: bytes) -> bytes:
        return self.keyring.seal(data) if self.keyring else data

    def _open(self, data: bytes) -> list:
        """Raises KeyringError or DecodeError."""
        if self.keyring is not None:
            data = self.keyring.open(data)
        elif data[:1] == bytes([ENCRYPTED_VERSION]):
            raise KeyringError("an encrypted packet, and no keyring here")
        return decode(data)

    def _bad(self, source: object, exc: Exception) -> None:
        self.bad_packets += 1
        if self.bad_packets == 1 or self.bad_packets % 100 == 0:
            log.warning("gossip: dropped a bad packet from %s: %s (%d so far)", source, exc,
                        self.bad_packets)

    async def _receive_udp(self, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data, source = await sock.recvfrom(65536)
            except OSError:  # ICMP errors surface here on Linux: not ours to fail on
                continue
            try:
                messages = self._open(data)
            except (KeyringError, DecodeError) as exc:
                self._bad(source, exc)
                continue
            self._offer(("msgs", messages))  # overloaded: gossip copes with a lost packet

    def _offer(self, item: tuple) -> bool:
        """Queue ``item`` for the core's task; False (counted) when the queue is full: a
        flood of packets or connections must not raise out of a receiving task."""
        try:
            self._send.send_nowait(item)
            return True
        except trio.WouldBlock:
            self.dropped += 1
            return False

    async def _serve_tcp(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                self._tcp_slots.acquire_nowait()
            except trio.WouldBlock:
                return  # too many at once: this one is closed unanswered
            try:
                await self._serve_tcp_exchange(stream)
            finally:
                self._tcp_slots.release()

    async def _serve_tcp_exchange(self, stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(TCP_TIMEOUT_S):
                async for data in read_frames(stream, MAX_TCP_BYTES):
                    answer = await self._answer(self._open(data))
                    if answer is not None:
                        await stream.send_all(frame(self._seal(answer)))
                    return
        except (KeyringError, DecodeError, FrameTooLarge) as exc:
            self._bad(stream.socket.getpeername(), exc)
        except (trio.BrokenResourceError, OSError):
            return

    async def _answer(self, messages: list) -> bytes | None:
        if len(messages) == 1 and isinstance(messages[0], PushPull):
            # Merged by the core's task first, answered with the state after: if the asker
            # had us dead, the answer carries our refutation (core.merge).
            send, recv = trio.open_memory_channel[PushPull](1)
            if not self._offer(("exchange", messages[0], send)):
                return None  # overloaded: the asker tries again at its next push-pull
            return encode(await recv.receive())
        if len(messages) == 1 and isinstance(messages[0], Ping):
            ping = messages[0]
            return encode([Ack(ping.seq)]) if ping.target == self.name else None
        return None

    async def _exchange(self, addr: Address, request: bytes, timeout_s: float) -> list | None:
        with trio.move_on_after(timeout_s):
            try:
                stream = await trio.open_tcp_stream(*addr)
                async with stream:
                    await stream.send_all(frame(self._seal(request)))
                    async for data in read_frames(stream, MAX_TCP_BYTES):
                        return self._open(data)
            except (OSError, trio.BrokenResourceError, FrameTooLarge) as exc:
                log.debug("gossip: tcp to %s:%d: %s", *addr, exc)
            except (KeyringError, DecodeError) as exc:
                self._bad(addr, exc)
        return None

    async def _tcp_ping(self, addr: Address, ping: Ping) -> None:
        answer = await self._exchange(addr, encode([ping]),
                                      self.config.probe_interval_ms / 1000)
        if answer and isinstance(answer[0], Ack) and answer[0].seq == ping.seq:
            self._offer(("tcp_ack", ping.seq))

    async def _push_pull(self, addr: Address, state: PushPull) -> None:
        answer = await self._exchange(addr, encode(state), TCP_TIMEOUT_S)
        if answer and isinstance(answer[0], PushPull):
            self._offer(("merge", answer[0], state.join))
            if state.join:
                log.info("gossip: joined through %s:%d", *addr)
            return
        if state.join:  # retry_join: until one seed answers
            log.info("gossip: no answer from seed %s:%d; retrying", *addr)
            await trio.sleep(1.0 + self.rng.random())
            self._offer(("call", self._rejoin(addr)))

    def _rejoin(self, addr: Address) -> Callable[[Gossip], None]:
        def call(core: Gossip) -> None:
            if core.alive_count() <= 1:  # nobody else yet: keep trying this seed
                core.join([addr])
        return call
