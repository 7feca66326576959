"""A rehearsal's report and where it shows: in the run (run meta `rehearsal`), in the thread, in `plan` (CLI and
Slack) and in the approval request of a later real switchover of the same database and version. The rehearsal runs
production's gates on the clone; a failing one fails it and is in the report. Sandbox AWS over HTTP; Slack through
the stand-in."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import bot.cli
from bot.config import Settings, load_settings
from bot.planning.rehearsal import clone_name
from bot.workflow.engine import Engine
from bot.workflow.events import ApprovalRequested, Notice
from sandbox.aws import Sandbox
from sandbox.slack import SlackStandIn
from sandbox.waiting import async_wait_until
from storage import open_store
from tests.bot_fixtures import Bot, make_settings, sandbox_engine, serve_bot
from tests.engine_fixtures import calls, engine_env, pending_request, request, sandbox_gateways
from tests.slack_fixtures import ALICE, OPS, slack_fixture  # noqa: F401  (the `slack` fixture)
from tests.test_handlers_approval import approval_message, run_command

INSTANCE_TASKS = {
    "CREATING_READ_REPLICA_OF_SOURCE",
    "DB_ENGINE_VERSION_UPGRADE",
    "CONFIGURE_BACKUPS",
    "CREATING_TOPOLOGY_OF_SOURCE",
}
# A summary line: its age, the rehearsal, the version, green, the switchover, the window and the bot's share of it.
SUMMARY_16_4 = re.compile(
    r"rehearsed \d+ s ago \(r-[0-9a-f]{8}, for 16\.4\): green in [\d.]+ s, switchover [\d.]+ s,"
    r" proxy without a target [\d.]+ s \(bot [\d.]+ s\); passed"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(engine_env(tmp_path / "bluegreen.db", BLUEGREEN_REHEARSALS="true"))


async def test_a_rehearsal_reports_each_figure_with_each_task_duration_and_plan_shows_it(
    engine: Engine,
    sandbox: Sandbox,
    sink: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.control.config(provisioning_task=0.3)  # long enough for the bot to see most tasks running

    final = await engine.wait((await engine.start(request("rehearse", "orders-pg", engine_version="16.4"))).id, 60)

    assert final.status == "succeeded", final.error
    report = final.meta["rehearsal"]
    assert (report["database"], report["engine_version"], report["strategy"]) == ("orders-pg", "16.4", "workaround")
    assert (report["outcome"], report["error"]) == ("passed", None) and report["finished_at"] <= final.finished_at
    figures = report["figures"]
    for figure in ("restore_seconds", "proxy_seconds", "green_seconds", "switchover_seconds"):
        assert figures[figure] > 0, (figure, figures)
    tasks = {task["name"]: task for task in figures["tasks"]}
    assert set(tasks) == INSTANCE_TASKS and {task["status"] for task in tasks.values()} == {"COMPLETED"}
    # Each task has a duration as the bot saw it, or (finished before the first look) a bound from the create call.
    assert all((task["seconds"] or task.get("at_most") or 0) > 0 for task in tasks.values()), tasks
    assert sum(1 for task in tasks.values() if task["seconds"]) >= 2, tasks
    assert all((task["seconds"] or task["at_most"]) <= figures["green_seconds"] for task in tasks.values()), tasks
    proxy = clone_name("orders-pg", final.id)
    assert [(w["proxy"], w["phase"]) for w in figures["windows"]] == [(proxy, "create"), (proxy, "switchover")]
    for window in figures["windows"]:
        assert 0 <= window["overhead_seconds"] <= window["seconds"], window
    gates = report["gates"]
    assert len(gates["prerequisites"]) == 8 and {g["status"] for g in gates["prerequisites"]} == {"pass"}
    assert {"deployment", "green instances"} <= {g["name"] for g in gates["readiness"] if g["status"] == "pass"}
    text = final.meta["rehearsal_report"]
    for line in (
        "Rehearsal of orders-pg on a disposable clone: passed (to 16.4, strategy workaround)",
        "• restore to available: ",
        "• proxy available: ",
        "• green AVAILABLE: ",
        "- DB_ENGINE_VERSION_UPGRADE: COMPLETED ",
        "• prerequisites: 8 passed",
        "• readiness: ",
        "• switchover: ",
        f"• {proxy} without a target (create): ",
        f"• {proxy} without a target (switchover): ",
    ):
        assert line in text, (line, text)
    assert [n.text for n in sink.of(Notice) if n.text.startswith("Rehearsal of")] == [text]

    # `plan` for this version shows it with its age; for another version it says so and does not pass it off.
    for name, value in engine_env(Path(settings.db_path), BLUEGREEN_REHEARSALS="true").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint)
    code = await asyncio.to_thread(bot.cli.main, ["plan", "orders-pg", "--engine-version", "16.4"])
    out = capsys.readouterr().out
    assert code == 0, out
    (line,) = [line for line in out.splitlines() if line.startswith("  rehearsal: ")]
    assert SUMMARY_16_4.fullmatch(line.removeprefix("  rehearsal: ")) and final.id in line, line
    other = (await engine.plan(request("create", "orders-pg", engine_version="16.6"))).rehearsal
    assert other[0] == "not rehearsed for 16.6", other
    assert other[1].startswith("the latest rehearsal was for another version: rehearsed ") and "for 16.4" in other[1]
    assert other[2] == "rehearse this one: `rehearse orders-pg --engine-version 16.6`"


async def test_a_failing_prerequisite_on_the_clone_fails_the_rehearsal_before_its_create_and_is_reported(
    engine: Engine, sandbox: Sandbox
) -> None:
    run = await engine.start(request("rehearse", "orders-pg", engine_version="16.4", parameter_group="orders-pg15"))
    final = await engine.wait(run.id, 60)

    assert final.status == "failed"
    assert "prerequisite target parameter group failed on the clone" in (final.error or ""), final.error
    steps = [(s.name, s.status) for s in engine.store.steps.list(run.id)]
    assert ("rehearsal_prerequisites", "failed") in steps and steps[-1] == ("teardown_rehearsal", "done"), steps
    assert calls(sandbox, "CreateBlueGreenDeployment") == [] and calls(sandbox, "DeleteDBInstance")
    report = final.meta["rehearsal"]
    assert (report["outcome"], report["failed_step"]) == ("failed", "rehearsal_prerequisites")
    (failing,) = [g for g in report["gates"]["prerequisites"] if g["status"] == "fail"]
    assert failing["name"] == "target parameter group" and "family postgres15" in failing["reason"]
    text = final.meta["rehearsal_report"]
    assert "• prerequisites: 7 passed, 1 failed; failed target parameter group: DB parameter group orders-pg15" in text
    assert "• failed at rehearsal_prerequisites: prerequisite target parameter group failed" in text
    assert "green AVAILABLE" not in text and "switchover" not in text

    shown = (await engine.plan(request("create", "orders-pg", engine_version="16.4"))).rehearsal
    assert re.fullmatch(rf"rehearsed \d+ s ago \({run.id}, for 16\.4\); failed: prerequisite target parameter group.*",
                        shown[0]), shown  # fmt: skip


async def test_a_readiness_gate_failing_on_the_clone_stops_the_rehearsal_before_its_switchover(
    engine: Engine, sandbox: Sandbox, rds: Any
) -> None:
    sandbox.control.config(provisioning_task=0.3)
    run = await engine.start(request("rehearse", "orders-pg", engine_version="16.4"))
    clone = clone_name("orders-pg", run.id)

    def deployment() -> bool:
        found = rds.describe_blue_green_deployments()["BlueGreenDeployments"]
        return any(d["Source"].endswith(f":{clone}") for d in found)

    await async_wait_until(deployment, 30, what="the rehearsal's deployment")
    sandbox.control.set_green_status(clone, "storage-optimization", progress=40)
    final = await engine.wait(run.id, 60)

    assert final.status == "failed"
    assert "not ready to switch over (before the rehearsal's switchover): green instances" in (final.error or "")
    assert calls(sandbox, "SwitchoverBlueGreenDeployment") == [] and calls(sandbox, "DeleteBlueGreenDeployment")
    report = final.meta["rehearsal"]
    assert report["failed_step"] == "rehearsal_readiness" and report["figures"]["green_seconds"] > 0
    assert [g["name"] for g in report["gates"]["readiness"] if g["status"] == "fail"] == ["green instances"]
    text = final.meta["rehearsal_report"]
    assert re.search(r"• readiness: \d passed, 1 failed(, 1 unknown)?; failed green instances: \S+ is storage", text)
    assert "• failed at rehearsal_readiness: not ready to switch over" in text, text


async def test_the_approval_request_of_a_switchover_to_another_version_says_it_was_not_rehearsed(
    engine: Engine, sink: Any
) -> None:
    rehearsed = await engine.start(
        request("rehearse", "orders-pg", engine_version="16.6", parameter_group="orders-pg15")
    )
    assert (await engine.wait(rehearsed.id, 60)).status == "failed"  # a short rehearsal: its prerequisites fail
    created = await engine.wait((await engine.start(request("create", "orders-pg", engine_version="16.4"))).id, 60)
    assert created.status == "succeeded", created.error

    switchover = await engine.start(request("switchover", "orders-pg"))
    pending = await pending_request(engine.store, switchover.id)
    await engine.reject(pending.id, "U0BOB")
    await engine.bus.drain()  # the sink gets events from its own queue: the request may still be on its way

    (asked,) = [e for e in sink.of(ApprovalRequested) if e.request_id == pending.id]
    assert asked.rehearsal[0] == "not rehearsed for 16.4", asked.rehearsal
    assert asked.rehearsal[1].startswith("the latest rehearsal was for another version: rehearsed ")
    assert f"({rehearsed.id}, for 16.6)" in asked.rehearsal[1] and "failed: prerequisite" in asked.rehearsal[1]
    assert switchover.id and engine.store.runs.get(switchover.id).meta["rehearsed"]["version"] == "16.4"


async def test_plan_says_not_rehearsed_with_the_command_only_where_rehearsals_are_allowed(
    engine: Engine, sandbox: Sandbox, tmp_path: Path
) -> None:
    allowed = (await engine.plan(request("create", "orders-pg", engine_version="16.4"))).rehearsal
    plain = Engine(
        store=open_store(str(tmp_path / "plain.db")),
        settings=load_settings(engine_env(tmp_path / "plain.db")),
        gateways=sandbox_gateways(sandbox),
    )
    try:
        refused = (await plain.plan(request("create", "orders-pg", engine_version="16.4"))).rehearsal
    finally:
        await plain.aclose()
        plain.store.close()

    assert allowed == (
        "not rehearsed for 16.4: `rehearse orders-pg --engine-version 16.4` runs the whole cycle on a disposable clone",
    )
    assert refused == ()


def test_the_store_answers_the_latest_finished_rehearsal_of_a_database_version_and_environment(tmp_path: Path):
    store = open_store(str(tmp_path / "runs.db"))

    def rehearsal(version: str | None, status: str | None, *, environment: str = "default", at: float) -> str:
        params = {"engine_version": version} if version else {}
        run = store.runs.create(kind="rehearse", database="orders-pg", params=params, requester="U0ALICE",
                                environment=environment, now=at)  # fmt: skip
        if status:
            store.runs.set_status(run.id, status, now=at + 1)
        return run.id

    old = rehearsal("16.4", "succeeded", at=100)
    newer = rehearsal("16.4", "failed", at=200)
    rehearsal("16.4", None, at=300)  # still running: not finished
    rehearsal("16.4", "succeeded", environment="staging", at=400)
    same_version = rehearsal(None, "succeeded", at=500)

    def latest(version: str | None, environment: str = "default") -> str | None:
        found = store.runs.latest_finished(
            kind="rehearse", database="orders-pg", environment=environment, params={"engine_version": version}
        )
        return found.id if found else None

    assert latest("16.4") == newer != old
    assert latest(None) == same_version
    assert latest("17.2") is None
    assert store.runs.latest_finished(kind="rehearse", database="orders-pg", environment="default").id == same_version
    with pytest.raises(ValueError, match="not a run parameter name"):
        store.runs.latest_finished(kind="rehearse", database="orders-pg", params={"x') OR 1=1 --": 1})
    store.close()


# ---------------------------------------------------------------- Slack


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    settings = make_settings(tmp_path, slack.base_url, extra={"BLUEGREEN_REHEARSALS": "true"})
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint)) as served:
        yield served


def blocks_text(blocks: list[dict[str, Any]], block_id: str | None = None) -> list[str]:
    return [
        b["text"]["text"]
        for b in blocks
        if b.get("type") == "section" and (block_id is None or b.get("block_id") == block_id)
    ]


async def test_in_slack_the_report_is_in_the_thread_and_plan_and_the_approval_request_show_the_rehearsal(
    slack: SlackStandIn, live: Bot
) -> None:
    rehearse = request("rehearse", "orders-pg", engine_version="16.4", environment="production", channel=OPS)
    rehearsal = await live.engine.wait((await live.engine.start(rehearse)).id, 60)
    assert rehearsal.status == "succeeded", rehearsal.error

    def posted_report() -> list[str]:
        thread = (rehearsal.meta.get("slack") or live.store.runs.get(rehearsal.id).meta.get("slack") or {}).get("ts")
        replies = slack.thread(OPS, thread) if thread else []
        return [t for reply in replies for t in blocks_text(reply.blocks) if "Rehearsal of orders-pg" in t]

    await slack.wait_for(posted_report, timeout=20, description="the report in the rehearsal's thread")
    assert "• switchover: " in posted_report()[0] and "• prerequisites: 8 passed" in posted_report()[0]

    async def plan(text: str) -> str:
        before = len(slack.ephemerals(ALICE))
        assert (await slack.send_command(user_id=ALICE, text=text, channel_id=OPS)).status == 200
        await slack.wait_for(lambda: len(slack.ephemerals(ALICE)) > before, timeout=20, description=text)
        (section,) = [t for t in blocks_text(slack.ephemerals(ALICE)[-1]["blocks"]) if "*Rehearsal:*" in t]
        return section

    this_version = await plan("plan orders-pg --engine-version 16.4")
    assert SUMMARY_16_4.search(this_version) and rehearsal.id in this_version, this_version
    other_version = await plan("plan orders-pg --engine-version 16.6")
    assert "not rehearsed for 16.6" in other_version and "another version" in other_version, other_version

    create = await run_command(slack, live, ALICE, "create orders-pg --engine-version 16.4")
    assert (await live.engine.wait(create, within=60)).status == "succeeded"
    switchover = await run_command(slack, live, ALICE, "switchover orders-pg")
    message = await approval_message(slack, live, switchover)

    (shown,) = blocks_text(message.blocks, "approval-rehearsal")
    assert shown.startswith(":test_tube: *Rehearsal:* rehearsed ") and SUMMARY_16_4.search(shown), shown
    assert rehearsal.id in shown
