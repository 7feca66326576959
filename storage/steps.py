"""Steps: the ordered plan of one run, each step's progress, observations, scratchpad and AWS calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.db import RecordNotFound, Transactor, fetch_all, fetch_one, from_json, to_json

STEP_STATUSES = frozenset({"waiting", "running", "done", "failed", "skipped", "cancelled"})
FINISHED_STEP_STATUSES = frozenset({"done", "failed", "skipped", "cancelled"})


@dataclass(slots=True)
class StepRecord:
    run_id: str
    idx: int
    name: str
    title: str
    status: str
    attempts: int
    started_at: float | None
    ended_at: float | None
    observed: dict[str, Any]
    state: dict[str, Any]
    aws_calls: list[dict[str, Any]]
    detail: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StepRecord:
        return cls(
            **{
                **row,
                "observed": from_json(row["observed"]),
                "state": from_json(row["state"]),
                "aws_calls": from_json(row["aws_calls"]),
            }
        )


class Steps:
    """The steps table. Methods that change a step return it as stored afterwards; RecordNotFound for an unknown
    (run, idx)."""

    def __init__(self, tx: Transactor) -> None:
        self._tx = tx

    def add(self, run_id: str, steps: list[tuple[str, str]]) -> list[StepRecord]:
        """Append (name, title) steps as "waiting", in order; indexes continue from the run's current step count.
        Returns the new steps; sqlite3.IntegrityError at commit if the run does not exist."""
        with self._tx.atomic() as db:
            row = fetch_one(db, "SELECT COUNT(*) AS n FROM steps WHERE run_id = ?", (run_id,))
            first = row["n"] if row else 0
            db.table("steps").insert_all(
                {
                    "run_id": run_id,
                    "idx": first + offset,
                    "name": name,
                    "title": title,
                    "status": "waiting",
                    "attempts": 0,
                    "started_at": None,
                    "ended_at": None,
                    "observed": to_json({}),
                    "state": to_json({}),
                    "aws_calls": to_json([]),
                    "detail": None,
                }
                for offset, (name, title) in enumerate(steps)
            )
            rows = fetch_all(db, "SELECT * FROM steps WHERE run_id = ? AND idx >= ? ORDER BY idx", (run_id, first))
        return [StepRecord.from_row(row) for row in rows]

    def list(self, run_id: str) -> list[StepRecord]:
        """The run's steps in order (empty for an unknown run)."""
        with self._tx.reading() as db:
            rows = fetch_all(db, "SELECT * FROM steps WHERE run_id = ? ORDER BY idx", (run_id,))
        return [StepRecord.from_row(row) for row in rows]

    def get(self, run_id: str, idx: int) -> StepRecord:
        """The step; RecordNotFound if the run has no step `idx`."""
        with self._tx.reading() as db:
            return _require(db, run_id, idx)

    def start(self, run_id: str, idx: int, now: float | None = None) -> StepRecord:
        """Mark running and count the attempt; started_at keeps the first start, ended_at is cleared."""
        at = time.time() if now is None else now
        return self._execute(
            run_id,
            idx,
            "UPDATE steps SET status = 'running', attempts = attempts + 1, "
            "started_at = COALESCE(started_at, ?), ended_at = NULL WHERE run_id = ? AND idx = ?",
            (at, run_id, idx),
        )

    def finish(
        self, run_id: str, idx: int, status: str, *, detail: str | None = None, now: float | None = None
    ) -> StepRecord:
        """End the step as done, failed, skipped or cancelled. `detail` replaces the detail if given.
        ValueError for any other status."""
        if status not in FINISHED_STEP_STATUSES:
            raise ValueError(f"a step finishes as one of {sorted(FINISHED_STEP_STATUSES)}, not {status!r}")
        at = time.time() if now is None else now
        return self._execute(
            run_id,
            idx,
            "UPDATE steps SET status = ?, ended_at = ?, detail = COALESCE(?, detail) WHERE run_id = ? AND idx = ?",
            (status, at, detail, run_id, idx),
        )

    def reset(self, run_id: str, idx: int, *, detail: str | None = None) -> StepRecord:
        """Make a step waiting again (the plan changed after approval: check and ask again).

        Attempts, started_at, observed, state and aws_calls are kept; `detail`, if given, replaces the detail.
        """
        return self._execute(
            run_id,
            idx,
            "UPDATE steps SET status = 'waiting', ended_at = NULL, detail = COALESCE(?, detail)"
            " WHERE run_id = ? AND idx = ?",
            (detail, run_id, idx),
        )

    def merge_observed(self, run_id: str, idx: int, values: dict[str, Any]) -> StepRecord:
        """Shallow-merge `values` into what the step observed, in one transaction."""
        return self._read_modify_write(run_id, idx, "observed", lambda step: {**step.observed, **values})

    def merge_state(self, run_id: str, idx: int, values: dict[str, Any]) -> StepRecord:
        """Shallow-merge `values` into the step's scratchpad (what it must remember across a crash)."""
        return self._read_modify_write(run_id, idx, "state", lambda step: {**step.state, **values})

    def add_aws_call(self, run_id: str, idx: int, call: dict[str, Any]) -> StepRecord:
        """Append one AWS call to the step's list, in one transaction."""
        return self._read_modify_write(run_id, idx, "aws_calls", lambda step: [*step.aws_calls, call])

    def _execute(self, run_id: str, idx: int, sql: str, params: tuple[Any, ...]) -> StepRecord:
        with self._tx.atomic() as db:
            if db.execute(sql, params).rowcount == 0:
                raise RecordNotFound(f"no step {idx} in run {run_id!r}")
            return _require(db, run_id, idx)

    def _read_modify_write(
        self, run_id: str, idx: int, column: str, new_value: Callable[[StepRecord], Any]
    ) -> StepRecord:
        with self._tx.atomic() as db:
            step = _require(db, run_id, idx)
            db.execute(
                f"UPDATE steps SET {column} = ? WHERE run_id = ? AND idx = ?",
                (to_json(new_value(step)), run_id, idx),
            )
            return _require(db, run_id, idx)


def _require(db: sqlite_utils.Database, run_id: str, idx: int) -> StepRecord:
    row = fetch_one(db, "SELECT * FROM steps WHERE run_id = ? AND idx = ?", (run_id, idx))
    if row is None:
        raise RecordNotFound(f"no step {idx} in run {run_id!r}")
    return StepRecord.from_row(row)
