"""Raft frames and entries from anyone: any bytes decode to a message or a CodecError,
any committed bytes apply as a transaction or a rejection the same on every server, and
a server fed garbage frames over TCP keeps serving."""

from __future__ import annotations

import random

import msgpack
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.framing import frame
from nodeagent.raft.codec import CodecError, decode, encode
from nodeagent.raft.messages import Entry, EntryKind, Message, MessageType
from nodeagent.store.base import apply_command
from nodeagent.store.errors import StoreUnavailableError, TxnRejectedError
from nodeagent.store.mvcc import MVCC, Op, OpKind, Txn, TxnResult
from nodeagent.store.raftstore import RaftStore

MSGPACK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.binary(max_size=40),
              st.text(max_size=20), st.floats()),
    lambda inner: st.one_of(st.lists(inner, max_size=6),
                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=20)


def _message(draw_int: int, data: bytes) -> bytes:
    m = Message(MessageType.APPEND, draw_int % 5 + 1, 1, draw_int, log_term=1, index=draw_int,
                entries=(Entry(1, 1, EntryKind.NORMAL, data),))
    return encode(m)


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(st.binary(max_size=300), MSGPACK.map(msgpack.packb),
                     st.builds(_message, st.integers(0, 2**40), st.binary(max_size=50))
                     .flatmap(lambda b: st.sampled_from([b, b[:-1], b[:len(b) // 2],
                                                         b + b"\x00", b[1:]]))))
def test_any_frame_decodes_to_a_message_or_a_codec_error(raw: bytes) -> None:
    try:
        decode(raw)
    except CodecError:
        pass


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(st.binary(max_size=300), MSGPACK.map(msgpack.packb)))
def test_any_committed_bytes_apply_or_are_rejected_alike(raw: bytes) -> None:
    a, b = MVCC(), MVCC()
    ra, _ = apply_command(a, raw)
    rb, _ = apply_command(b, raw)
    assert isinstance(ra, TxnResult | TxnRejectedError)
    assert type(ra) is type(rb) and a.snapshot() == b.snapshot()


async def _put(store: RaftStore, key: str) -> TxnResult:
    with trio.fail_after(20):
        while True:
            try:
                return await store.txn(Txn((), (Op(OpKind.PUT, key, b"v"),)))
            except StoreUnavailableError:
                await trio.sleep(0.05)


async def test_a_server_fed_garbage_frames_keeps_its_cluster(tmp_path) -> None:
    import socket
    ids = (1, 2, 3)
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in ids]
    ports = [s.getsockname()[1] for s in socks]
    for sock in socks:
        sock.close()
    addrs = {i: ("127.0.0.1", p) for i, p in zip(ids, ports, strict=True)}
    stores = {i: RaftStore(str(tmp_path / f"s{i}"), node_id=i, listen=addrs[i],
                           peers={p: a for p, a in addrs.items() if p != i}, voters=ids,
                           tick_s=0.02, rng=random.Random(i)) for i in ids}
    rng = random.Random(7)
    async with trio.open_nursery() as nursery:
        for s in stores.values():
            await nursery.start(s.run)
        await _put(stores[1], "/k/before")
        for target in ids:
            for _ in range(50):
                stream = await trio.open_tcp_stream(*addrs[target])
                junk = rng.randbytes(rng.randint(0, 200))
                payload = rng.choice([frame(junk), junk, frame(_message(rng.randint(0, 99), junk)),
                                      b"\xff\xff\xff\xff" + junk])  # a 4 GiB frame claimed
                try:
                    await stream.send_all(payload)
                except trio.BrokenResourceError:
                    pass
                await stream.aclose()
        last = await _put(stores[2], "/k/after")
        for s in stores.values():
            await s.read_barrier()
            assert s.revision == last.revision
        nursery.cancel_scope.cancel()
