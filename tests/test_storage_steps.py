import pytest

from storage import RecordNotFound, Store, open_store
from tests.storage_fixtures import T0, make_run


@pytest.fixture
def store() -> Store:
    return open_store(None)


@pytest.fixture
def run_id(store: Store) -> str:
    run_id = make_run(store).id
    store.steps.add(run_id, [("observe", "Observe the source"), ("create_bg", "Create the green environment")])
    return run_id


def test_add_appends_waiting_steps_with_continuing_indexes(store: Store, run_id: str) -> None:
    added = store.steps.add(run_id, [("switchover", "Switch over"), ("cleanup", "Delete the old blue")])
    assert [(s.idx, s.name, s.title) for s in added] == [
        (2, "switchover", "Switch over"),
        (3, "cleanup", "Delete the old blue"),
    ]
    assert all(
        (s.status, s.attempts, s.started_at, s.ended_at, s.observed, s.state, s.aws_calls, s.detail)
        == ("waiting", 0, None, None, {}, {}, [], None)
        for s in added
    )
    assert [s.name for s in store.steps.list(run_id)] == ["observe", "create_bg", "switchover", "cleanup"]
    assert store.steps.add(run_id, []) == []


def test_steps_belong_to_their_run(store: Store, run_id: str) -> None:
    other = make_run(store, database="billing-mysql").id
    assert [s.idx for s in store.steps.add(other, [("observe", "Observe")])] == [0]
    assert len(store.steps.list(run_id)) == 2
    assert store.steps.list("r-00000000") == []


def test_get_returns_one_step_and_raises_for_unknown(store: Store, run_id: str) -> None:
    assert store.steps.get(run_id, 1).name == "create_bg"
    with pytest.raises(RecordNotFound):
        store.steps.get(run_id, 9)


def test_start_counts_attempts_and_keeps_the_first_start_time(store: Store, run_id: str) -> None:
    first = store.steps.start(run_id, 0, now=T0 + 1)
    assert (first.status, first.attempts, first.started_at) == ("running", 1, T0 + 1)
    store.steps.finish(run_id, 0, "failed", detail="throttled", now=T0 + 2)

    retry = store.steps.start(run_id, 0, now=T0 + 3)
    assert (retry.status, retry.attempts, retry.started_at, retry.ended_at) == ("running", 2, T0 + 1, None)
    with pytest.raises(RecordNotFound):
        store.steps.start(run_id, 9)


def test_finish_records_status_end_time_and_detail(store: Store, run_id: str) -> None:
    store.steps.start(run_id, 1, now=T0)
    done = store.steps.finish(run_id, 1, "done", detail="green ready", now=T0 + 4)
    assert (done.status, done.ended_at, done.detail) == ("done", T0 + 4, "green ready")
    assert store.steps.finish(run_id, 1, "done", now=T0 + 5).detail == "green ready"
    assert store.steps.finish(run_id, 0, "skipped", now=T0 + 5).status == "skipped"
    assert store.steps.get(run_id, 1).ended_at == T0 + 5


def test_finish_refuses_non_final_statuses_and_unknown_steps(store: Store, run_id: str) -> None:
    with pytest.raises(ValueError, match="finishes"):
        store.steps.finish(run_id, 0, "running")
    with pytest.raises(RecordNotFound):
        store.steps.finish(run_id, 9, "done")


def test_reset_puts_a_step_back_to_waiting_keeping_its_history(store: Store, run_id: str) -> None:
    store.steps.start(run_id, 0, now=T0)
    store.steps.merge_state(run_id, 0, {"spec": {"kind": "preflight"}})
    store.steps.add_aws_call(run_id, 0, {"action": "DescribeDBInstances"})
    store.steps.finish(run_id, 0, "done", detail="ok", now=T0 + 1)

    reset = store.steps.reset(run_id, 0, detail="plan changed after approval")
    assert (reset.status, reset.started_at, reset.ended_at) == ("waiting", T0, None)
    assert (reset.attempts, reset.detail) == (1, "plan changed after approval")
    assert reset.state == {"spec": {"kind": "preflight"}}
    assert reset.aws_calls == [{"action": "DescribeDBInstances"}]
    assert store.steps.reset(run_id, 0).detail == "plan changed after approval"
    assert store.steps.start(run_id, 0, now=T0 + 5).attempts == 2
    with pytest.raises(RecordNotFound):
        store.steps.reset(run_id, 9)


def test_merge_observed_and_state_are_shallow_and_separate(store: Store, run_id: str) -> None:
    store.steps.merge_observed(run_id, 0, {"engine_version": "15.7", "targets": ["orders-pg"]})
    observed = store.steps.merge_observed(run_id, 0, {"targets": []})
    assert observed.observed == {"engine_version": "15.7", "targets": []}
    assert observed.state == {}

    store.steps.merge_state(run_id, 0, {"switchover_requested_at": T0})
    state = store.steps.merge_state(run_id, 0, {"attempt_token": "t-1"})
    assert state.state == {"switchover_requested_at": T0, "attempt_token": "t-1"}
    assert store.steps.get(run_id, 0).observed == observed.observed
    with pytest.raises(RecordNotFound):
        store.steps.merge_state(run_id, 9, {})


def test_add_aws_call_appends_in_order(store: Store, run_id: str) -> None:
    store.steps.add_aws_call(run_id, 1, {"action": "CreateBlueGreenDeployment", "request_id": "req-1"})
    step = store.steps.add_aws_call(run_id, 1, {"action": "DescribeBlueGreenDeployments", "request_id": "req-2"})
    assert [call["request_id"] for call in step.aws_calls] == ["req-1", "req-2"]
    assert store.steps.get(run_id, 0).aws_calls == []
    with pytest.raises(RecordNotFound):
        store.steps.add_aws_call(run_id, 9, {})
