"""The SIGTERM matrix: the bot sent SIGTERM (as Kubernetes and Heroku do before every restart) at every step boundary
of a workaround `create` and a workaround `switchover`, then the run carried on by the next process.

Which processes: a real CLI process (`python -m bot create|switchover ...`) for every boundary (17 cases); a real
`python -m bot serve` process, driven through the Slack stand-in, only for the two boundaries inside the detached
window (after the deregistration step, after the switchover call), where the thread must say what happened: a serve
process costs about twice a CLI one. The SIGTERM comes from the process itself at the boundary
(`BLUEGREEN_FAILPOINT=<boundary>:sigterm`, bot/workflow/failpoints.py), except in the lease test, where the test
sends it from outside while the run waits for its approval (and then stops a `python -m bot resume` too).

Each case asserts that the proxy has its target again within the grace period (AWS's own timeline), that the
process exits 0, that the console (CLI) or the thread (serve) says what happened, that no mutation is sent twice
(the sandbox's timeline: a registration only follows a deregistration and the other way round; the creation and the
switchover once), and that the run finishes correctly after the restart. The next process is an engine in the test
process whose owner is on another host: it claims the run only because the stopped process released its lease (a
claim on this host would also succeed through the dead-pid check). The grace running out and a second SIGTERM are
checked with a registration AWS keeps refusing.

Cost: the CLI and serve processes are forked from one warm interpreter per worker (tests/process_fixtures.py), so
each pays its run and not the bot's imports, and a switchover's deployment is made with three API calls rather than a
bot run. The whole file takes about 27 s of CPU beyond collection (test process and children together, measured
serially; each further xdist worker adds its own zygote, about 1 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import load_settings
from bot.planning.plan import Plan
from bot.workflow.engine import Engine
from handlers.after_ack import AfterAck
from handlers.ids import CreateModalCallbacks
from sandbox.aws import Sandbox
from sandbox.slack import SlackStandIn
from sandbox.waiting import async_wait_until
from storage import RunRecord, Store, open_store
from tests.bot_fixtures import (
    FakeEngine,
    bot_environment,
    bot_fixture,  # noqa: F401  (the `bot` fixture)
    make_settings,
    serve_bot,
    serve_processes,
)
from tests.engine_fixtures import REQUESTER, RecordingSink, sandbox_gateways
from tests.matrix_fixtures import (
    DATABASE,
    TARGET_VERSION,
    Boundary,
    all_calls,
    approving,
    assert_created,
    assert_proxy_serves,
    assert_switched,
    audited_mutations,
    bot_env,
    boundaries,
    deployment_named,
    expected_mutations,
    instance,
    last_seq,
    matrix_plans,
    mutations_of,
    proxy_target_states,
    successful_calls,
)
from tests.process_fixtures import Zygote, forked_bots, zygote_fixture  # noqa: F401  (the `zygote` fixture)
from tests.slack_fixtures import (
    ALICE,
    BOB,
    OPS,
    approval_message,
    click_button,
    run_thread,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

PLANS = matrix_plans()
PROXY = "orders-proxy"
GRACE = 10.0  # seconds; every critical section here takes well under one with the sandbox's fast durations
SUCCESSOR = "successor.example:4242:sigterm"  # another host: no dead-pid shortcut when claiming
DEPLOYMENT = "bg-sigterm-matrix"
PIVOT = {"create": "CreateBlueGreenDeployment", "switchover": "SwitchoverBlueGreenDeployment"}
REGISTERED_AGAIN, FINISHED_FIRST, STOPPED, COMPLETED = "registered again", "finished first", "stopped", "completed"
SAYS = {
    REGISTERED_AGAIN: f"Shutting down: registered {DATABASE} with {PROXY} again before",
    FINISHED_FIRST: "Shutting down: finished “",
    STOPPED: "Shutting down: the run stops at “",
    COMPLETED: "finished: succeeded",  # the console's summary line
}
RUN_TIMEOUT = 60


@dataclass(frozen=True)
class SigtermCase:
    kind: str  # "create" | "switchover"
    boundary: Boundary
    plan: Plan

    @property
    def failpoint(self) -> str:
        return f"{self.boundary.failpoint}:sigterm"

    @property
    def outcome(self) -> str:
        """What the process does with the run before it exits: with a proxy detached, it gives the target back
        (before the mutation it was detached for) or completes the steps that do (after it); else it stops at once.
        A run whose remaining steps are all completed that way ends in this process."""
        order = [b.failpoint for b in boundaries(self.plan)]
        after_pivot = order.index(self.boundary.failpoint) >= order.index(f"after-call:{PIVOT[self.kind]}")
        rest = self.plan.steps[_step_index(self.plan, self.boundary.failpoint) + 1 :]
        if not rest or (self.boundary.detached and after_pivot and all(s.kind == "reattach" for s in rest)):
            return COMPLETED
        if not self.boundary.detached:
            return STOPPED
        return FINISHED_FIRST if after_pivot else REGISTERED_AGAIN

    def expected_mutations(self) -> dict[str, int]:
        expected = expected_mutations(self.plan)
        if self.outcome == REGISTERED_AGAIN:  # given back at the shutdown, deregistered again by the next process
            for action in ("DeregisterDBProxyTargets", "RegisterDBProxyTargets"):
                expected[action] += 1
        return expected


def _step_index(plan: Plan, failpoint: str) -> int:
    """The step a boundary belongs to: after one of its mutations, or after the step itself."""
    for index, spec in enumerate(plan.steps):
        if failpoint in {f"after-call:{action}" for action in mutations_of(spec)} | {f"after-step:{spec.kind}"}:
            return index
    raise AssertionError(f"{failpoint} is no boundary of the plan")


def sigterm_cases() -> list[pytest.ParameterSet]:
    return [
        pytest.param(SigtermCase(kind, b, PLANS[kind, "workaround"]), id=f"{kind}-{b.failpoint}")
        for kind in ("create", "switchover")
        for b in boundaries(PLANS[kind, "workaround"])
    ]


def serve_cases() -> list[pytest.ParameterSet]:
    plan = PLANS["switchover", "workaround"]
    inside = {"after-step:detach", "after-call:SwitchoverBlueGreenDeployment"}
    return [
        pytest.param(SigtermCase("switchover", b, plan), id=f"serve-switchover-{b.failpoint}")
        for b in boundaries(plan)
        if b.failpoint in inside
    ]


# ---------------------------------------------------------------- the CLI, at every boundary


@pytest.mark.parametrize("case", sigterm_cases())
async def test_sigterm_at_a_step_boundary_hands_the_run_over_cleanly(
    case: SigtermCase,
    engine: Engine,
    store: Store,
    sandbox: Sandbox,
    rds: Any,
    settings,
    tmp_path: Path,
    zygote: Zygote,
) -> None:
    args = [case.kind, DATABASE, "--mode", "workaround", "--as", REQUESTER]
    with forked_bots(zygote, tmp_path) as start:
        stopping = start(
            args + (["--engine-version", TARGET_VERSION] if case.kind == "create" else []),
            bot_env(sandbox, settings.db_path, case.failpoint, BLUEGREEN_SHUTDOWN_GRACE=str(GRACE)),
        )
        if case.kind == "switchover":
            await _deployment_to_switch_over(rds)
        since = last_seq(sandbox)
        async with approving(store, engine):
            stopping.release()
            code = await stopping.ended()
            output = stopping.output()
            (run,) = store.runs.list(limit=5)
            assert code == 0, output
            _assert_handed_over(store, sandbox, rds, run, since)
            assert SAYS[case.outcome] in output, output
            final = await _carried_on(store, settings, sandbox, run)

    assert final.status == "succeeded", (final.error, output)
    assert {s.status for s in store.steps.list(run.id)} == {"done"}
    assert_proxy_serves(rds, PROXY, DATABASE)
    if case.kind == "create":
        assert_created(rds, final.meta["deployment_name"])
    else:
        assert_switched(rds, DEPLOYMENT)
    _assert_nothing_sent_twice(sandbox, since, case.expected_mutations())
    assert audited_mutations(store, run.id) == case.expected_mutations()


async def _deployment_to_switch_over(rds: Any) -> None:
    """An AVAILABLE deployment of the database at the target version, tagged as the bot tags its own, made the
    runbook's way (the legacy sandbox refuses one for a proxy target): cheaper than a bot run."""
    source = instance(rds, DATABASE)["DBInstanceArn"]
    target = {"DBProxyName": PROXY, "TargetGroupName": "default", "DBInstanceIdentifiers": [DATABASE]}
    rds.deregister_db_proxy_targets(**target)
    rds.create_blue_green_deployment(
        BlueGreenDeploymentName=DEPLOYMENT,
        Source=source,
        TargetEngineVersion=TARGET_VERSION,
        Tags=[{"Key": "bluegreen-bot:strategy", "Value": "workaround"}],
    )

    def registered() -> bool:
        with contextlib.suppress(rds.exceptions.InvalidDBInstanceStateFault):
            rds.register_db_proxy_targets(**target)
            return True
        return False

    await async_wait_until(registered, RUN_TIMEOUT, what=f"{DATABASE} registered with {PROXY} again")

    def ready() -> bool:
        deployment = deployment_named(rds, DEPLOYMENT)
        return deployment["Status"] == "AVAILABLE" and proxy_target_states(rds, PROXY).get(DATABASE) == "AVAILABLE"

    await async_wait_until(ready, RUN_TIMEOUT, what="the deployment AVAILABLE and the proxy serving")


def _assert_handed_over(store: Store, sandbox: Sandbox, rds: Any, run: RunRecord, since: int) -> None:
    """At the exit: the proxy serves, it got its target back within the grace, and the lease is free."""
    assert_proxy_serves(rds, PROXY, DATABASE)
    (shutdown,) = store.audit.list(action="bot:shutdown")
    back = _available_again_at(sandbox, since)
    assert back is not None and back <= shutdown.at + GRACE, (back, shutdown.at)
    assert store.leases.get(run.id) is None, "the stopped process kept its lease"


async def _carried_on(store: Store, settings, sandbox: Sandbox, run: RunRecord) -> RunRecord:
    """The next process (another host) takes the run over at once and drives it to its end."""
    if not store.runs.get(run.id).is_active:
        return store.runs.get(run.id)
    successor = Engine(
        store=store, settings=settings, sinks=[RecordingSink()], gateways=sandbox_gateways(sandbox), owner=SUCCESSOR
    )
    try:
        assert await successor.resume_unfinished() == [run.id], "the stopped process's lease was not released"
        return await successor.wait(run.id, within=RUN_TIMEOUT)
    finally:
        await successor.aclose()


def _available_again_at(sandbox: Sandbox, since: int) -> float | None:
    """When AWS last showed the database become AVAILABLE on the proxy, as wall-clock time: 0.0 if its target never
    changed since `since` (never detached), None if it changed and never became AVAILABLE again."""
    to_wall = time.time() - time.monotonic()
    resource = f"proxy-target:{PROXY}/default/{DATABASE}"
    states = [
        (entry["t"] + to_wall, entry["state"])
        for entry in sandbox.control.timeline(since=since)
        if entry["kind"] == "transition" and entry.get("resource") == resource
    ]
    if not states:
        return 0.0
    return next((t for t, state in reversed(states) if state == "AVAILABLE"), None)


def _assert_nothing_sent_twice(sandbox: Sandbox, since: int, expected: dict[str, int]) -> None:
    assert successful_calls(sandbox, since) == expected
    changes = [
        c["action"]
        for c in sandbox.control.timeline(since=since)
        if c["kind"] == "call"
        and c.get("code") is None
        and c["action"].endswith("DBProxyTargets")
        and "Describe" not in c["action"]
    ]
    alternating = ["DeregisterDBProxyTargets", "RegisterDBProxyTargets"] * (len(changes) // 2)
    assert changes == alternating, f"a (de)registration was sent twice in a row: {changes}"
    for action in PIVOT.values():
        assert len(all_calls(sandbox, action, since)) == expected.get(action, 0), f"{action} was sent again"


# ---------------------------------------------------------------- `python -m bot serve`, inside the detached window


@pytest.mark.parametrize("case", serve_cases())
async def test_serve_sigterm_inside_the_detached_window_tells_the_thread_and_the_run_resumes(
    case: SigtermCase, slack: SlackStandIn, sandbox: Sandbox, rds: Any, tmp_path: Path, zygote: Zygote
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BLUEGREEN_", "AWS_"))},
        **bot_environment(tmp_path, slack.base_url),
        "AWS_ENDPOINT_URL": sandbox.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "BLUEGREEN_SHUTDOWN_GRACE": str(GRACE),
        "BLUEGREEN_FAILPOINT": case.failpoint,
    }
    settings = make_settings(tmp_path, slack.base_url)
    store = open_store(settings.db_path)
    with serve_processes(zygote, tmp_path) as start:
        serving = start(env)
        await _deployment_to_switch_over(rds)
        since = last_seq(sandbox)
        await serving.release()
        slack.app_url = f"{serving.url}/slack/events"
        try:
            run_id = await start_run(slack, store, ALICE, f"switchover {DATABASE}")
            assert (await click_button(slack, await approval_message(slack, store, run_id), BOB)).status == 200
            assert await serving.exited() == 0, serving.output()
            run = store.runs.get(run_id)
            _assert_handed_over(store, sandbox, rds, run, since)
            said = [m.text for m in run_thread(slack, store, run_id).replies]
            told = [text for text in said if text.startswith("Shutting down:")]
            if case.outcome == COMPLETED:  # the switchover AWS had started, and the registration: the run's end
                assert told == [] and any(text.startswith(f"Run {run_id} ") for text in said), said
            else:
                assert len(told) == 1 and told[0].startswith(SAYS[case.outcome]), said

            async with serve_bot(slack, settings, _successor_engine(sandbox)) as successor:
                if store.runs.get(run_id).is_active:
                    assert await successor.engine.resume_unfinished() == [run_id]
                final = await successor.engine.wait(run_id, within=RUN_TIMEOUT)
                await asyncio.wait_for(successor.sink.drain(), 20)
            thread = run_thread(slack, store, run_id)
            _assert_posted_once_per_attempt(slack, store, run_id)
        finally:
            store.close()

    assert final.status == "succeeded", final.error
    assert_proxy_serves(rds, PROXY, DATABASE)
    assert [m.text for m in thread.replies if m.text.startswith(f"Run {run_id} ")], "no summary in the thread"
    _assert_nothing_sent_twice(sandbox, since, case.expected_mutations())


def _assert_posted_once_per_attempt(slack: SlackStandIn, store: Store, run_id: str) -> None:
    """One thread for the run, and no reply in it posted more often than what it reports happened: a step redone
    after the shutdown (the deregistration) reports once per attempt, anything else once."""
    parents = [m for m in slack.messages(OPS) if m.thread_ts in (None, m.ts) and run_id in m.text]
    assert len(parents) == 1, [m.text for m in parents]
    attempts = {f"{step.title}: ": step.attempts for step in store.steps.list(run_id)}
    texts = Counter(reply.text for reply in run_thread(slack, store, run_id).replies)
    for text, count in texts.items():
        allowed = max((n for prefix, n in attempts.items() if text.startswith(prefix)), default=1)
        assert count <= allowed, f"posted {count} times: {text[:120]}"


def _successor_engine(sandbox: Sandbox):
    def factory(store: Store, settings, sinks: list[Any], approvers) -> Engine:
        return Engine(
            store=store,
            settings=settings,
            sinks=sinks,
            approver_check=approvers.approver_check,
            gateways=sandbox_gateways(sandbox),
            owner=SUCCESSOR,
        )

    return factory


# ---------------------------------------------------------------- leases, the grace, a second SIGTERM


async def test_a_clean_sigterm_exit_releases_the_lease_so_a_second_process_claims_at_once(
    engine: Engine, store: Store, sandbox: Sandbox, rds: Any, settings, tmp_path: Path, zygote: Zygote
) -> None:
    """SIGTERM from outside while the run waits for its approval: it stops at once (no proxy detached) and gives its
    lease up. `python -m bot resume` takes the run over at once and is stopped the same way after the approval;
    then a process on another host takes it over at once and finishes it."""
    env = bot_env(sandbox, settings.db_path, BLUEGREEN_SHUTDOWN_GRACE=str(GRACE))
    with forked_bots(zygote, tmp_path) as start:
        first = start(["switchover", DATABASE, "--mode", "workaround", "--as", REQUESTER], env)
        await _deployment_to_switch_over(rds)
        first.release()
        pending = await async_wait_until(
            lambda: next((r for r in store.runs.list(active_only=True) if r.status == "waiting_approval"), None),
            RUN_TIMEOUT,
            what="the switchover waiting for its approval",
        )
        lease = store.leases.get(pending.id)
        assert lease is not None and lease.expires_at > time.time() + 5  # live: only a release frees it now
        first.send_signal(signal.SIGTERM)
        assert await first.ended() == 0, first.output()
        assert "Shutting down: the run stops at “Approval by a second person” with no proxy detached" in first.output()
        assert store.leases.get(pending.id) is None and store.runs.get(pending.id).is_active

        second = start(["resume"], {**env, "BLUEGREEN_FAILPOINT": "after-step:approval:sigterm"})
        async with approving(store, engine):
            second.release()
            assert await second.ended() == 0, second.output()
            assert f"resuming 1 run(s): {pending.id}" in second.output()
            assert "Shutting down: the run stops at “Maintenance window” with no proxy detached" in second.output()
            assert store.leases.get(pending.id) is None
            final = await _carried_on(store, settings, sandbox, pending)

    assert final.status == "succeeded", final.error
    assert_switched(rds, DEPLOYMENT)
    assert_proxy_serves(rds, PROXY, DATABASE)


@pytest.mark.parametrize("ending", ["grace-runs-out", "second-sigterm"])
async def test_the_grace_running_out_or_a_second_sigterm_stops_it_and_the_next_process_finishes(
    ending: str, engine: Engine, store: Store, sandbox: Sandbox, rds: Any, settings, tmp_path: Path, zygote: Zygote
) -> None:
    """AWS keeps refusing the registration at shutdown: the process stops anyway, saying so, and the next one
    registers the target as the run's own steps do."""
    grace = 1.0 if ending == "grace-runs-out" else 60.0
    with forked_bots(zygote, tmp_path) as start:
        stopping = start(
            ["switchover", DATABASE, "--mode", "workaround", "--as", REQUESTER],
            bot_env(sandbox, settings.db_path, "after-step:detach:sigterm", BLUEGREEN_SHUTDOWN_GRACE=str(grace)),
        )
        await _deployment_to_switch_over(rds)
        since = last_seq(sandbox)
        sandbox.control.inject_fault("RegisterDBProxyTargets", "InvalidDBInstanceState", count=100_000)
        async with approving(store, engine):
            stopping.release()
            if ending == "second-sigterm":
                await async_wait_until(
                    lambda: all_calls(sandbox, "RegisterDBProxyTargets", since),
                    RUN_TIMEOUT,
                    what="the registration at shutdown, refused",
                )
                stopping.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = await stopping.ended()
            output = stopping.output()
            assert time.monotonic() - started < 30, "the process did not stop before its grace"
            (run,) = [r for r in store.runs.list(active_only=True)]
            sandbox.control.clear_faults()
            final = await _carried_on(store, settings, sandbox, run)

    reason = "the grace period (1 s) ran out" if ending == "grace-runs-out" else "a second SIGTERM arrived"
    assert code == 1, output
    assert f"Shutting down: {reason} while {PROXY} had no target" in output, output
    assert final.status == "succeeded", final.error
    assert_switched(rds, DEPLOYMENT)
    assert_proxy_serves(rds, PROXY, DATABASE)
    _assert_nothing_sent_twice(sandbox, since, expected_mutations(PLANS["switchover", "workaround"]))


# ---------------------------------------------------------------- the Slack front while restarting


async def test_while_restarting_commands_clicks_and_submissions_are_answered_and_start_nothing(
    bot, slack: SlackStandIn
) -> None:
    assert isinstance(bot.engine, FakeEngine)
    bot.engine.shutting_down = True  # as Engine.shutting_down from the first SIGTERM on

    command = await slack.send_command(user_id=ALICE, text=f"switchover {DATABASE}", channel_id=OPS)
    assert command.status == 200 and command.json and command.json["response_type"] == "ephemeral", command.body
    assert "restarting" in command.json["text"] and "Try again in a minute" in command.body

    posted = await bot.client.chat_postMessage(channel=OPS, text="an approval request")  # a message to click on
    click = await slack.click(
        user_id=BOB,
        action_id="approve",
        value="x",
        channel_id=OPS,
        message_ts=posted["ts"],
        block_id="approval-buttons",
    )
    assert click.status == 200
    await slack.wait_for(
        lambda: [e for e in slack.ephemerals(BOB) if "restarting" in e.get("text", "")],
        timeout=10,
        description="the ephemeral answer to the click",
    )
    view = {
        "type": "modal",
        "callback_id": CreateModalCallbacks.submit.value,
        "private_metadata": f'{{"channel": "{OPS}"}}',
    }
    submission = await slack.submit_view(user_id=ALICE, view=view, values={})
    assert submission.status == 200 and submission.json and submission.json["response_action"] == "errors"
    assert "restarting" in json.dumps(submission.json["errors"])
    assert bot.engine.called("start") == [] and bot.engine.called("approve") == []

    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as health:
        assert health.status == 503


async def test_after_ack_drain_waits_for_queued_answers_and_gives_up_at_its_timeout() -> None:
    after_ack = AfterAck(slots=1)
    done: list[int] = []

    async def answer(n: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        done.append(n)

    after_ack.spawn(answer(1, 0.05))
    after_ack.spawn(answer(2, 0.05))  # queued behind the only slot
    assert await after_ack.drain(timeout=5) is True
    assert done == [1, 2]
    after_ack.spawn(answer(3, 5))
    assert await after_ack.drain(timeout=0.1) is False


def test_the_shutdown_grace_is_a_validated_setting(tmp_path: Path) -> None:
    from bot.config import ConfigError
    from tests.engine_fixtures import engine_env

    assert load_settings(engine_env(tmp_path / "x.db")).shutdown_grace == 20.0
    assert load_settings(engine_env(tmp_path / "x.db", BLUEGREEN_SHUTDOWN_GRACE="5")).shutdown_grace == 5.0
    with pytest.raises(ConfigError, match="BLUEGREEN_SHUTDOWN_GRACE"):
        load_settings(engine_env(tmp_path / "x.db", BLUEGREEN_SHUTDOWN_GRACE="soon"))
    with pytest.raises(ConfigError, match="BLUEGREEN_SHUTDOWN_GRACE"):
        load_settings(engine_env(tmp_path / "x.db", BLUEGREEN_SHUTDOWN_GRACE="-1"))
