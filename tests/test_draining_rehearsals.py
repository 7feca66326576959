"""A SIGTERM during a rehearsal's teardown: the open window is the rehearsal's own proxy, which the teardown deletes,
so the shutdown must not try to give it a target back (it would register the clone with a proxy being deleted)."""

from __future__ import annotations

from bot.aws.models import Registration
from bot.workflow.draining import in_critical_section
from bot.workflow.windows import WindowLedger
from storage import open_store
from tests.storage_fixtures import T0, make_run


def run_with_open_window(tmp_path, kind: str, steps: list[str], current: int):
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = open_store(tmp_path / "bluegreen.db")
    run = make_run(store, kind=kind)
    store.steps.add(run.id, [(name, name) for name in steps])
    for idx in range(current):
        store.steps.start(run.id, idx, now=T0)
        store.steps.finish(run.id, idx, "done", now=T0)
    store.steps.start(run.id, current, now=T0)
    WindowLedger(store, run.id).detached(Registration("orders-pg-rh-abc"), "orders-pg-rh-abc", "instance", T0)
    return store, run.id


def test_a_rehearsal_in_its_teardown_is_not_in_a_critical_section_though_its_own_proxy_is_detached(tmp_path):
    store, run_id = run_with_open_window(tmp_path, "rehearse", ["detach", "switchover", "teardown_rehearsal"], 2)

    assert WindowLedger(store, run_id).open_windows()
    assert not in_critical_section(store, run_id)


def test_a_rehearsal_before_its_teardown_and_a_production_run_keep_their_window_critical(tmp_path):
    rehearsal, rehearsal_id = run_with_open_window(tmp_path / "r", "rehearse", ["detach", "switchover", "x"], 1)
    production, production_id = run_with_open_window(
        tmp_path / "p", "switchover", ["detach", "switchover", "teardown_rehearsal"], 2
    )

    assert in_critical_section(rehearsal, rehearsal_id)
    assert in_critical_section(production, production_id)
