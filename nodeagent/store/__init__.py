"""Replicated state: a versioned key-value state machine, its log, and watches."""

from nodeagent.store.base import KeyValueStore, Watch
from nodeagent.store.errors import (
    CompactedError,
    CorruptLogError,
    FutureRevisionError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    TxnRejectedError,
    TxnTooLargeError,
)
from nodeagent.store.local import LocalStore
from nodeagent.store.mvcc import MVCC, Compare, Event, KeyValue, Op, Txn, TxnResult

__all__ = [
    "MVCC", "CompactedError", "Compare", "CorruptLogError", "Event", "FutureRevisionError",
    "KeyValue", "KeyValueStore", "LocalStore", "Op", "StoreClosedError", "StoreError",
    "StoreUnavailableError", "Txn", "TxnRejectedError", "TxnResult", "TxnTooLargeError", "Watch",
]
