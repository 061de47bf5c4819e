"""Replicated state: a versioned key-value state machine, its log, and watches."""

from nodeagent.store.errors import (
    CompactedError,
    CorruptLogError,
    FutureRevisionError,
    StoreClosedError,
    StoreError,
)
from nodeagent.store.local import LocalStore, Watch
from nodeagent.store.mvcc import MVCC, Compare, Event, KeyValue, Op, Txn, TxnResult

__all__ = [
    "MVCC", "CompactedError", "Compare", "CorruptLogError", "Event", "FutureRevisionError",
    "KeyValue", "LocalStore", "Op", "StoreClosedError", "StoreError", "Txn", "TxnResult", "Watch",
]
