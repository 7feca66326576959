"""The SQLite connection: pragmas, schema migrations, and the transaction gate all repositories use."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

BUSY_TIMEOUT_SECONDS = 10.0
IN_MEMORY = ":memory:"

migrations = Migrations("bluegreen")


@migrations()
def create_runs(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            database TEXT NOT NULL,
            params TEXT NOT NULL,
            strategy TEXT,
            status TEXT NOT NULL,
            requester TEXT NOT NULL,
            environment TEXT NOT NULL,
            channel TEXT,
            plan_version INTEGER NOT NULL,
            plan_fingerprint TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL,
            error TEXT,
            summary TEXT NOT NULL,
            meta TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX runs_by_status ON runs (status, created_at)")
    db.execute("CREATE INDEX runs_by_database ON runs (database, created_at)")


@migrations()
def create_steps(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE steps (
            run_id TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
            idx INTEGER NOT NULL,
            name TEXT NOT NULL,
            title TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            started_at REAL,
            ended_at REAL,
            observed TEXT NOT NULL,
            state TEXT NOT NULL,
            aws_calls TEXT NOT NULL,
            detail TEXT,
            PRIMARY KEY (run_id, idx)
        ) STRICT
        """
    )


@migrations()
def create_approvals(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE approvals (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
            kind TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            approvers TEXT NOT NULL,
            requested_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            status TEXT NOT NULL,
            decided_by TEXT,
            decided_at REAL,
            meta TEXT NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX approvals_by_run ON approvals (run_id, requested_at)")


@migrations()
def create_audit(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            run_id TEXT,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL,
            request_id TEXT
        ) STRICT
        """
    )
    db.execute("CREATE INDEX audit_by_run ON audit (run_id, seq)")
    # RAISE(ABORT) undoes only the offending statement, so a caller's surrounding transaction survives.
    db.execute(
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused'); END"
    )
    db.execute(
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused'); END"
    )


@migrations()
def create_locks_and_leases(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE locks (
            resource TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            acquired_at REAL NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX locks_by_run ON locks (run_id)")
    db.execute(
        """
        CREATE TABLE leases (
            run_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) STRICT
        """
    )


def open_db(path: str | None) -> sqlite_utils.Database:
    """Open (creating if needed) the bot's database: None or ":memory:" for a private in-memory one.

    File databases use WAL and a 10 s busy timeout so a bot and a CLI can share one file.
    Pending migrations are applied; opening an up-to-date database changes nothing.
    Raises sqlite3.Error if the file cannot be opened, switched to WAL within the busy timeout, or migrated.
    """
    in_memory = path is None or path == IN_MEMORY
    # check_same_thread=False: a Store may be used from Bolt's worker threads; Transactor serialises access.
    conn = sqlite3.connect(IN_MEMORY if in_memory else path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    db.execute("PRAGMA foreign_keys = ON")
    if not in_memory:
        _enable_wal(db)
        db.execute("PRAGMA synchronous = NORMAL")
    apply_migrations(db)
    return db


def _enable_wal(db: sqlite_utils.Database) -> None:
    # Switching a file to WAL needs an exclusive lock and SQLite answers SQLITE_BUSY at once, without the busy
    # handler, while another connection is doing the same; so retry until the busy timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def apply_migrations(db: sqlite_utils.Database) -> None:
    if not migrations.pending(db):
        return  # the usual case: no write lock taken just to open the database
    # Under BEGIN IMMEDIATE, so two processes opening a fresh file at once cannot both apply a migration.
    with immediate_transaction(db):
        migrations.apply(db)
        db.execute(f"PRAGMA user_version = {len(migrations.applied(db))}")


def schema_version(db: sqlite_utils.Database) -> int:
    """How many "bluegreen" migrations this database has applied (mirrored in PRAGMA user_version)."""
    return len(migrations.applied(db))


@contextlib.contextmanager
def immediate_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A write transaction taken up front (BEGIN IMMEDIATE); nested calls become savepoints.

    Taking the write lock at BEGIN matters under WAL: a deferred transaction that reads and then writes fails
    with SQLITE_BUSY, without waiting, when another connection committed in between.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    try:
        db.conn.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise


class Transactor:
    """Gate to one connection: a re-entrant thread lock plus immediate transactions.

    One sqlite3 connection must not run two threads' statements interleaved, so every read and write takes
    the lock. Do not `await` while inside `atomic()`: coroutines on one thread share the re-entrant lock.
    """

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        with self._lock, immediate_transaction(self.db):
            yield self.db

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite_utils.Database]:
        with self._lock:
            yield self.db


def fetch_one(db: sqlite_utils.Database, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
    cursor = db.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip((column[0] for column in cursor.description), row, strict=True))


def fetch_all(db: sqlite_utils.Database, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def to_json(value: Any) -> str:
    # default=str: AWS responses carry datetimes; the audit trail wants them readable, not a crash.
    return json.dumps(value, separators=(",", ":"), default=str)


def from_json(text: str) -> Any:
    return json.loads(text)


class RecordNotFound(LookupError):
    """The run, step or approval request named does not exist."""
