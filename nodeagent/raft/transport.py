"""Raft messages between servers: msgpack frames over TCP, one connection per peer.

Raft tolerates loss, duplication and reordering, so the transport is allowed to
be simple and never blocks the core: ``send`` queues a message for its peer and
drops it when that peer's queue is full (a slow or dead peer costs memory only up
to the queue); each peer's sender connects (with back-off), writes whatever is
queued in one go, and on any error drops its connection and reconnects.  Frames
are ``u32 length | message`` and a frame over ``max_frame_bytes`` closes the
connection that sent it; a message that does not decode is counted, logged and
dropped.  Connections may be wrapped in TLS (``ssl_context``): the setup is in
one place for the security issue to fill in.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Callable

import trio

from nodeagent.backoff import Backoff
from nodeagent.framing import FrameTooLarge, frame, read_frames
from nodeagent.logs import ThrottledLog
from nodeagent.raft.codec import CodecError, decode, encode
from nodeagent.raft.messages import Message

__all__ = ["Transport"]

log = logging.getLogger("nodeagent.raft")
_throttled = ThrottledLog(log)  # a peer (or anyone) can send these as fast as it likes


class Transport:
    def __init__(self, node_id: int, listen: tuple[str, int],
                 peers: dict[int, tuple[str, int]], deliver: Callable[[Message], None], *,
                 queue_len: int = 4096, max_frame_bytes: int = 16 * 1024 * 1024,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.id, self.listen, self.deliver = node_id, listen, deliver
        self.peers = dict(peers)
        self.queue_len, self.max_frame = queue_len, max_frame_bytes
        self.ssl_context = ssl_context
        self._queues: dict[int, tuple[trio.MemorySendChannel[bytes],
                                      trio.MemoryReceiveChannel[bytes]]] = {}
        self.dropped = 0  # messages not sent: queue full or peer unknown
        self.bad_frames = 0  # frames received that did not decode
        self._nursery: trio.Nursery | None = None
        self.port = listen[1]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            listeners = await nursery.start(functools.partial(
                trio.serve_tcp, self._serve, self.listen[1], host=self.listen[0]))
            self.port = listeners[0].socket.getsockname()[1]
            for peer in self.peers:
                self._start_peer(peer)
            task_status.started()

    def set_peer(self, peer: int, address: tuple[str, int]) -> None:
        """A server joined (or moved): its messages go to ``address``."""
        self.peers[peer] = address
        if self._nursery is not None and peer not in self._queues:
            self._start_peer(peer)

    def send(self, m: Message) -> None:
        q = self._queues.get(m.dst)
        if q is None:
            self.dropped += 1
            return
        try:
            q[0].send_nowait(encode(m))
        except trio.WouldBlock:
            self.dropped += 1

    # --- sending ----------------------------------------------------------------------------

    def _start_peer(self, peer: int) -> None:
        assert self._nursery is not None
        self._queues[peer] = trio.open_memory_channel(self.queue_len)
        self._nursery.start_soon(self._sender, peer)

    async def _connect(self, address: tuple[str, int]) -> trio.abc.Stream:
        stream: trio.abc.Stream = await trio.open_tcp_stream(*address)
        if self.ssl_context is not None:
            stream = trio.SSLStream(stream, self.ssl_context, server_hostname=address[0])
        return stream

    async def _sender(self, peer: int) -> None:
        receive = self._queues[peer][1]
        backoff = Backoff(0.05, 1.0)
        while True:
            try:
                stream = await self._connect(self.peers[peer])
            except OSError:
                await trio.sleep(backoff.next())
                continue
            backoff.reset()
            try:
                async with stream:
                    while True:
                        frames = [await receive.receive()]
                        while len(frames) < 256:  # everything queued, in one write
                            try:
                                frames.append(receive.receive_nowait())
                            except trio.WouldBlock:
                                break
                        await stream.send_all(b"".join(frame(f) for f in frames))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("raft: connection to %d lost: %s", peer, exc)

    # --- receiving --------------------------------------------------------------------------

    async def _serve(self, stream: trio.abc.Stream) -> None:
        if self.ssl_context is not None:
            stream = trio.SSLStream(stream, self.ssl_context, server_side=True)
        try:
            async with stream:
                async for frame in read_frames(stream, self.max_frame):
                    try:
                        m = decode(frame)
                    except CodecError as exc:
                        self.bad_frames += 1
                        _throttled.log("codec", "raft: dropped a message that does not decode: "
                                       "%s (%d so far)", exc, self.bad_frames)
                        continue
                    if m.dst == self.id:
                        self.deliver(m)
        except FrameTooLarge as exc:
            _throttled.log("frame", "raft: %s; closing that connection", exc)
        except (trio.BrokenResourceError, OSError):
            return
