"""The same key-value server as _raftkv.py, on PySyncObj (the Raft benchmark's peer).

    python _pysyncobj_kv.py --self 127.0.0.1:P1 --partners 127.0.0.1:P2,127.0.0.1:P3 \
        --client 127.0.0.1:C [--batch] [--heartbeat-ms 100] [--election-ms 1000]

Same client protocol (length-framed msgpack ``["put", key, value]`` -> ``["ok"]`` or
``["err", message, 0]``); a follower forwards the command to the leader itself.
PySyncObj keeps its log in memory (no journal file, so no fsync): the benchmark
compares it with ours run without fsync as well.
"""

from __future__ import annotations

import argparse
import socketserver
import struct

import msgpack
from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.syncobj import SyncObjException

_LEN = struct.Struct("<I")


class KV(SyncObj):
    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_addr, partners, conf)
        self._data: dict[bytes, bytes] = {}

    @replicated
    def put(self, key: bytes, value: bytes) -> None:
        self._data[key] = value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--self", dest="me", required=True)
    ap.add_argument("--partners", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--batch", action="store_true")
    ap.add_argument("--heartbeat-ms", type=float, default=100)
    ap.add_argument("--election-ms", type=float, default=1000)
    a = ap.parse_args()
    conf = SyncObjConf(appendEntriesUseBatch=a.batch, dynamicMembershipChange=False,
                       raftMinTimeout=a.election_ms / 1000, raftMaxTimeout=2 * a.election_ms / 1000,
                       appendEntriesPeriod=a.heartbeat_ms / 1000)
    kv = KV(a.me, a.partners.split(","), conf)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            buf = b""
            while True:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 4:
                    (n,) = _LEN.unpack_from(buf)
                    if len(buf) < 4 + n:
                        break
                    req, buf = msgpack.unpackb(buf[4:4 + n]), buf[4 + n:]
                    if req[0] == "status":
                        out = msgpack.packb(["status", kv._isLeader(), 0])
                        self.request.sendall(_LEN.pack(len(out)) + out)
                        continue
                    try:
                        kv.put(req[1], req[2], sync=True, timeout=req[3] if len(req) > 3 else 3)
                        reply: list[object] = ["ok"]
                    except SyncObjException as exc:
                        reply = ["err", str(exc.errorCode), 0]
                    out = msgpack.packb(reply)
                    self.request.sendall(_LEN.pack(len(out)) + out)

    host, _, port = a.client.rpartition(":")
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer((host, int(port)), Handler) as server:
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
