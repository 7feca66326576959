import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage import Lease, Store, open_store
from tests.storage_fixtures import T0, claim_each, make_run


@pytest.fixture
def store() -> Store:
    return open_store(None)


@pytest.fixture
def run_id(store: Store) -> str:
    return make_run(store).id


def test_claim_a_free_lease(store: Store, run_id: str) -> None:
    assert store.leases.get(run_id) is None
    assert store.leases.claim(run_id, "bot-1", ttl=30, now=T0) is True
    assert store.leases.get(run_id) == Lease(run_id=run_id, owner="bot-1", expires_at=T0 + 30)


def test_claim_refuses_a_live_lease_of_someone_else(store: Store, run_id: str) -> None:
    store.leases.claim(run_id, "bot-1", ttl=30, now=T0)
    assert store.leases.claim(run_id, "cli-7", ttl=30, now=T0 + 29.9) is False
    assert store.leases.get(run_id).owner == "bot-1"


def test_claim_takes_over_at_expiry(store: Store, run_id: str) -> None:
    store.leases.claim(run_id, "bot-1", ttl=30, now=T0)
    assert store.leases.claim(run_id, "bot-2", ttl=30, now=T0 + 30) is True
    assert store.leases.get(run_id) == Lease(run_id=run_id, owner="bot-2", expires_at=T0 + 60)


def test_claiming_our_own_lease_renews_it(store: Store, run_id: str) -> None:
    store.leases.claim(run_id, "bot-1", ttl=30, now=T0)
    assert store.leases.claim(run_id, "bot-1", ttl=30, now=T0 + 10) is True
    assert store.leases.get(run_id).expires_at == T0 + 40


def test_force_takes_a_live_lease(store: Store, run_id: str) -> None:
    store.leases.claim(run_id, "bot-1", ttl=30, now=T0)
    assert store.leases.claim(run_id, "cli-7", ttl=5, now=T0 + 1, force=True) is True
    assert store.leases.get(run_id) == Lease(run_id=run_id, owner="cli-7", expires_at=T0 + 6)


def test_renew_extends_only_our_own_lease(store: Store, run_id: str) -> None:
    store.leases.claim(run_id, "bot-1", ttl=30, now=T0)
    assert store.leases.renew(run_id, "bot-1", ttl=30, now=T0 + 20) is True
    assert store.leases.get(run_id).expires_at == T0 + 50
    assert store.leases.renew(run_id, "bot-2", ttl=30, now=T0 + 21) is False
    assert store.leases.get(run_id).owner == "bot-1"


def test_renew_after_a_takeover_or_release_fails(store: Store, run_id: str) -> None:
    store.leases.claim(run_id, "bot-1", ttl=30, now=T0)
    store.leases.claim(run_id, "bot-2", ttl=30, now=T0 + 31)
    assert store.leases.renew(run_id, "bot-1", ttl=30, now=T0 + 32) is False
    store.leases.release(run_id, "bot-2")
    assert store.leases.renew(run_id, "bot-2", ttl=30, now=T0 + 33) is False


def test_renew_of_a_lapsed_lease_nobody_took_succeeds(store: Store, run_id: str) -> None:
    store.leases.claim(run_id, "bot-1", ttl=30, now=T0)
    assert store.leases.renew(run_id, "bot-1", ttl=30, now=T0 + 45) is True
    assert store.leases.get(run_id).expires_at == T0 + 75


def test_release_is_a_no_op_for_anyone_but_the_owner(store: Store, run_id: str) -> None:
    store.leases.claim(run_id, "bot-1", ttl=30, now=T0)
    store.leases.release(run_id, "bot-2")
    assert store.leases.get(run_id).owner == "bot-1"
    store.leases.release(run_id, "bot-1")
    assert store.leases.get(run_id) is None
    assert store.leases.claim(run_id, "bot-2", ttl=30, now=T0 + 1) is True


def test_claim_has_exactly_one_winner_across_connections(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    setup = open_store(path)
    run_ids = [make_run(setup).id for _ in range(100)]
    setup.close()

    start = threading.Barrier(4)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(claim_each, path, run_ids, f"bot-{n}", start) for n in range(4)]
        wins = [future.result(timeout=30) for future in futures]

    assert sorted(run_id for won in wins for run_id in won) == sorted(run_ids)
    check = open_store(path)
    for n, won in enumerate(wins):
        assert all(check.leases.get(run_id).owner == f"bot-{n}" for run_id in won)
