"""One gossip member for scripts/bench/gossip.py (not a product part).

    python _gossipnode.py --name m1 --port P [--profile lan]

Prints ``ready`` once bound, then one JSON line per member event
(``{"event": "join", "member": "m2"}``).  A line ``join HOST:PORT`` on stdin makes it
join through that seed -- so the benchmark starts every member first and times only
the gossip, not Python's start-up.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import trio

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from nodeagent.gossip import config as profiles  # noqa: E402
from nodeagent.gossip.driver import GossipNode  # noqa: E402


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--profile", default="lan", choices=["lan", "wan", "local"])
    a = ap.parse_args()
    config = {"lan": profiles.lan, "wan": profiles.wan, "local": profiles.local}[a.profile]()
    node = GossipNode(config, a.name, ("127.0.0.1", a.port), rng=random.Random())
    events = node.subscribe(65536)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        print("ready", flush=True)

        async def commands() -> None:
            stdin = trio.wrap_file(sys.stdin)
            async for line in stdin:
                word, _, arg = line.strip().partition(" ")
                if word == "join":
                    host, _, port = arg.rpartition(":")
                    node.join([(host, int(port))])

        nursery.start_soon(commands)
        async for ev in events:
            if ev.member is not None:
                print(json.dumps({"event": ev.kind, "member": ev.member.name}), flush=True)


if __name__ == "__main__":
    trio.run(main)
