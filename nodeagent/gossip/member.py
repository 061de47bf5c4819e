"""A bare gossip member, as ``serf agent`` is: for benchmarks, lab tests and poking at gossip.

    python -m nodeagent.gossip.member --name m1 --bind HOST:PORT [--profile lan]
                                      [--key BASE64] [--join HOST:PORT]

Prints ``ready`` once bound, then one JSON line per member event
(``{"event": "join", "member": "m2", "t": <monotonic s>}``).  Reads commands, one per
line, on stdin: ``join HOST:PORT``, ``install|use|remove BASE64`` (the keyring),
``leave``, ``members`` (prints ``{"members": {name: state}}``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import trio

from nodeagent.gossip import config as profiles
from nodeagent.gossip.driver import GossipNode
from nodeagent.gossip.keyring import Keyring, KeyringError, decode_key
from nodeagent.hostport import parse_host_port


def _say(obj: object) -> None:
    print(json.dumps(obj), flush=True)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--bind", required=True)
    ap.add_argument("--profile", default="lan", choices=list(profiles.PROFILES))
    ap.add_argument("--key", default="")
    ap.add_argument("--join", default="")
    a = ap.parse_args()
    bind = parse_host_port(a.bind)
    if bind is None:
        ap.error(f"--bind: {a.bind!r} is not HOST:PORT")
    config = profiles.PROFILES[a.profile]()
    node = GossipNode(config, a.name, bind, rng=random.Random(),
                      keyring=Keyring([decode_key(a.key)]) if a.key else None)
    events = node.subscribe(65536)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        print("ready", flush=True)
        if a.join:
            seed = parse_host_port(a.join)
            if seed:
                node.join([seed])

        async def commands() -> None:
            async for line in trio.wrap_file(sys.stdin):
                word, _, arg = line.strip().partition(" ")
                if word == "join" and (seed := parse_host_port(arg)):
                    node.join([seed])
                elif word in ("install", "use", "remove") and node.keyring is not None:
                    try:
                        getattr(node.keyring, word)(decode_key(arg))
                    except KeyringError as exc:
                        _say({"error": str(exc)})
                elif word == "leave":
                    await node.leave()
                    nursery.cancel_scope.cancel()
                elif word == "members":
                    _say({"members": {m.name: m.state.name.lower() for m in node.members()}})

        nursery.start_soon(commands)
        async for ev in events:
            if ev.member is not None:
                _say({"event": ev.kind, "member": ev.member.name, "t": time.monotonic()})


if __name__ == "__main__":
    trio.run(main)
