"""Pod IP allocation from a node's pod CIDR, persisted so no address is handed out twice.

The allocation table lives in one JSON file written atomically (temp file,
fsync, rename, directory fsync) before an address is returned, and every
change happens under an exclusive ``flock``, so two processes cannot hand out
the same address and a crash leaves either the old or the new table.  An
address allocated just before a crash, whose pod never came up, is a leak;
:meth:`Ipam.reconcile` gives back every address whose owner is not live.
Addresses are handed out round-robin after the last one, so a freed address
is not reused at once (a late packet for the old pod does not reach a new one).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["Ipam", "IpamError"]


class IpamError(Exception):
    pass


class Ipam:
    def __init__(self, directory: str, cidr: str) -> None:
        try:
            self.network = ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise IpamError(f"pod CIDR {cidr!r}: {exc}") from exc
        if self.network.num_addresses < 4:
            raise IpamError(f"pod CIDR {cidr} is too small")
        self.directory = directory
        self.path = os.path.join(directory, "allocations.json")
        os.makedirs(directory, exist_ok=True)
        # .1 is the gateway on the node's bridge; network and broadcast are not hosts.
        self.gateway = self.network.network_address + 1

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(os.path.join(self.directory, "allocations.lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                self._write(state)

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path) as f:
                state = json.load(f)
        except FileNotFoundError:
            return {"cidr": str(self.network), "last": None, "allocations": {}}
        except ValueError as exc:
            raise IpamError(f"{self.path} is damaged: {exc}") from exc
        if state.get("cidr") != str(self.network):
            raise IpamError(f"{self.path} holds allocations for {state.get('cidr')}, not "
                            f"{self.network}; release them before changing the pod CIDR")
        return state

    def _write(self, state: dict[str, Any]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _hosts(self) -> list[str]:
        return [str(h) for h in self.network.hosts() if h != self.gateway]

    def allocate(self, owner: str) -> str:
        """The owner's address (the same one if it already has one)."""
        with self._locked() as state:
            allocations: dict[str, str] = state["allocations"]
            for ip, who in allocations.items():
                if who == owner:
                    return ip
            # Round-robin from the last one handed out, by integer offsets: listing the
            # network's hosts as strings first cost more than the rest of a pod's sandbox.
            first = int(self.network.network_address) + 1
            count = self.network.num_addresses - 2
            last = state["last"]
            start = int(ipaddress.ip_address(last)) - first + 1 if isinstance(last, str) and \
                ipaddress.ip_address(last) in self.network else 0
            for i in range(count):
                addr = ipaddress.ip_address(first + (start + i) % count)
                ip = str(addr)
                if addr != self.gateway and ip not in allocations:
                    allocations[ip] = owner
                    state["last"] = ip
                    return ip
        raise IpamError(f"no free address left in {self.network} "
                        f"({len(self._hosts())} in use)")

    def release(self, owner: str) -> str | None:
        with self._locked() as state:
            allocations: dict[str, str] = state["allocations"]
            for ip, who in list(allocations.items()):
                if who == owner:
                    del allocations[ip]
                    return ip
        return None

    def allocations(self) -> dict[str, str]:
        with self._locked() as state:
            allocations: dict[str, str] = state["allocations"]
            return dict(allocations)

    def reconcile(self, live_owners: Iterable[str]) -> list[str]:
        """Release every address whose owner is not in ``live_owners``; returns them."""
        live = set(live_owners)
        freed = []
        with self._locked() as state:
            allocations: dict[str, str] = state["allocations"]
            for ip, who in list(allocations.items()):
                if who not in live:
                    del allocations[ip]
                    freed.append(ip)
        return freed
