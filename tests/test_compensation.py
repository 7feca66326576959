"""Compensation that never gives up: a proxy the bot detached and cannot give its target back to is retried with
capped backoff and alerted about in the run's thread every interval (broadcast, mentioning the approvers, naming
the proxy and the command), across a restart, until AWS accepts again or an operator abandons it with
`cancel <run> --abandon-proxy` (CLI or Slack), which is audited and refused for a run that is not compensating.

Registration is refused with InvalidDBInstanceState (HTTP 400: botocore does not retry it, the step does), and
BLUEGREEN_TARGET_TIMEOUT, the backoff cap and the alert interval are scaled down so that this takes seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from bot.errors import BadRequest
from bot.workflow.engine import Engine
from bot.workflow.events import DetachedProxy, Notice
from handlers.messages.runs import detached_alert
from handlers.parsing import ParsedCommand, parse_command
from sandbox.aws import Sandbox
from sandbox.slack import Message, SlackStandIn
from sandbox.waiting import async_wait_until
from storage import RunRecord, Store, open_store
from tests.bot_fixtures import Bot, bot_environment, make_settings, sandbox_engine, serve_bot, serve_processes
from tests.engine_fixtures import APPROVER, RecordingSink, engine_env, pending_request, request, sandbox_gateways
from tests.matrix_fixtures import (
    DATABASE,
    all_calls,
    assert_proxy_serves,
    bot_env,
    last_seq,
    successful_calls,
)
from tests.process_fixtures import Zygote, forked_bots, zygote_fixture  # noqa: F401  (the `zygote` fixture)
from tests.slack_fixtures import (
    ALICE,
    BOB,
    OPS,
    SRE_GROUP,
    approval_message,
    click_button,
    run_thread,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

PROXY = "orders-proxy"
COMMAND = (
    f"aws rds register-db-proxy-targets --db-proxy-name {PROXY} --target-group-name default"
    f" --db-instance-identifiers {DATABASE}"
)
REFUSAL = "InvalidDBInstanceState"
TARGET_TIMEOUT = 1.0  # BLUEGREEN_TARGET_TIMEOUT
OLD_BOUND = 4 * TARGET_TIMEOUT  # when compensation used to give up ("COMPENSATION FAILED")
BACKOFF_CAP = 0.3
ALERT_INTERVAL = 2.0
RUN_TIMEOUT = 60
SCALED = {
    "BLUEGREEN_TARGET_TIMEOUT": str(TARGET_TIMEOUT),
    "BLUEGREEN_COMPENSATION_BACKOFF_CAP": str(BACKOFF_CAP),
    "BLUEGREEN_DETACHED_ALERT_INTERVAL": str(ALERT_INTERVAL),
}


def refuse_registration(sandbox: Sandbox) -> None:
    sandbox.control.inject_fault("RegisterDBProxyTargets", REFUSAL, 100_000)


def compensating_for(store: Store, run_id: str) -> float:
    """Seconds the run has been compensating (0 when it is not)."""
    run = store.runs.get(run_id)
    started = (run.meta.get("compensation") or {}).get("started_at") if run else None
    return time.time() - started if run and run.status == "compensating" and started else 0.0


def instance_targets(rds, proxy: str = PROXY) -> list[dict]:
    targets = rds.describe_db_proxy_targets(DBProxyName=proxy, TargetGroupName="default")["Targets"]
    return [t for t in targets if t["Type"] == "RDS_INSTANCE"]


def message_key(message: Message) -> str:
    return str(((message.metadata or {}).get("event_payload") or {}).get("key", ""))


def alert_posts(slack: SlackStandIn, store: Store, run_id: str) -> list[Message]:
    """The run's alerts as posted in its thread (the sink tags each `alert:<number>`)."""
    return [m for m in run_thread(slack, store, run_id).replies if message_key(m).startswith("alert:")]


def alert_times(store: Store, run_id: str) -> dict[int, float]:
    """Alert number -> when the runner raised it (the audit log)."""
    return {
        e.detail["number"]: e.detail["at"] for e in store.audit.list(run_id=run_id) if e.action == "compensation:alert"
    }


def serve_env(tmp_path: Path, slack: SlackStandIn, sandbox: Sandbox) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BLUEGREEN_", "AWS_"))},
        **bot_environment(tmp_path, slack.base_url, extra=SCALED),
        "AWS_ENDPOINT_URL": sandbox.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
    }


async def create_in_process(slack: SlackStandIn, settings, sandbox: Sandbox) -> None:
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint)) as created_by:
        create = await start_run(slack, created_by.store, ALICE, "create orders-pg")
        assert (await created_by.engine.wait(create, within=RUN_TIMEOUT)).status == "succeeded"
        await asyncio.wait_for(created_by.sink.drain(), 10)


# ---------------------------------------------------------------- retried, alerted, across a restart, until AWS accepts


async def test_registration_refused_far_past_the_old_bound_is_retried_and_alerted_across_a_restart(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path, rds, zygote: Zygote
) -> None:
    env = serve_env(tmp_path, slack, sandbox)
    settings = make_settings(tmp_path, slack.base_url, extra=SCALED)
    with serve_processes(zygote, tmp_path) as start:
        first = start(env)
        await create_in_process(slack, settings, sandbox)
        await first.release()
        slack.app_url = f"{first.url}/slack/events"
        store = open_store(settings.db_path)
        try:
            run_id = await start_run(slack, store, ALICE, "switchover orders-pg")
            request_message = await approval_message(slack, store, run_id)
            since = last_seq(sandbox)
            refuse_registration(sandbox)
            second = start(env)  # released (forked) after the kill
            assert (await click_button(slack, request_message, BOB)).status == 200

            # The first process compensates and alerts twice; then it is killed.
            await slack.wait_for(
                lambda: compensating_for(store, run_id) and len(alert_posts(slack, store, run_id)) >= 2,
                timeout=RUN_TIMEOUT,
                description="two alerts from the first process",
            )
            assert store.locks.holder(f"db:{DATABASE}") == run_id and store.locks.holder(f"proxy:{PROXY}") == run_id
            first.send_signal(signal.SIGKILL)
            assert await first.exited() == -signal.SIGKILL
            killed_at = time.monotonic()
            alerts_before = max(alert_times(store, run_id))
            assert len(alert_posts(slack, store, run_id)) == alerts_before

            # The second process carries on: same thread, alerts numbered on, neither at once nor forgotten.
            await second.release()
            slack.app_url = f"{second.url}/slack/events"
            await slack.wait_for(
                lambda: (
                    len(alert_posts(slack, store, run_id)) >= alerts_before + 2
                    and compensating_for(store, run_id) > 2 * OLD_BOUND
                ),
                timeout=RUN_TIMEOUT,
                description="two alerts from the restarted process, past twice the old bound",
            )
            assert store.runs.get(run_id).status == "compensating"
            assert instance_targets(rds) == [], "the proxy was meant to be still without its target"
            assert store.locks.holder(f"db:{DATABASE}") == run_id and store.locks.holder(f"proxy:{PROXY}") == run_id

            sandbox.control.clear_faults()  # AWS accepts again
            await slack.wait_for(lambda: not store.runs.get(run_id).is_active, timeout=RUN_TIMEOUT, description="end")
            await slack.wait_for(
                lambda: run_thread(slack, store, run_id).replies_starting(f"Run {run_id} "),
                timeout=20,
                description="the summary in the thread",
            )
            final = store.runs.get(run_id)
            thread = run_thread(slack, store, run_id)
            times = alert_times(store, run_id)
            started = final.meta["compensation"]["started_at"]
            audit = [a.action for a in store.audit.list(run_id=run_id)]
        finally:
            store.close()

    # It ends as it would have: failed, with the original error; the proxy serves again, registered once.
    assert final.status == "failed"
    assert f"{PROXY} has no target" in (final.error or "") and "COMPENSATION FAILED" not in (final.error or "")
    assert_proxy_serves(rds, PROXY, DATABASE)
    assert successful_calls(sandbox, since).get("RegisterDBProxyTargets") == 1
    assert any(f"{PROXY} has its target again" in m.text and m.broadcast for m in thread.replies)
    assert audit.count("run:resumed") == 1 and audit[-1] == "run:failed", audit

    # Alerts: one post each, numbered across the restart, broadcast, mentioning the approvers (a user and a user
    # group), naming the proxy and the command; at the interval, and the first after the restart not at once.
    posts = [m for m in thread.replies if message_key(m).startswith("alert:")]
    assert [message_key(m) for m in posts] == [f"alert:{n}" for n in range(1, len(posts) + 1)]
    assert sorted(times) == list(range(1, len(posts) + 1)) and len(posts) >= alerts_before + 2
    for post in posts:
        rendered = post.text + json.dumps(post.blocks)
        assert post.broadcast, post.text
        assert f"<@{BOB}>" in rendered and f"<!subteam^{SRE_GROUP}>" in rendered, rendered
        assert PROXY in post.text and COMMAND in rendered and REFUSAL in rendered, rendered
        assert f"cancel {run_id} --abandon-proxy" in rendered
    moments = [started] + [times[n] for n in sorted(times)]
    assert all(b - a >= ALERT_INTERVAL for a, b in itertools.pairwise(moments)), moments

    # Registration was retried all along, by both processes, never more than the cap (plus a call) apart.
    to_wall = time.time() - time.monotonic()
    refused = [c["t"] for c in all_calls(sandbox, "RegisterDBProxyTargets", since) if c.get("code") == REFUSAL]
    by_first = [t for t in refused if t < killed_at]
    by_second = [t for t in refused if t > killed_at]
    timeline = sandbox.control.timeline(since=since)
    after_kill = [(c["action"], c.get("code"), round(c["t"] - killed_at, 2)) for c in timeline if c["kind"] == "call"]
    assert by_first and by_second, [c for c in after_kill if c[2] > 0][:30]  # seen once empty under heavy load
    assert max(by_second) + to_wall > started + OLD_BOUND  # where compensation used to give up
    for attempts in (by_first, by_second):
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert max(gaps) < BACKOFF_CAP + 1.5, gaps


# ---------------------------------------------------------------- --abandon-proxy


@pytest.fixture
async def compensating_engine(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[tuple[Engine, RecordingSink]]:
    settings = load_settings(engine_env(tmp_path / "bluegreen.db", **SCALED))
    store = open_store(settings.db_path)
    sink = RecordingSink()
    engine = Engine(store=store, settings=settings, sinks=[sink], gateways=sandbox_gateways(sandbox))
    yield engine, sink
    await engine.aclose()
    store.close()


async def switchover_stuck_compensating(engine: Engine, sandbox: Sandbox) -> tuple[RunRecord, int]:
    """Create, then a switchover whose registrations AWS refuses: returns the run once it is compensating, and the
    sandbox timeline's position before the switchover."""
    created = await engine.start(request("create", DATABASE, mode="workaround"))
    assert (await engine.wait(created.id, RUN_TIMEOUT)).status == "succeeded"
    since = last_seq(sandbox)
    run = await engine.start(request("switchover", DATABASE))
    pending = await pending_request(engine.store, run.id)
    refuse_registration(sandbox)
    await engine.approve(pending.id, APPROVER)
    await async_wait_until(lambda: compensating_for(engine.store, run.id), RUN_TIMEOUT, what="compensation")
    return engine.store.runs.get(run.id), since


async def test_abandon_proxy_from_the_cli_ends_the_compensation_and_is_audited(
    compensating_engine, sandbox: Sandbox, rds, tmp_path: Path, zygote: Zygote
) -> None:
    engine, sink = compensating_engine
    run, since = await switchover_stuck_compensating(engine, sandbox)
    with forked_bots(zygote, tmp_path) as start:
        cli = start(["cancel", run.id, "--abandon-proxy", "--as", "U0CAROL"], bot_env(sandbox, engine.settings.db_path))
        cli.release()
        code = await cli.ended()
        output = cli.output()
    assert code == 0, output
    assert PROXY in output and COMMAND in output, output

    final = await engine.wait(run.id, RUN_TIMEOUT)

    assert final.status == "failed"
    error = final.error or ""
    assert f"{PROXY} has no target" in error and f"{PROXY} abandoned by U0CAROL" in error, error
    entries = engine.store.audit.list(run_id=run.id)
    (requested,) = [e for e in entries if e.action == "run:abandon-proxy"]
    assert requested.actor == "U0CAROL" and requested.detail["proxies"] == [PROXY]
    assert requested.detail["commands"] == {PROXY: COMMAND}
    (applied,) = [e for e in entries if e.action == "compensation:abandoned"]
    assert applied.actor == "U0CAROL" and applied.detail["proxies"] == [PROXY]
    assert entries[-1].action == "run:failed"
    said = [n.text for n in sink.of(Notice) if n.broadcast]
    assert any(f"U0CAROL abandoned {PROXY}" in text and COMMAND in text for text in said), said
    # The bot stopped: nothing registered, the window closed as abandoned, the locks are free again.
    assert instance_targets(rds) == []
    assert "RegisterDBProxyTargets" not in successful_calls(sandbox, since)
    assert final.meta["detached"] == {} and final.meta["abandoned"][PROXY]["by"] == "U0CAROL"
    assert final.summary["windows"][PROXY]["abandoned_by"] == "U0CAROL"
    assert engine.store.locks.holder(f"db:{DATABASE}") is None


async def test_abandon_proxy_on_a_run_that_is_not_compensating_is_refused_and_changes_nothing(
    compensating_engine, sandbox: Sandbox, tmp_path: Path, zygote: Zygote
) -> None:
    engine, _ = compensating_engine
    created = await engine.start(request("create", DATABASE, mode="workaround"))
    assert (await engine.wait(created.id, RUN_TIMEOUT)).status == "succeeded"
    waiting = await engine.start(request("switchover", DATABASE))
    await pending_request(engine.store, waiting.id)

    with forked_bots(zygote, tmp_path) as start:
        env = bot_env(sandbox, engine.settings.db_path)
        on_waiting = start(["cancel", waiting.id, "--abandon-proxy", "--as", "U0CAROL"], env)
        on_ended = start(["cancel", created.id, "--abandon-proxy", "--as", "U0CAROL"], env)
        on_waiting.release()
        on_ended.release()
        codes = (await on_waiting.ended(), await on_ended.ended())
        outputs = (on_waiting.output(), on_ended.output())

    assert codes == (2, 2), outputs
    assert "not compensating" in outputs[0] and "Nothing changed" in outputs[0], outputs[0]
    assert "already ended" in outputs[1], outputs[1]
    with pytest.raises(BadRequest, match="not compensating"):
        await engine.cancel(waiting.id, "U0CAROL", abandon_proxy=True)
    after = engine.store.runs.get(waiting.id)
    assert after.status == "waiting_approval" and after.error is None
    assert "abandon_requested" not in after.meta and "cancel_requested" not in after.meta
    assert [e.action for e in engine.store.audit.list() if e.actor == "U0CAROL"] == []


@pytest.fixture
async def live(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    settings = make_settings(tmp_path, slack.base_url, extra=SCALED)
    async with serve_bot(slack, settings, sandbox_engine(sandbox.endpoint)) as served:
        yield served


async def ephemeral_reply(slack: SlackStandIn, user: str, count: int) -> dict:
    await slack.wait_for(lambda: len(slack.ephemerals(user)) >= count, timeout=10, description="ephemeral reply")
    return slack.ephemerals(user)[count - 1]


async def test_abandon_proxy_from_slack_replies_with_the_command_and_tells_the_thread_who(
    slack: SlackStandIn, live: Bot, sandbox: Sandbox, rds
) -> None:
    create = await start_run(slack, live.store, ALICE, "create orders-pg")
    assert (await live.engine.wait(create, within=RUN_TIMEOUT)).status == "succeeded"
    run_id = await start_run(slack, live.store, ALICE, "switchover orders-pg")
    request_message = await approval_message(slack, live.store, run_id)
    seen = len(slack.ephemerals(ALICE))
    # Not compensating yet (waiting for approval): refused, nothing changed.
    await slack.send_command(user_id=ALICE, text=f"cancel {run_id} --abandon-proxy", channel_id=OPS)
    refused = await ephemeral_reply(slack, ALICE, seen + 1)
    assert "not compensating" in refused["text"], refused
    assert "abandon_requested" not in live.store.runs.get(run_id).meta
    refuse_registration(sandbox)
    assert (await click_button(slack, request_message, BOB)).status == 200
    await slack.wait_for(lambda: compensating_for(live.store, run_id), timeout=RUN_TIMEOUT, description="compensating")

    await slack.send_command(user_id=ALICE, text=f"cancel {run_id} \u2014abandon-proxy", channel_id=OPS)
    reply = await ephemeral_reply(slack, ALICE, seen + 2)
    final = await live.engine.wait(run_id, within=RUN_TIMEOUT)
    await asyncio.wait_for(live.sink.drain(), 20)

    rendered = reply["text"] + json.dumps(reply["blocks"])
    assert "Abandoned" in rendered and PROXY in rendered and COMMAND in rendered, rendered
    assert final.status == "failed" and f"{PROXY} abandoned by {ALICE}" in (final.error or "")
    (audited,) = [e for e in live.store.audit.list(run_id=run_id) if e.action == "run:abandon-proxy"]
    assert audited.actor == ALICE and audited.detail["proxies"] == [PROXY]
    thread = run_thread(slack, live.store, run_id)
    told = [m for m in thread.replies if f"{ALICE} abandoned {PROXY}" in m.text]
    assert len(told) == 1 and told[0].broadcast and COMMAND in told[0].text, [m.text for m in thread.replies]
    assert instance_targets(rds) == []


# ---------------------------------------------------------------- settings, grammar, Block Kit


@pytest.mark.parametrize("name", ["BLUEGREEN_COMPENSATION_BACKOFF_CAP", "BLUEGREEN_DETACHED_ALERT_INTERVAL"])
@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "nan", "inf", "soon"])
def test_the_backoff_cap_and_the_alert_interval_must_be_positive(name: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(engine_env(tmp_path / "x.db", **{name: value}))


def test_the_backoff_cap_and_the_alert_interval_default_and_accept_fractions(tmp_path: Path) -> None:
    defaults = load_settings(engine_env(tmp_path / "x.db")).environment()
    assert (defaults.compensation_backoff_cap, defaults.detached_alert_interval) == (60.0, 600.0)
    scaled = load_settings(engine_env(tmp_path / "x.db", **SCALED)).environment()
    assert (scaled.compensation_backoff_cap, scaled.detached_alert_interval) == (BACKOFF_CAP, ALERT_INTERVAL)


def test_cancel_takes_abandon_proxy_and_only_cancel_does() -> None:
    assert parse_command("cancel r-1a2b3c4d --abandon-proxy") == ParsedCommand(
        "cancel", run_id="r-1a2b3c4d", abandon_proxy=True
    )
    assert parse_command("cancel r-1a2b3c4d") == ParsedCommand("cancel", run_id="r-1a2b3c4d")
    for text, message in [
        ("switchover orders-pg --abandon-proxy", "does not apply to `switchover`"),
        ("cancel r-1a2b3c4d --abandon-proxy=yes", "takes no value"),
        ("cancel r-1a2b3c4d --abandon-proxy --abandon-proxy", "given twice"),
    ]:
        with pytest.raises(BadRequest, match=message):
            parse_command(text)


def test_the_alert_mentions_users_and_groups_and_names_proxy_command_and_way_out() -> None:
    run = RunRecord(
        id="r-1a2b3c4d", kind="switchover", database=DATABASE, params={}, strategy="workaround",
        status="compensating", requester=ALICE, environment="production", channel=OPS, plan_version=1,
        plan_fingerprint=None, created_at=0.0, updated_at=0.0, finished_at=None, error=None, summary={}, meta={},
    )  # fmt: skip
    proxy = DetachedProxy(PROXY, DATABASE, 100.0, 7, f"{REFUSAL}: <not now>", COMMAND)

    message = detached_alert(run, 3, [proxy], [BOB, SRE_GROUP], 600.0, now=100.0 + 725)

    rendered = json.dumps(message.as_kwargs())  # builds every block: Slack's limits are checked here
    assert f"<@{BOB}>" in message.text and f"<!subteam^{SRE_GROUP}>" in message.text
    assert f"<@{BOB}>" in rendered and f"<!subteam^{SRE_GROUP}>" in rendered
    assert PROXY in message.text and COMMAND in rendered and "12m 05s" in rendered
    assert "&lt;not now&gt;" in rendered  # AWS's text is escaped, not markup
    assert "/bluegreen cancel r-1a2b3c4d --abandon-proxy" in rendered and "alert 3" in rendered
