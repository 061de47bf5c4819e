"""An Accept header read as Kubernetes' clients write it: media types in the order of
preference, each with its parameters (``application/json;as=Table;v=v1;g=meta.k8s.io``)."""

from __future__ import annotations

__all__ = ["media_ranges"]


def media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    """(lower-cased media type, parameters) of each range, first preferred."""
    out = []
    for part in accept.split(","):
        media, *params = part.split(";")
        out.append((media.strip().lower(),
                    dict(p.strip().split("=", 1) for p in params if "=" in p)))
    return out
