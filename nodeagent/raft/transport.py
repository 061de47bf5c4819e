"""Raft messages between servers: msgpack frames over TCP, one connection per peer.

Raft tolerates loss, duplication and reordering, so the transport is allowed to
be simple and never blocks the core: ``send`` queues a message for its peer and
drops it when that peer's queue is full (a slow or dead peer costs memory only up
to the queue); each peer's sender connects (with back-off), writes whatever is
queued in one go, and on any error drops its connection and reconnects.  Frames
are ``u32 length | message`` and a frame over ``max_frame_bytes`` closes the
connection that sent it; a message that does not decode is counted, logged and
dropped.

With ``tls`` (every agent but an --insecure-http one) connections are mutual TLS with
the cluster's CA on both sides, and each end knows which server the other is from its
certificate (``PeerTls.identify``): a connection from anything but a Raft server of
this cluster is closed after the handshake, and a message whose ``src`` is not the
server its connection's certificate names is dropped -- one forged AppendEntries once
made a leader follow a server that does not exist and commit the forger's write.  A
sender checks the same of the server it dialled, so a peer's address taken over by
another server gets nothing.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import trio

from nodeagent.backoff import Backoff
from nodeagent.framing import FrameTooLarge, frame, read_frames
from nodeagent.logs import ThrottledLog
from nodeagent.raft.codec import CodecError, decode, encode
from nodeagent.raft.messages import Message

__all__ = ["PeerTls", "Transport"]

log = logging.getLogger("nodeagent.raft")
_throttled = ThrottledLog(log)  # a peer (or anyone) can send these as fast as it likes
HANDSHAKE_S = 10.0  # a connection that has not finished its handshake by then is dropped


@dataclass(frozen=True)
class PeerTls:
    """Mutual TLS between Raft servers.  The contexts are asked for at each connection
    (a renewed certificate is used from the next one on)."""
    server: Callable[[], ssl.SSLContext]
    client: Callable[[], ssl.SSLContext]
    identify: Callable[[bytes], int | None]
    """The Raft id a peer's certificate (DER) names; None: not a server of this cluster."""


class Transport:
    def __init__(self, node_id: int, listen: tuple[str, int],
                 peers: dict[int, tuple[str, int]], deliver: Callable[[Message], None], *,
                 queue_len: int = 4096, max_frame_bytes: int = 16 * 1024 * 1024,
                 tls: PeerTls | None = None) -> None:
        self.id, self.listen, self.deliver = node_id, listen, deliver
        self.peers = dict(peers)
        self.queue_len, self.max_frame = queue_len, max_frame_bytes
        self.tls = tls
        self.refused = 0  # connections refused after the handshake: not a server of ours
        self.forged = 0  # messages dropped: from another server than their connection's
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

    async def _connect(self, peer: int, address: tuple[str, int]) -> trio.abc.Stream:
        stream: trio.abc.Stream = await trio.open_tcp_stream(*address)
        if self.tls is None:
            return stream
        tls = trio.SSLStream(stream, self.tls.client(), server_hostname=address[0])
        try:
            with trio.fail_after(HANDSHAKE_S):
                await tls.do_handshake()
            who = self.tls.identify(tls.getpeercert(binary_form=True) or b"")
        except (trio.BrokenResourceError, trio.TooSlowError, ValueError) as exc:
            await trio.aclose_forcefully(tls)
            raise OSError(f"TLS with server {peer} at {address[0]}:{address[1]}: {exc}") from exc
        if who != peer:
            await trio.aclose_forcefully(tls)
            raise OSError(f"{address[0]}:{address[1]} is {f'server {who}' if who else 'no server'}"
                          f", not server {peer}")
        return tls

    async def _sender(self, peer: int) -> None:
        receive = self._queues[peer][1]
        backoff = Backoff(0.05, 1.0)
        while True:
            try:
                stream = await self._connect(peer, self.peers[peer])
            except OSError as exc:
                _throttled.log(f"connect:{peer}", "raft: cannot reach server %d: %s", peer, exc)
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

    async def _accept(self, stream: trio.abc.Stream) -> tuple[trio.abc.Stream, int | None]:
        """The connection, and the server its certificate names (None without TLS);
        raises BrokenResourceError for one that is no server of this cluster."""
        if self.tls is None:
            return stream, None
        tls = trio.SSLStream(stream, self.tls.server(), server_side=True)
        try:
            with trio.fail_after(HANDSHAKE_S):
                await tls.do_handshake()
            sender = self.tls.identify(tls.getpeercert(binary_form=True) or b"")
        except (trio.BrokenResourceError, trio.TooSlowError, ValueError) as exc:
            sender = None
            reason = f"handshake failed: {exc}"
        else:
            reason = "its certificate names no Raft server"
        if sender is None:
            self.refused += 1
            _throttled.log("refused", "raft: refused a connection (%s; %d so far)", reason,
                           self.refused)
            await trio.aclose_forcefully(tls)
            raise trio.BrokenResourceError(reason)
        return tls, sender

    async def _serve(self, stream: trio.abc.Stream) -> None:
        try:
            stream, sender = await self._accept(stream)
        except (trio.BrokenResourceError, OSError):
            return
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
                    if sender is not None and m.src != sender:
                        self.forged += 1
                        _throttled.log("forged", "raft: dropped a message from server %d on "
                                       "server %d's connection (%d so far)", m.src, sender,
                                       self.forged)
                        continue
                    if m.dst == self.id:
                        self.deliver(m)
        except FrameTooLarge as exc:
            _throttled.log("frame", "raft: %s; closing that connection", exc)
        except (trio.BrokenResourceError, OSError):
            return
