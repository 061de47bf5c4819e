"""Store errors.

::

    StoreError                  anything the store refuses or cannot do
    ├── CompactedError          the revision asked for is older than the kept history
    ├── FutureRevisionError     the revision asked for does not exist yet
    ├── CorruptLogError         the write-ahead log is damaged before its tail
    ├── StoreClosedError        the store stopped before the write was durable
    ├── StoreUnavailableError   no Raft leader took the write, or it timed out (retry)
    ├── TxnTooLargeError        a transaction over MAX_TXN_BYTES, refused before the log
    └── TxnRejectedError        a committed command that does not decode: every replica
                                skips it alike and its proposer gets this
"""

from __future__ import annotations


class StoreError(Exception):
    pass


class CompactedError(StoreError):
    def __init__(self, revision: int, compact_revision: int) -> None:
        super().__init__(f"required revision {revision} has been compacted "
                         f"(oldest kept is {compact_revision + 1})")
        self.revision = revision
        self.compact_revision = compact_revision


class FutureRevisionError(StoreError):
    def __init__(self, revision: int, current: int) -> None:
        super().__init__(f"required revision {revision} is a future revision (current {current})")
        self.revision = revision
        self.current = current


class CorruptLogError(StoreError):
    pass


class StoreClosedError(StoreError):
    pass


class StoreUnavailableError(StoreError):
    pass


class TxnTooLargeError(StoreError):
    pass


class TxnRejectedError(StoreError):
    pass


class TxnForbiddenError(StoreError):
    """The server a store copy writes through refused the write for this agent's
    credential (a node writes only its own Node, its pods' status and events)."""
