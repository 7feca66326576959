"""Leases: which process owns (drives) a run, until when. A lease is free once now >= expires_at."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from storage.db import Transactor, fetch_one


@dataclass(slots=True)
class Lease:
    run_id: str
    owner: str
    expires_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Lease:
        return cls(**row)


class Leases:
    """The leases table: run id -> the process driving it, until when."""

    def __init__(self, tx: Transactor) -> None:
        self._tx = tx

    def claim(self, run_id: str, owner: str, ttl: float, *, now: float | None = None, force: bool = False) -> bool:
        """Take the lease for `ttl` seconds if free, expired or already ours (a renewal), or if `force`.
        True if we hold it now; False if another owner's lease is still live."""
        at = time.time() if now is None else now
        with self._tx.atomic() as db:
            row = fetch_one(db, "SELECT * FROM leases WHERE run_id = ?", (run_id,))
            current = None if row is None else Lease.from_row(row)
            claimable = force or current is None or current.owner == owner or at >= current.expires_at
            if claimable:
                db.execute(
                    "INSERT INTO leases (run_id, owner, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, "
                    "expires_at = excluded.expires_at",
                    (run_id, owner, at + ttl),
                )
            return claimable

    def renew(self, run_id: str, owner: str, ttl: float, *, now: float | None = None) -> bool:
        """Extend our lease. False if someone else holds it or there is none (released or taken over).

        A lease of ours that lapsed but that nobody took over is renewed.
        """
        at = time.time() if now is None else now
        with self._tx.atomic() as db:
            cursor = db.execute(
                "UPDATE leases SET expires_at = ? WHERE run_id = ? AND owner = ?", (at + ttl, run_id, owner)
            )
            return cursor.rowcount == 1

    def release(self, run_id: str, owner: str) -> None:
        """Give the lease up; a no-op unless `owner` holds it."""
        with self._tx.atomic() as db:
            db.execute("DELETE FROM leases WHERE run_id = ? AND owner = ?", (run_id, owner))

    def get(self, run_id: str) -> Lease | None:
        """The run's lease as stored, expired or not; None if there is none."""
        with self._tx.reading() as db:
            row = fetch_one(db, "SELECT * FROM leases WHERE run_id = ?", (run_id,))
        return None if row is None else Lease.from_row(row)
