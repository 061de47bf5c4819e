"""Applying service rules with ``nft -f``: the full table at start and after errors,
element-level updates otherwise; a failed transaction leaves the previous rules in force.

``nft -f`` is all-or-nothing, so the kernel never sees half a change.  What we
last applied is remembered; a failed incremental update forces a full render
on the next sync (and that one is tried at once), so rules cannot drift from
the services for long.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping

from netns import libnft
from netns.rules import Applied, ServicePort, render_delta, render_full

__all__ = ["NftRules", "RulesError"]


class RulesError(Exception):
    pass


class NftRules:
    def __init__(self, node_addresses: Iterable[str], netns_name: str | None = None) -> None:
        self.node_addresses = tuple(node_addresses)
        self.netns_name = netns_name
        self.applied: Applied | None = None
        # In-process libnftables when present (no ~15 ms process start per update).
        self._lib = libnft.Nft(netns_name) if libnft.available() else None

    def close(self) -> None:
        if self._lib is not None:
            self._lib.close()
            self._lib = None

    def _nft(self, script: str) -> None:
        if self._lib is not None:
            try:
                self._lib.run(script)
            except libnft.NftError as exc:
                raise RulesError(str(exc)) from exc
            return
        prefix = ["ip", "netns", "exec", self.netns_name] if self.netns_name else []
        p = subprocess.run([*prefix, "nft", "-f", "-"], input=script, capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise RulesError(p.stderr.strip()[:2000] or f"nft exited {p.returncode}")

    def sync(self, ports: list[ServicePort], changed: set[str] | None = None) -> str:
        """Make the kernel's rules match ``ports``; returns "full", "incremental" or "noop".

        ``changed`` (service port keys), when the caller knows it from watch events,
        spares comparing every service.  Raises RulesError when even a full apply
        fails (the old rules stay).
        """
        if self.applied is not None:
            by_key = {sp.key: sp for sp in ports}
            keys = changed if changed is not None else \
                {k for k in by_key.keys() | self.applied.ports.keys()
                 if by_key.get(k) != self.applied.ports.get(k)}
            backup = Applied(dict(self.applied.ports), self.applied.map_max,
                             self.applied.hairpin_refs.copy())
            update = render_delta(self.applied, {k: by_key.get(k) for k in keys})
            if update == "":
                return "noop"
            if update is not None:
                try:
                    self._nft(update)
                except RulesError:
                    self.applied = backup  # fall through to a full apply
                else:
                    self._flush_udp(backup.ports, {k: by_key.get(k) for k in keys})
                    return "incremental"
        before = self.applied.ports if self.applied is not None else {}
        self.applied = None
        self._nft(render_full(ports, self.node_addresses))
        self.applied = Applied.of(ports)
        self._flush_udp(before, {sp.key: sp for sp in ports} |
                        {k: None for k in before if k not in {sp.key for sp in ports}})
        return "full"

    def _flush_udp(self, before: dict[str, ServicePort],
                   after: dict[str, ServicePort | None]) -> None:
        flush_udp(before, after, self.netns_name)


def flush_udp(before: Mapping[str, ServicePort], after: Mapping[str, ServicePort | None],
              netns_name: str | None) -> None:
    """Forget UDP flows to endpoints a service no longer has (both backends call this).

    UDP has no connection to close: without this, a client that keeps its source
    port (DNS resolvers do) keeps reaching the removed endpoint through the
    conntrack entry of its first packet.
    """
    prefix = ["ip", "netns", "exec", netns_name] if netns_name else []
    for key, new in after.items():
        old = before.get(key)
        if old is None or old.protocol != "UDP":
            continue
        gone = {ip for ip, _ in old.endpoints} - {ip for ip, _ in (new.endpoints if new else ())}
        for ip in sorted(gone):
            filters = []
            if old.cluster_ip:
                filters.append(["--orig-dst", str(old.cluster_ip)])
            if old.node_port:
                filters.append(["--orig-port-dst", str(old.node_port)])
            for f in filters:
                # Exit code 1 means "no entry matched": nothing to flush.
                subprocess.run([*prefix, "conntrack", "-D", "-p", "udp", *f, "--dst-nat", str(ip)],
                               capture_output=True, check=False)
