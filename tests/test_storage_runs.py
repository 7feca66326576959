import re

import pytest

from storage import RecordNotFound, Store, open_store
from tests.storage_fixtures import T0, make_run


@pytest.fixture
def store() -> Store:
    return open_store(None)


def test_create_fills_defaults_and_get_returns_the_same_record(store: Store) -> None:
    run = store.runs.create(
        kind="switchover",
        database="ledger-aurora",
        params={"switchover_timeout": 300, "targets": ["ledger-proxy"]},
        requester="U_ANA",
        channel="C_OPS",
        meta={"thread_ts": "1700000000.000100"},
        now=T0,
    )
    assert re.fullmatch(r"r-[0-9a-f]{8}", run.id)
    assert (run.status, run.environment, run.strategy, run.plan_version) == ("pending", "default", None, 1)
    assert (run.created_at, run.updated_at, run.finished_at, run.error) == (T0, T0, None, None)
    assert run.summary == {}
    assert run.is_active
    assert store.runs.get(run.id) == run


def test_create_gives_unique_ids_and_refuses_unknown_kinds(store: Store) -> None:
    ids = {make_run(store).id for _ in range(200)}
    assert len(ids) == 200
    with pytest.raises(ValueError, match="kind"):
        make_run(store, kind="delete_everything")


def test_get_unknown_run_is_none(store: Store) -> None:
    assert store.runs.get("r-00000000") is None


def test_list_is_newest_first_and_filters(store: Store) -> None:
    old = make_run(store, now=T0)
    billing = make_run(store, database="billing-mysql", now=T0 + 1)
    new = make_run(store, now=T0 + 2)
    store.runs.set_status(old.id, "succeeded", now=T0 + 3)

    assert [r.id for r in store.runs.list()] == [new.id, billing.id, old.id]
    assert [r.id for r in store.runs.list(active_only=True)] == [new.id, billing.id]
    assert [r.id for r in store.runs.list(database="orders-pg")] == [new.id, old.id]
    assert [r.id for r in store.runs.list(limit=1)] == [new.id]


def test_list_orders_runs_created_in_the_same_instant_by_insertion(store: Store) -> None:
    first, second = make_run(store), make_run(store)
    assert [r.id for r in store.runs.list()] == [second.id, first.id]


def test_unfinished_is_every_non_terminal_run_oldest_first(store: Store) -> None:
    statuses = ["running", "succeeded", "waiting_approval", "failed", "waiting_window", "cancelled"]
    statuses += ["compensating", "rejected", "expired", "pending"]
    runs = [make_run(store, now=T0 + n) for n in range(len(statuses))]
    for run, status in zip(runs, statuses, strict=True):
        if status != "pending":
            store.runs.set_status(run.id, status, now=T0 + 100)

    unfinished = store.runs.unfinished()
    active = {"running", "waiting_approval", "waiting_window", "compensating", "pending"}
    assert [r.id for r in unfinished] == [r.id for r, s in zip(runs, statuses, strict=True) if s in active]
    assert [r.status for r in unfinished] == [s for s in statuses if s in active]
    assert all(r.is_active for r in unfinished)


def test_set_status_stamps_finished_at_only_for_terminal_statuses(store: Store) -> None:
    run = make_run(store)
    running = store.runs.set_status(run.id, "running", now=T0 + 1)
    assert (running.status, running.updated_at, running.finished_at) == ("running", T0 + 1, None)

    failed = store.runs.set_status(run.id, "failed", error="switchover timed out", now=T0 + 5)
    assert (failed.status, failed.finished_at, failed.error) == ("failed", T0 + 5, "switchover timed out")
    assert not failed.is_active
    assert store.runs.get(run.id) == failed


def test_set_status_keeps_the_error_unless_a_new_one_is_given(store: Store) -> None:
    run = make_run(store)
    store.runs.set_status(run.id, "compensating", error="target unhealthy", now=T0 + 1)
    assert store.runs.set_status(run.id, "failed", now=T0 + 2).error == "target unhealthy"


def test_set_status_refuses_unknown_statuses_and_runs(store: Store) -> None:
    run = make_run(store)
    with pytest.raises(ValueError, match="status"):
        store.runs.set_status(run.id, "paused")
    with pytest.raises(RecordNotFound):
        store.runs.set_status("r-00000000", "running")


def test_update_changes_only_the_fields_given(store: Store) -> None:
    run = make_run(store, strategy="proxy-detach")
    updated = store.runs.update(run.id, plan_fingerprint="sha256:abc", summary={"steps": 7}, now=T0 + 9)
    assert (updated.strategy, updated.plan_fingerprint, updated.summary) == ("proxy-detach", "sha256:abc", {"steps": 7})
    assert updated.updated_at == T0 + 9

    cleared = store.runs.update(run.id, strategy=None, plan_version=2, now=T0 + 10)
    assert (cleared.strategy, cleared.plan_version, cleared.plan_fingerprint) == (None, 2, "sha256:abc")
    assert cleared.summary == {"steps": 7}
    with pytest.raises(RecordNotFound):
        store.runs.update("r-00000000", strategy="x")


def test_merge_meta_is_shallow_and_leaves_updated_at(store: Store) -> None:
    run = make_run(store, meta={"thread_ts": "1.1", "nested": {"a": 1}})
    merged = store.runs.merge_meta(run.id, {"nested": {"b": 2}, "home_ts": "2.2"})
    assert merged.meta == {"thread_ts": "1.1", "nested": {"b": 2}, "home_ts": "2.2"}
    assert merged.updated_at == run.updated_at
    assert store.runs.get(run.id).meta == merged.meta
    with pytest.raises(RecordNotFound):
        store.runs.merge_meta("r-00000000", {})
