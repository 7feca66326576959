import multiprocessing
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage import RecordNotFound, Store, open_store
from tests.storage_fixtures import T0, decide_each, make_run, report_to

EXPIRES = T0 + 900


@pytest.fixture
def store() -> Store:
    return open_store(None)


@pytest.fixture
def run_id(store: Store) -> str:
    return make_run(store).id


def request(store: Store, run_id: str, kind: str = "switchover", now: float = T0, **overrides: object) -> str:
    fields: dict = {
        "run_id": run_id,
        "kind": kind,
        "fingerprint": "sha256:plan-1",
        "requested_by": "U_REQUESTER",
        "approvers": ["U_ANA", "U_BEN"],
        "expires_at": EXPIRES,
        "now": now,
    }
    fields.update(overrides)
    return store.approvals.request(**fields).id


def test_request_opens_a_pending_request(store: Store, run_id: str) -> None:
    request_id = request(store, run_id)
    pending = store.approvals.get(request_id)
    assert pending is not None
    assert re.fullmatch(r"a-[0-9a-f]{8}", pending.id)
    assert (pending.run_id, pending.kind, pending.fingerprint, pending.requested_by) == (
        run_id,
        "switchover",
        "sha256:plan-1",
        "U_REQUESTER",
    )
    assert (pending.approvers, pending.requested_at, pending.expires_at) == (["U_ANA", "U_BEN"], T0, EXPIRES)
    assert (pending.status, pending.decided_by, pending.decided_at, pending.meta) == ("pending", None, None, {})
    assert store.approvals.get("a-00000000") is None


def test_request_refuses_unknown_kinds(store: Store, run_id: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        request(store, run_id, kind="drop_database")


def test_request_supersedes_pending_requests_of_the_same_run_only(store: Store, run_id: str) -> None:
    other_run = make_run(store, database="billing-mysql").id
    other = request(store, other_run)
    decided = request(store, run_id)
    store.approvals.decide(decided, user="U_ANA", decision="approved", now=T0 + 1)
    old = request(store, run_id, now=T0 + 2)
    new = request(store, run_id, kind="delete_old", now=T0 + 3)

    assert store.approvals.get(old).status == "superseded"
    assert store.approvals.get(old).decided_at == T0 + 3
    assert store.approvals.get(decided).status == "approved"
    assert store.approvals.get(new).status == "pending"
    assert store.approvals.get(other).status == "pending"


def test_latest_is_the_newest_request_optionally_of_one_kind(store: Store, run_id: str) -> None:
    assert store.approvals.latest(run_id) is None
    first = request(store, run_id, now=T0)
    second = request(store, run_id, now=T0 + 1)
    delete = request(store, run_id, kind="delete_old", now=T0 + 2)
    assert store.approvals.latest(run_id).id == delete
    assert store.approvals.latest(run_id, kind="switchover").id == second
    assert first != second
    assert store.approvals.latest(make_run(store).id) is None


def test_decide_moves_pending_once(store: Store, run_id: str) -> None:
    request_id = request(store, run_id)
    assert store.approvals.decide(request_id, user="U_ANA", decision="approved", now=T0 + 5) is True
    assert store.approvals.decide(request_id, user="U_BEN", decision="rejected", now=T0 + 6) is False
    decided = store.approvals.get(request_id)
    assert (decided.status, decided.decided_by, decided.decided_at) == ("approved", "U_ANA", T0 + 5)


def test_decide_can_reject(store: Store, run_id: str) -> None:
    request_id = request(store, run_id)
    assert store.approvals.decide(request_id, user="U_BEN", decision="rejected", now=T0 + 5)
    assert store.approvals.get(request_id).status == "rejected"


def test_decide_loses_at_or_after_expiry_even_before_the_request_is_marked(store: Store, run_id: str) -> None:
    request_id = request(store, run_id)
    assert store.approvals.decide(request_id, user="U_ANA", decision="approved", now=EXPIRES) is False
    assert store.approvals.get(request_id).status == "pending"


def test_decide_refuses_superseded_requests_bad_decisions_and_unknown_ids(store: Store, run_id: str) -> None:
    superseded = request(store, run_id)
    request(store, run_id)
    assert store.approvals.decide(superseded, user="U_ANA", decision="approved", now=T0) is False
    with pytest.raises(ValueError, match="decision"):
        store.approvals.decide(superseded, user="U_ANA", decision="maybe")
    with pytest.raises(RecordNotFound):
        store.approvals.decide("a-00000000", user="U_ANA", decision="approved")


def test_expire_is_a_compare_and_set_too(store: Store, run_id: str) -> None:
    request_id = request(store, run_id)
    assert store.approvals.expire(request_id, now=EXPIRES) is True
    assert store.approvals.expire(request_id, now=EXPIRES) is False
    expired = store.approvals.get(request_id)
    assert (expired.status, expired.decided_by, expired.decided_at) == ("expired", None, EXPIRES)
    assert store.approvals.decide(request_id, user="U_ANA", decision="approved", now=T0) is False
    with pytest.raises(RecordNotFound):
        store.approvals.expire("a-00000000")


def test_merge_meta_is_shallow(store: Store, run_id: str) -> None:
    request_id = request(store, run_id)
    store.approvals.merge_meta(request_id, {"message_ts": "1.1", "channel": "C_OPS"})
    merged = store.approvals.merge_meta(request_id, {"message_ts": "2.2"})
    assert merged.meta == {"message_ts": "2.2", "channel": "C_OPS"}
    assert store.approvals.get(request_id).meta == merged.meta
    with pytest.raises(RecordNotFound):
        store.approvals.merge_meta("a-00000000", {})


@pytest.fixture
def shared_requests(tmp_path: Path) -> tuple[str, list[str]]:
    """A database file with 100 pending requests, each on its own run."""
    path = str(tmp_path / "shared.db")
    store = open_store(path)
    request_ids = [request(store, make_run(store).id) for _ in range(100)]
    store.close()
    return path, request_ids


def assert_each_request_won_exactly_once(path: str, request_ids: list[str], wins: list[list[str]]) -> None:
    all_wins = [request_id for won in wins for request_id in won]
    assert sorted(all_wins) == sorted(request_ids)
    store = open_store(path)
    for won, user in zip(wins, [f"U_{n}" for n in range(len(wins))], strict=True):
        assert {store.approvals.get(request_id).decided_by for request_id in won} <= {user}


def test_decide_has_exactly_one_winner_across_threads_with_their_own_connections(
    shared_requests: tuple[str, list[str]],
) -> None:
    path, request_ids = shared_requests
    start = threading.Barrier(4)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(decide_each, path, request_ids, f"U_{n}", start) for n in range(4)]
        wins = [future.result(timeout=30) for future in futures]
    assert_each_request_won_exactly_once(path, request_ids, wins)


def test_decide_has_exactly_one_winner_across_processes(shared_requests: tuple[str, list[str]]) -> None:
    path, request_ids = shared_requests
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = [context.Queue() for _ in range(2)]
    processes = [
        context.Process(target=report_to, args=(results[n], decide_each, path, request_ids, f"U_{n}", start))
        for n in range(2)
    ]
    for process in processes:
        process.start()
    wins = [queue.get(timeout=30) for queue in results]
    for process in processes:
        process.join(timeout=10)
        assert process.exitcode == 0
    assert_each_request_won_exactly_once(path, request_ids, wins)
