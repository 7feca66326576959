"""Approval requests: the gates a run waits at, decided once by compare-and-set.

Who may decide is the engine's rule; this module only guarantees that a request leaves "pending" exactly once,
even when two clicks race in two threads or two processes sharing the database file.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.db import RecordNotFound, Transactor, fetch_one, from_json, to_json

APPROVAL_KINDS = frozenset({"switchover", "delete_old"})
APPROVAL_STATUSES = frozenset({"pending", "approved", "rejected", "expired", "superseded"})
DECISIONS = frozenset({"approved", "rejected"})


@dataclass(slots=True)
class ApprovalRequest:
    id: str
    run_id: str
    kind: str
    fingerprint: str
    requested_by: str
    approvers: list[str]
    requested_at: float
    expires_at: float
    status: str
    decided_by: str | None
    decided_at: float | None
    meta: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ApprovalRequest:
        return cls(**{**row, "approvers": from_json(row["approvers"]), "meta": from_json(row["meta"])})


def new_request_id() -> str:
    return "a-" + secrets.token_hex(4)


class Approvals:
    """The approvals table: requests open as "pending" and leave it exactly once."""

    def __init__(self, tx: Transactor) -> None:
        self._tx = tx

    def request(
        self,
        *,
        run_id: str,
        kind: str,
        fingerprint: str,
        requested_by: str,
        approvers: list[str],
        expires_at: float,
        now: float | None = None,
    ) -> ApprovalRequest:
        """Open a pending request and return it; any request of the same run still pending becomes "superseded".
        ValueError for an unknown kind."""
        if kind not in APPROVAL_KINDS:
            raise ValueError(f"unknown approval kind {kind!r}; expected one of {sorted(APPROVAL_KINDS)}")
        at = time.time() if now is None else now
        with self._tx.atomic() as db:
            db.execute(
                "UPDATE approvals SET status = 'superseded', decided_at = ? WHERE run_id = ? AND status = 'pending'",
                (at, run_id),
            )
            request_id = new_request_id()
            while fetch_one(db, "SELECT 1 FROM approvals WHERE id = ?", (request_id,)) is not None:
                request_id = new_request_id()
            db.table("approvals").insert(
                {
                    "id": request_id,
                    "run_id": run_id,
                    "kind": kind,
                    "fingerprint": fingerprint,
                    "requested_by": requested_by,
                    "approvers": to_json(list(approvers)),
                    "requested_at": at,
                    "expires_at": expires_at,
                    "status": "pending",
                    "decided_by": None,
                    "decided_at": None,
                    "meta": to_json({}),
                }
            )
            return _require(db, request_id)

    def get(self, request_id: str) -> ApprovalRequest | None:
        """The request, or None for an unknown id."""
        with self._tx.reading() as db:
            row = fetch_one(db, "SELECT * FROM approvals WHERE id = ?", (request_id,))
        return None if row is None else ApprovalRequest.from_row(row)

    def pending_count(self, now: float | None = None) -> int:
        """How many requests wait for a decision and have not expired at `now`."""
        at = time.time() if now is None else now
        with self._tx.reading() as db:
            sql = "SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND expires_at > ?"
            row = fetch_one(db, sql, (at,))
        return int(row["n"]) if row else 0

    def latest(self, run_id: str, kind: str | None = None) -> ApprovalRequest | None:
        """The run's most recent request (of `kind`, if given), whatever its status; None if there is none."""
        sql = "SELECT * FROM approvals WHERE run_id = ?"
        params: tuple[Any, ...] = (run_id,)
        if kind is not None:
            sql += " AND kind = ?"
            params += (kind,)
        with self._tx.reading() as db:
            row = fetch_one(db, sql + " ORDER BY requested_at DESC, rowid DESC LIMIT 1", params)
        return None if row is None else ApprovalRequest.from_row(row)

    def decide(self, request_id: str, *, user: str, decision: str, now: float | None = None) -> bool:
        """Compare-and-set pending -> approved/rejected. True only for the one call that made the move.

        False if the request was already decided, expired or superseded, or if `now` is at or past
        expires_at (a late click loses even before anything marked the request expired).
        Unknown ids raise RecordNotFound.
        """
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {sorted(DECISIONS)}, not {decision!r}")
        at = time.time() if now is None else now
        return self._compare_and_set(
            request_id,
            "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ? "
            "WHERE id = ? AND status = 'pending' AND expires_at > ?",
            (decision, user, at, request_id, at),
        )

    def expire(self, request_id: str, now: float | None = None) -> bool:
        """Compare-and-set pending -> expired. When to expire is the caller's call; no clock check here.
        True only for the call that made the move; RecordNotFound for an unknown id."""
        at = time.time() if now is None else now
        return self._compare_and_set(
            request_id,
            "UPDATE approvals SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'pending'",
            (at, request_id),
        )

    def merge_meta(self, request_id: str, values: dict[str, Any]) -> ApprovalRequest:
        """Shallow-merge `values` into the request's meta and return it. RecordNotFound for an unknown id."""
        with self._tx.atomic() as db:
            current = _require(db, request_id)
            merged = {**current.meta, **values}
            db.execute("UPDATE approvals SET meta = ? WHERE id = ?", (to_json(merged), request_id))
            return _require(db, request_id)

    def _compare_and_set(self, request_id: str, sql: str, params: tuple[Any, ...]) -> bool:
        # One conditional UPDATE under the write lock: the WHERE clause compares, rowcount is the verdict.
        with self._tx.atomic() as db:
            moved = db.execute(sql, params).rowcount == 1
            if not moved:
                _require(db, request_id)
            return moved


def _require(db: sqlite_utils.Database, request_id: str) -> ApprovalRequest:
    row = fetch_one(db, "SELECT * FROM approvals WHERE id = ?", (request_id,))
    if row is None:
        raise RecordNotFound(f"no approval request {request_id!r}")
    return ApprovalRequest.from_row(row)
