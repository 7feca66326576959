"""The audit log: append-only (SQLite triggers refuse UPDATE and DELETE), ordered by a monotonic seq."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from storage.db import Transactor, fetch_all, fetch_one, from_json, to_json


@dataclass(slots=True)
class AuditEntry:
    seq: int
    at: float
    run_id: str | None
    actor: str
    action: str
    detail: dict[str, Any]
    request_id: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEntry:
        return cls(**{**row, "detail": from_json(row["detail"])})


class Audit:
    """The audit log. Entries are only ever appended."""

    def __init__(self, tx: Transactor) -> None:
        self._tx = tx

    def append(
        self,
        *,
        actor: str,
        action: str,
        run_id: str | None = None,
        detail: dict[str, Any] | None = None,
        request_id: str | None = None,
        now: float | None = None,
    ) -> AuditEntry:
        """Append one entry (its own transaction, or part of the caller's `atomic()` block) and return it."""
        at = time.time() if now is None else now
        with self._tx.atomic() as db:
            cursor = db.execute(
                "INSERT INTO audit (at, run_id, actor, action, detail, request_id) VALUES (?, ?, ?, ?, ?, ?)",
                (at, run_id, actor, action, to_json(detail or {}), request_id),
            )
            row = fetch_one(db, "SELECT * FROM audit WHERE seq = ?", (cursor.lastrowid,))
        assert row is not None
        return AuditEntry.from_row(row)

    def list(
        self,
        *,
        run_id: str | None = None,
        action: str | None = None,
        since_seq: int = 0,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Entries with seq > since_seq, oldest first, filtered by run and action if given, at most `limit`."""
        sql = "SELECT * FROM audit WHERE seq > ?"
        params: list[Any] = [since_seq]
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        if action is not None:
            sql += " AND action = ?"
            params.append(action)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._tx.reading() as db:
            rows = fetch_all(db, sql, tuple(params))
        return [AuditEntry.from_row(row) for row in rows]
