"""Replicated state: a versioned key-value state machine, its log, and watches."""

from nodeagent.store.base import KeyValueStore, Watch
from nodeagent.store.errors import (
    CompactedError,
    CorruptLogError,
    FutureRevisionError,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    TxnForbiddenError,
    TxnRejectedError,
    TxnTooLargeError,
)
from nodeagent.store.local import LocalStore
from nodeagent.store.mvcc import MVCC, Compare, Event, EventType, KeyValue, Op, OpKind, Txn, TxnResult

__all__ = [
    "MVCC", "CompactedError", "Compare", "CorruptLogError", "Event", "EventType", "FutureRevisionError",
    "KeyValue", "KeyValueStore", "LocalStore", "Op", "OpKind", "StoreClosedError", "StoreError",
    "StoreUnavailableError", "Txn", "TxnForbiddenError", "TxnRejectedError", "TxnResult",
    "TxnTooLargeError", "Watch",
]
