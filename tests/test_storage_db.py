import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage import LockConflict, Store, open_db, open_store, schema_version
from tests.storage_fixtures import make_run

MIGRATIONS = ["create_runs", "create_steps", "create_approvals", "create_audit", "create_locks_and_leases"]


@pytest.fixture
def store() -> Store:
    return open_store(None)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "bluegreen.db")


def pragma(store: Store, name: str) -> object:
    return store.db.execute(f"PRAGMA {name}").fetchone()[0]


def test_file_database_uses_wal_busy_timeout_and_foreign_keys(db_path: str) -> None:
    store = open_store(db_path)
    assert pragma(store, "journal_mode") == "wal"
    assert pragma(store, "busy_timeout") == 10_000
    assert pragma(store, "foreign_keys") == 1


@pytest.mark.parametrize("path", [None, ":memory:"])
def test_in_memory_database_has_the_full_schema(path: str | None) -> None:
    store = open_store(path)
    assert pragma(store, "journal_mode") == "memory"
    assert {"runs", "steps", "approvals", "audit", "locks", "leases"} <= set(store.db.table_names())


def test_migrations_are_recorded_and_reopening_applies_nothing(db_path: str) -> None:
    first = open_store(db_path)
    make_run(first)
    applied_before = first.db.execute("SELECT name, applied_at FROM _sqlite_migrations").fetchall()
    first.close()

    second = open_store(db_path)
    applied_after = second.db.execute("SELECT name, applied_at FROM _sqlite_migrations").fetchall()
    assert applied_after == applied_before
    assert [name for name, _ in applied_after] == MIGRATIONS
    assert schema_version(second.db) == len(applied_after) > 0
    assert pragma(second, "user_version") == schema_version(second.db)
    assert len(second.runs.list()) == 1


def test_two_connections_opening_a_fresh_file_at_once_both_succeed(db_path: str) -> None:
    start = threading.Barrier(2)

    def open_after_start() -> int:
        start.wait(timeout=5)
        db = open_db(db_path)
        version = schema_version(db)
        db.close()
        return version

    with ThreadPoolExecutor(2) as pool:
        versions = list(pool.map(lambda _: open_after_start(), range(2)))
    assert versions == [len(MIGRATIONS)] * 2


def test_steps_of_an_unknown_run_violate_the_foreign_key_at_commit(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.steps.add("r-missing0", [("observe", "Observe")])
    assert store.steps.list("r-missing0") == []


def test_atomic_commits_several_writes_together(store: Store) -> None:
    with store.atomic():
        run = make_run(store)
        store.steps.add(run.id, [("observe", "Observe"), ("switch", "Switch over")])
        store.locks.acquire(run.id, ["db:orders-pg"])
        store.audit.append(actor="U_REQUESTER", action="run.created", run_id=run.id)
    assert store.runs.get(run.id) is not None
    assert len(store.steps.list(run.id)) == 2
    assert store.locks.holder("db:orders-pg") == run.id
    assert [entry.action for entry in store.audit.list(run_id=run.id)] == ["run.created"]


def test_atomic_rolls_everything_back_when_one_part_fails(store: Store) -> None:
    holder = make_run(store)
    store.locks.acquire(holder.id, ["proxy:orders-proxy"])

    with pytest.raises(LockConflict), store.atomic():
        run = make_run(store, now=2.0)
        store.steps.add(run.id, [("observe", "Observe")])
        store.audit.append(actor="U_REQUESTER", action="run.created", run_id=run.id)
        store.locks.acquire(run.id, ["db:orders-pg", "proxy:orders-proxy"])

    assert [r.id for r in store.runs.list()] == [holder.id]
    assert store.steps.list(run.id) == []
    assert store.audit.list() == []
    assert store.locks.holder("db:orders-pg") is None


def test_nested_atomic_failure_rolls_back_only_the_inner_block(store: Store) -> None:
    with store.atomic():
        kept = make_run(store)
        with pytest.raises(RuntimeError), store.atomic():
            make_run(store, database="billing-mysql")
            raise RuntimeError("inner block fails")
    assert [r.id for r in store.runs.list()] == [kept.id]


def test_one_store_can_be_shared_by_threads(store: Store) -> None:
    run = make_run(store)
    start = threading.Barrier(8)

    def append_many(worker: int) -> None:
        start.wait(timeout=5)
        for n in range(25):
            store.audit.append(actor=f"worker-{worker}", action="tick", run_id=run.id, detail={"n": n})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(append_many, range(8)))
    entries = store.audit.list(run_id=run.id)
    assert len(entries) == 200
    assert [e.seq for e in entries] == sorted({e.seq for e in entries})
