"""Every object of a kind, decoded again only when it changed.

A controller's pass reads every pod (the scheduler to find the pending ones and what the
bound ones use, the Endpoints controller to match them to Services), and passes come at
each change: decoding 2,000 pods at each of hundreds of creates a second was most of
what the coordinator did while pods were created, and it grew with the store.  Here a
pass decodes only the objects written since the last one (the store's mod revision says
which), as kube-controller-manager's informers keep theirs decoded.

The dicts are shared from one pass to the next: a controller using this must not change
them (it builds new objects to write).
"""

from __future__ import annotations

from typing import Any

from nodeagent.api.objects import load_stored
from nodeagent.objects.kinds import Resource

__all__ = ["ListCache"]

Obj = dict[str, Any]


class ListCache:
    def __init__(self, store: Any, res: Resource) -> None:
        self.store, self.res = store, res
        self._by_key: dict[str, tuple[int, Obj]] = {}

    def items(self) -> list[Obj]:
        """Every object of the kind now, each with its resourceVersion."""
        kvs, _more, _rev = self.store.range(self.res.prefix(None))
        fresh: dict[str, tuple[int, Obj]] = {}
        for kv in kvs:
            held = self._by_key.get(kv.key)
            if held is None or held[0] != kv.mod_revision:
                obj = load_stored(kv.value, kv.key)
                if obj is None:
                    continue  # a bad object is skipped (and logged), as lists skip it
                obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
                held = (kv.mod_revision, obj)
            fresh[kv.key] = held
        self._by_key = fresh
        return [obj for _, obj in fresh.values()]
