"""Persistence for runs, steps, approvals, audit, locks and leases (SQLite via sqlite-utils).

Knows nothing of Slack or AWS. Times are float epoch seconds; JSON columns come back parsed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlite_utils

from storage.approvals import ApprovalRequest, Approvals
from storage.audit import Audit, AuditEntry
from storage.db import RecordNotFound, Transactor, open_db, schema_version
from storage.leases import Lease, Leases
from storage.locks import LockConflict, Locks
from storage.runs import ACTIVE_RUN_STATUSES, RUN_STATUSES, TERMINAL_RUN_STATUSES, RunRecord, Runs
from storage.steps import StepRecord, Steps


class Store:
    """The repositories over one connection. Safe to share between threads (calls are serialised)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._tx = Transactor(db)
        self.runs = Runs(self._tx)
        self.steps = Steps(self._tx)
        self.approvals = Approvals(self._tx)
        self.audit = Audit(self._tx)
        self.locks = Locks(self._tx)
        self.leases = Leases(self._tx)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Store]:
        """One write transaction around several calls (nested blocks become savepoints); all or nothing."""
        with self._tx.atomic():
            yield self

    def close(self) -> None:
        """Close the connection; the Store and its repositories are unusable afterwards."""
        self.db.close()


def open_store(path: str | None) -> Store:
    """Open the database at `path` (None or ":memory:" for in-memory) and wrap it in a Store.
    Raises sqlite3.Error if the file cannot be opened or migrated (see `open_db`)."""
    return Store(open_db(path))


__all__ = [
    "ACTIVE_RUN_STATUSES",
    "RUN_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "ApprovalRequest",
    "Approvals",
    "Audit",
    "AuditEntry",
    "Lease",
    "Leases",
    "LockConflict",
    "Locks",
    "RecordNotFound",
    "RunRecord",
    "Runs",
    "StepRecord",
    "Steps",
    "Store",
    "open_db",
    "open_store",
    "schema_version",
]
