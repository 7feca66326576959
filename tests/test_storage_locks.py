import pytest

from storage import LockConflict, Store, open_store
from tests.storage_fixtures import make_run


@pytest.fixture
def store() -> Store:
    return open_store(None)


def test_acquire_locks_every_resource_for_the_run(store: Store) -> None:
    run_id = make_run(store).id
    store.locks.acquire(run_id, ["db:orders-pg", "proxy:orders-proxy"])
    assert store.locks.holder("db:orders-pg") == run_id
    assert store.locks.holder("proxy:orders-proxy") == run_id
    assert store.locks.holder("db:billing-mysql") is None
    assert store.locks.held_by(run_id) == ["db:orders-pg", "proxy:orders-proxy"]


def test_conflict_names_the_resource_and_the_holder(store: Store) -> None:
    holder, contender = make_run(store).id, make_run(store).id
    store.locks.acquire(holder, ["proxy:orders-proxy"])
    with pytest.raises(LockConflict) as raised:
        store.locks.acquire(contender, ["proxy:orders-proxy"])
    assert (raised.value.resource, raised.value.holder_run_id) == ("proxy:orders-proxy", holder)
    assert "proxy:orders-proxy" in str(raised.value)
    assert holder in str(raised.value)


def test_acquire_is_all_or_nothing(store: Store) -> None:
    holder, contender = make_run(store).id, make_run(store).id
    store.locks.acquire(holder, ["proxy:billing-proxy"])
    with pytest.raises(LockConflict):
        store.locks.acquire(contender, ["db:billing-mysql", "proxy:billing-proxy", "proxy:billing-reporting-proxy"])
    assert store.locks.holder("db:billing-mysql") is None
    assert store.locks.holder("proxy:billing-reporting-proxy") is None
    assert store.locks.held_by(contender) == []


def test_acquiring_again_what_the_run_holds_is_fine(store: Store) -> None:
    run_id = make_run(store).id
    store.locks.acquire(run_id, ["db:orders-pg"])
    store.locks.acquire(run_id, ["db:orders-pg", "proxy:orders-proxy"])
    assert store.locks.held_by(run_id) == ["db:orders-pg", "proxy:orders-proxy"]


def test_release_frees_only_that_runs_locks(store: Store) -> None:
    orders, billing = make_run(store).id, make_run(store, database="billing-mysql").id
    store.locks.acquire(orders, ["db:orders-pg"])
    store.locks.acquire(billing, ["db:billing-mysql"])
    store.locks.release(orders)
    assert store.locks.holder("db:orders-pg") is None
    assert store.locks.holder("db:billing-mysql") == billing
    store.locks.acquire(make_run(store).id, ["db:orders-pg"])


def test_a_lock_left_by_a_finished_run_is_free(store: Store) -> None:
    finished, next_run = make_run(store).id, make_run(store).id
    store.locks.acquire(finished, ["db:orders-pg"])
    store.runs.set_status(finished, "failed", error="crashed before releasing")
    assert store.locks.holder("db:orders-pg") is None
    store.locks.acquire(next_run, ["db:orders-pg"])
    assert store.locks.holder("db:orders-pg") == next_run
