"""Runs: one row per requested operation (create, upgrade, switchover, cleanup, rollback)."""

from __future__ import annotations

import enum
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.db import RecordNotFound, Transactor, fetch_all, fetch_one, from_json, to_json

RUN_KINDS = frozenset({"create", "upgrade", "switchover", "cleanup", "rollback", "rehearse"})
TERMINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled", "rejected", "expired"})
ACTIVE_RUN_STATUSES = frozenset({"pending", "running", "waiting_approval", "waiting_window", "compensating"})
RUN_STATUSES = ACTIVE_RUN_STATUSES | TERMINAL_RUN_STATUSES

PARAM_KEY = re.compile(r"[a-z][a-z_]*")  # a run parameter's name, as `latest_finished` puts it in a JSON path
# For `status NOT IN (...)`; the values are our own constants, never user input.
TERMINAL_STATUSES_SQL = ", ".join(f"'{status}'" for status in sorted(TERMINAL_RUN_STATUSES))


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET


@dataclass(slots=True)
class RunRecord:
    id: str
    kind: str
    database: str
    params: dict[str, Any]
    strategy: str | None
    status: str
    requester: str
    environment: str
    channel: str | None
    plan_version: int
    plan_fingerprint: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    error: str | None
    summary: dict[str, Any]
    meta: dict[str, Any]

    @property
    def is_active(self) -> bool:
        return self.status not in TERMINAL_RUN_STATUSES

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        return cls(
            **{
                **row,
                "params": from_json(row["params"]),
                "summary": from_json(row["summary"]),
                "meta": from_json(row["meta"]),
            }
        )


def new_run_id() -> str:
    return "r-" + secrets.token_hex(4)


class Runs:
    """The runs table. Methods that change a run return it as stored afterwards."""

    def __init__(self, tx: Transactor) -> None:
        self._tx = tx

    def create(
        self,
        *,
        kind: str,
        database: str,
        params: dict[str, Any],
        requester: str,
        environment: str = "default",
        channel: str | None = None,
        strategy: str | None = None,
        plan_version: int = 1,
        meta: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> RunRecord:
        """Insert a new "pending" run under a fresh unique id and return it. ValueError for an unknown kind."""
        if kind not in RUN_KINDS:
            raise ValueError(f"unknown run kind {kind!r}; expected one of {sorted(RUN_KINDS)}")
        at = time.time() if now is None else now
        with self._tx.atomic() as db:
            run_id = new_run_id()
            while fetch_one(db, "SELECT 1 FROM runs WHERE id = ?", (run_id,)) is not None:
                run_id = new_run_id()
            record = RunRecord(
                id=run_id,
                kind=kind,
                database=database,
                params=dict(params),
                strategy=strategy,
                status="pending",
                requester=requester,
                environment=environment,
                channel=channel,
                plan_version=plan_version,
                plan_fingerprint=None,
                created_at=at,
                updated_at=at,
                finished_at=None,
                error=None,
                summary={},
                meta=dict(meta or {}),
            )
            db.table("runs").insert(_to_row(record))
            # Read back, so the caller sees exactly what a later get() will (JSON round trip included).
            return self._require(db, run_id)

    def get(self, run_id: str) -> RunRecord | None:
        """The run, or None for an unknown id."""
        with self._tx.reading() as db:
            row = fetch_one(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
        return None if row is None else RunRecord.from_row(row)

    def list(
        self, *, active_only: bool = False, database: str | None = None, limit: int | None = 50
    ) -> list[RunRecord]:
        """Runs newest first, optionally only the active ones or one database's, at most `limit` (None: all)."""
        where = ["1 = 1"]
        params: list[Any] = []
        if active_only:
            where.append(f"status NOT IN ({TERMINAL_STATUSES_SQL})")
        if database is not None:
            where.append("database = ?")
            params.append(database)
        sql = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._tx.reading() as db:
            rows = fetch_all(db, sql, tuple(params))
        return [RunRecord.from_row(row) for row in rows]

    def latest_finished(
        self,
        *,
        kind: str,
        database: str,
        environment: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> RunRecord | None:
        """The run of `kind` on `database` (in `environment`, if given) that finished last, or None. With `params`,
        only a run whose params hold each of those values (None: the param was not given)."""
        where = ["kind = ?", "database = ?", "finished_at IS NOT NULL"]
        values: list[Any] = [kind, database]
        if environment is not None:
            where.append("environment = ?")
            values.append(environment)
        for key, value in (params or {}).items():
            if not PARAM_KEY.fullmatch(key):
                raise ValueError(f"not a run parameter name: {key!r}")
            where.append(f"json_extract(params, '$.{key}') IS ?")
            values.append(value)
        sql = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY finished_at DESC, rowid DESC LIMIT 1"
        with self._tx.reading() as db:
            row = fetch_one(db, sql, tuple(values))
        return None if row is None else RunRecord.from_row(row)

    def unfinished(self) -> list[RunRecord]:
        """Every non-terminal run, oldest first: the runner resumes these after a restart."""
        with self._tx.reading() as db:
            rows = fetch_all(
                db,
                f"SELECT * FROM runs WHERE status NOT IN ({TERMINAL_STATUSES_SQL}) ORDER BY created_at, rowid",
            )
        return [RunRecord.from_row(row) for row in rows]

    def set_status(self, run_id: str, status: str, *, error: str | None = None, now: float | None = None) -> RunRecord:
        """Move the run to `status`; a terminal one stamps finished_at. `error`, if given, replaces the error.
        ValueError for an unknown status; RecordNotFound for an unknown run."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {sorted(RUN_STATUSES)}")
        at = time.time() if now is None else now
        changes: dict[str, Any] = {
            "status": status,
            "updated_at": at,
            "finished_at": at if status in TERMINAL_RUN_STATUSES else None,
        }
        if error is not None:
            changes["error"] = error
        return self._change(run_id, changes)

    def update(
        self,
        run_id: str,
        *,
        strategy: str | _Unset | None = UNSET,
        plan_fingerprint: str | _Unset | None = UNSET,
        plan_version: int | _Unset = UNSET,
        summary: dict[str, Any] | _Unset = UNSET,
        now: float | None = None,
    ) -> RunRecord:
        """Set only the fields given (None is a value here: it clears the field). RecordNotFound for an unknown run."""
        changes: dict[str, Any] = {"updated_at": time.time() if now is None else now}
        if strategy is not UNSET:
            changes["strategy"] = strategy
        if plan_fingerprint is not UNSET:
            changes["plan_fingerprint"] = plan_fingerprint
        if plan_version is not UNSET:
            changes["plan_version"] = plan_version
        if summary is not UNSET:
            changes["summary"] = to_json(summary)
        return self._change(run_id, changes)

    def merge_meta(self, run_id: str, values: dict[str, Any]) -> RunRecord:
        """Shallow-merge `values` into meta in one transaction. updated_at stays: meta is presentation data.
        RecordNotFound for an unknown run."""
        with self._tx.atomic() as db:
            current = self._require(db, run_id)
            merged = {**current.meta, **values}
            db.execute("UPDATE runs SET meta = ? WHERE id = ?", (to_json(merged), run_id))
            return self._require(db, run_id)

    def _change(self, run_id: str, changes: dict[str, Any]) -> RunRecord:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._tx.atomic() as db:
            cursor = db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*changes.values(), run_id))
            if cursor.rowcount == 0:
                raise RecordNotFound(f"no run {run_id!r}")
            return self._require(db, run_id)

    @staticmethod
    def _require(db: sqlite_utils.Database, run_id: str) -> RunRecord:
        row = fetch_one(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise RecordNotFound(f"no run {run_id!r}")
        return RunRecord.from_row(row)


def _to_row(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "database": record.database,
        "params": to_json(record.params),
        "strategy": record.strategy,
        "status": record.status,
        "requester": record.requester,
        "environment": record.environment,
        "channel": record.channel,
        "plan_version": record.plan_version,
        "plan_fingerprint": record.plan_fingerprint,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "finished_at": record.finished_at,
        "error": record.error,
        "summary": to_json(record.summary),
        "meta": to_json(record.meta),
    }
