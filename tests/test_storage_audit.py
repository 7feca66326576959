import sqlite3

import pytest

from storage import Store, open_store
from tests.storage_fixtures import T0, make_run


@pytest.fixture
def store() -> Store:
    return open_store(None)


def test_append_returns_the_stored_entry(store: Store) -> None:
    run_id = make_run(store).id
    entry = store.audit.append(
        actor="U_ANA",
        action="approval.approved",
        run_id=run_id,
        detail={"fingerprint": "sha256:plan-1"},
        request_id="a-12345678",
        now=T0,
    )
    assert entry.seq >= 1
    assert (entry.at, entry.run_id, entry.actor, entry.action) == (T0, run_id, "U_ANA", "approval.approved")
    assert (entry.detail, entry.request_id) == ({"fingerprint": "sha256:plan-1"}, "a-12345678")
    assert store.audit.list() == [entry]


def test_append_defaults_to_no_run_and_empty_detail(store: Store) -> None:
    entry = store.audit.append(actor="bot", action="bot.started", now=T0)
    assert (entry.run_id, entry.detail, entry.request_id) == (None, {}, None)


def test_list_filters_by_run_action_and_seq_in_order(store: Store) -> None:
    run_a, run_b = make_run(store).id, make_run(store).id
    a1 = store.audit.append(actor="bot", action="step.started", run_id=run_a)
    b1 = store.audit.append(actor="bot", action="step.started", run_id=run_b)
    a2 = store.audit.append(actor="bot", action="aws.call", run_id=run_a, detail={"action": "DeregisterDBProxyTargets"})
    a3 = store.audit.append(actor="bot", action="step.started", run_id=run_a)

    assert [e.seq for e in store.audit.list()] == [a1.seq, b1.seq, a2.seq, a3.seq]
    assert a1.seq < b1.seq < a2.seq < a3.seq
    assert store.audit.list(run_id=run_a) == [a1, a2, a3]
    assert store.audit.list(action="step.started") == [a1, b1, a3]
    assert store.audit.list(run_id=run_a, action="step.started") == [a1, a3]
    assert store.audit.list(since_seq=b1.seq) == [a2, a3]
    assert store.audit.list(limit=2) == [a1, b1]
    assert store.audit.list(run_id=run_a, since_seq=a1.seq, limit=1) == [a2]


def test_the_table_refuses_update_and_delete(store: Store) -> None:
    entry = store.audit.append(actor="U_ANA", action="run.cancelled", now=T0)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE audit SET actor = 'U_MALLORY' WHERE seq = ?", (entry.seq,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM audit")
    assert store.audit.list() == [entry]


def test_a_refused_edit_does_not_undo_the_surrounding_transaction(store: Store) -> None:
    with store.atomic():
        entry = store.audit.append(actor="bot", action="run.created", now=T0)
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute("DELETE FROM audit")
        later = store.audit.append(actor="bot", action="run.started", now=T0 + 1)
    assert store.audit.list() == [entry, later]
