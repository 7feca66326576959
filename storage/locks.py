"""Resource locks: at most one active run per resource key, such as "db:orders-pg" or "proxy:orders-proxy".

A lock whose run has reached a terminal status counts as free, so a crash between finishing a run and
releasing its locks cannot block the resource forever.
"""

from __future__ import annotations

import time

import sqlite_utils

from storage.db import Transactor, fetch_all, fetch_one
from storage.runs import TERMINAL_STATUSES_SQL

# A lock whose run id has no runs row is honoured: NULL NOT IN (...) is NULL, hence the COALESCE.
_LIVE_HOLDER_SQL = f"""
    SELECT locks.run_id FROM locks LEFT JOIN runs ON runs.id = locks.run_id
    WHERE locks.resource = ? AND COALESCE(runs.status, '') NOT IN ({TERMINAL_STATUSES_SQL})
"""


class LockConflict(Exception):
    """A resource is held by another active run (`holder_run_id`)."""

    def __init__(self, resource: str, holder_run_id: str) -> None:
        super().__init__(f"{resource} is locked by run {holder_run_id}")
        self.resource = resource
        self.holder_run_id = holder_run_id


class Locks:
    """The locks table: resource key -> the run holding it."""

    def __init__(self, tx: Transactor) -> None:
        self._tx = tx

    def acquire(self, run_id: str, resources: list[str], *, now: float | None = None) -> None:
        """Lock every resource for `run_id`, or none of them. Re-acquiring a lock the run holds is a no-op.

        Raises LockConflict naming the first resource (in the order given) held by another active run.
        """
        at = time.time() if now is None else now
        with self._tx.atomic() as db:
            for resource in resources:
                holder = _live_holder(db, resource)
                if holder is not None and holder != run_id:
                    raise LockConflict(resource, holder)
            for resource in resources:
                db.execute(
                    "INSERT INTO locks (resource, run_id, acquired_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (resource) DO UPDATE SET run_id = excluded.run_id, "
                    "acquired_at = excluded.acquired_at WHERE locks.run_id != excluded.run_id",
                    (resource, run_id, at),
                )

    def release(self, run_id: str) -> None:
        """Free every resource `run_id` holds; a no-op if it holds none."""
        with self._tx.atomic() as db:
            db.execute("DELETE FROM locks WHERE run_id = ?", (run_id,))

    def holder(self, resource: str) -> str | None:
        """The active run holding `resource`, or None (a lock of a run that has ended counts as free)."""
        with self._tx.reading() as db:
            return _live_holder(db, resource)

    def held_by(self, run_id: str) -> list[str]:
        """The resources locked by `run_id`, sorted."""
        with self._tx.reading() as db:
            rows = fetch_all(db, "SELECT resource FROM locks WHERE run_id = ? ORDER BY resource", (run_id,))
        return [row["resource"] for row in rows]


def _live_holder(db: sqlite_utils.Database, resource: str) -> str | None:
    row = fetch_one(db, _LIVE_HOLDER_SQL, (resource,))
    return None if row is None else row["run_id"]
