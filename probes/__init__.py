"""Probes: when a container is alive, ready and started."""
