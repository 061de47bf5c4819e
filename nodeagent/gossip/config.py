"""Gossip settings, as memberlist's Config: each field says its unit, formula and trade-off.

Use a profile -- ``lan()`` (memberlist's DefaultLANConfig, what serf runs), ``wan()``,
``local()`` (loopback and tests) or ``lab()`` (a few nodes on one bridge) -- and
``dataclasses.replace`` what differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from nodeagent.errors import ConfigError

__all__ = ["PROFILES", "GossipConfig", "lab", "lan", "local", "wan"]


@dataclass(frozen=True, kw_only=True)
class GossipConfig:
    probe_interval_ms: int = 1000
    """A member probes one other (round robin over a shuffled list) this often.  Lower
    detects failures sooner, costs more packets: N members send about N pings a period."""

    probe_timeout_ms: int = 500
    """Wait this long for a direct ack before asking others to ping (indirect probe).
    Should be above the network's 99th percentile round trip."""

    indirect_checks: int = 3
    """Members asked to ping a target that did not answer (SWIM's k).  More: fewer false
    suspicions from one bad link, more packets."""

    suspicion_mult: int = 4
    """Suspicion lasts at least suspicion_mult * max(1, log10(N)) * probe_interval before a
    suspect is declared dead (memberlist's formula): time for it to refute."""

    suspicion_max_timeout_mult: int = 6
    """Lifeguard: a suspicion nobody confirms lasts up to this many times the minimum;
    each independent confirmation shortens it towards the minimum."""

    retransmit_mult: int = 4
    """A membership update rides on retransmit_mult * ceil(log10(N + 1)) packets before
    it is dropped from the queue: enough for it to reach everyone with high probability."""

    gossip_interval_ms: int = 200
    """Updates queued are sent to gossip_nodes random members this often (besides riding
    on probes).  Lower spreads news faster, costs packets."""

    gossip_nodes: int = 3
    """Members each gossip round goes to."""

    gossip_to_the_dead_ms: int = 30_000
    """Keep gossiping to a member this long after it died, so a member that was only cut
    off hears it was declared dead and refutes."""

    push_pull_interval_ms: int = 30_000
    """Full state exchange with one random member over TCP this often (scaled up past 32
    members, as memberlist's pushPullScale); repairs whatever gossip missed.  0: never."""

    reconnect_interval_ms: int = 30_000
    """Push-pull with one member declared failed this often (serf's reconnect_interval):
    how the two sides of a healed partition find each other again.  0: never."""

    awareness_max_multiplier: int = 8
    """Lifeguard's local health: a member that misses nacks or has to refute suspicions
    of itself is probably the slow one, and stretches its probe interval and timeout up
    to this many times, so it accuses others less."""

    udp_buffer_bytes: int = 1400
    """Largest UDP packet sent: under a 1500-byte MTU with room for IP, UDP and
    encryption headers."""

    reap_after_ms: int = 24 * 3600 * 1000
    """A dead or departed member is forgotten this long after (serf's reconnect_timeout):
    until then 'members' lists it."""

    user_event_buffer: int = 256
    """User events remembered (to drop duplicates and for push-pull catch-up)."""

    max_members: int = 1024
    """Members tracked at most, dead ones included.  News of a new member past it is
    dropped (and counted), so one forged packet or push-pull cannot grow the table
    without bound; nodeagent is for clusters of tens to hundreds of nodes.  A push-pull
    listing more members than this is refused whole (codec.MAX_MEMBERS caps the wire)."""

    def __post_init__(self) -> None:
        for name in ("probe_interval_ms", "probe_timeout_ms", "gossip_interval_ms",
                     "suspicion_mult", "suspicion_max_timeout_mult", "retransmit_mult",
                     "awareness_max_multiplier", "user_event_buffer", "max_members"):
            if getattr(self, name) < 1:
                raise ConfigError(name, "must be at least 1")
        if self.probe_timeout_ms >= self.probe_interval_ms:
            raise ConfigError("probe_timeout_ms", "must be below probe_interval_ms")
        if self.indirect_checks < 0 or self.gossip_nodes < 1:
            raise ConfigError("indirect_checks" if self.indirect_checks < 0 else
                              "gossip_nodes", "out of range")
        if self.udp_buffer_bytes < 512:
            raise ConfigError("udp_buffer_bytes", "must be at least 512")
        if self.push_pull_interval_ms < 0 or self.reconnect_interval_ms < 0:
            raise ConfigError("push_pull_interval_ms" if self.push_pull_interval_ms < 0 else
                              "reconnect_interval_ms", "must not be negative")

    def suspicion_timeout_ms(self, members: int) -> int:
        """The minimum suspicion: suspicion_mult * max(1, log10(N)) * probe_interval."""
        return int(self.suspicion_mult * max(1.0, math.log10(max(1, members)))
                   * self.probe_interval_ms)

    def retransmit_limit(self, members: int) -> int:
        return self.retransmit_mult * math.ceil(math.log10(members + 1))

    def push_pull_scaled_ms(self, members: int) -> int:
        """memberlist's pushPullScale: 1x up to 32 members, then one more interval per
        doubling, so the TCP load per member stays flat."""
        if members <= 32:
            return self.push_pull_interval_ms
        return self.push_pull_interval_ms * (math.ceil(math.log2(members) - math.log2(32)) + 1)


def lan() -> GossipConfig:
    """memberlist's DefaultLANConfig: a data centre network (what serf runs by default)."""
    return GossipConfig()


def wan() -> GossipConfig:
    """memberlist's DefaultWANConfig: links across the internet."""
    return GossipConfig(probe_interval_ms=5000, probe_timeout_ms=3000, suspicion_mult=6,
                        gossip_interval_ms=500, gossip_nodes=4, push_pull_interval_ms=60_000,
                        gossip_to_the_dead_ms=60_000)


def local() -> GossipConfig:
    """memberlist's DefaultLocalConfig: loopback and tests, fast and chatty."""
    return GossipConfig(probe_interval_ms=1000, probe_timeout_ms=200, suspicion_mult=3,
                        gossip_interval_ms=100, push_pull_interval_ms=15_000,
                        gossip_to_the_dead_ms=15_000, indirect_checks=1,
                        reconnect_interval_ms=5_000,
                        retransmit_mult=2)


def lab() -> GossipConfig:
    """memberlist's local profile probing twice as often (suspicion then lasts 1.5 s at
    least): a few nodes on one bridge, where a dead node should be NotReady within 5 s.
    Lifeguard still keeps a slow node from being declared dead (suspicion starts at 6x that
    and needs another member to confirm it)."""
    return replace(local(), probe_interval_ms=500)


PROFILES = {"lan": lan, "wan": wan, "local": local, "lab": lab}
