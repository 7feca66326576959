"""`/metrics`, `/healthz` and `/readyz`: the app wired as `handlers.app.bot_runtime` wires it, served over HTTP
against the sandbox AWS and the Slack stand-in, and `python -m bot serve --socket` as a real process connected to
the stand-in's Socket Mode, serving its METRICS_PORT listener.

The counts are compared with what the other side saw: the sandbox's timeline of AWS calls and the stand-in's
recorded Web API calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from bot.aws.faults import translate
from bot.config import ConfigError, Settings, load_settings
from bot.errors import AccessDenied, AwsError
from bot.workflow.metrics import BotMetrics, aws_outcome
from bot.workflow.readyz import Readiness
from handlers.after_ack import AfterAck
from handlers.app import build_app, build_client, build_web_app
from handlers.approvers import ApproverResolver
from handlers.health import instrumented_session, readiness_for, start_listener
from handlers.thread.sink import SlackThreadSink
from sandbox.aws import Sandbox
from sandbox.slack import SlackStandIn
from sandbox.waiting import WaitTimeout, async_wait_until
from storage import Store, open_store
from tests.bot_fixtures import REPO, bot_environment, free_port, make_settings, sandbox_engine
from tests.slack_fixtures import (
    ALICE,
    BOB,
    BOT_TOKEN,
    SIGNING_SECRET,
    approval_message,
    click_button,
    run_thread,
    slack_fixture,  # noqa: F401  (the `slack` fixture)
    start_run,
)

RUN_TIMEOUT = 60
DETACH = "DeregisterDBProxyTargets"


@dataclass
class Served:
    store: Store
    engine: Any
    sink: SlackThreadSink
    after_ack: AfterAck
    metrics: BotMetrics
    readiness: Readiness
    url: str


@contextlib.asynccontextmanager
async def serve_instrumented(slack: SlackStandIn, settings: Settings, aws_endpoint: str) -> AsyncIterator[Served]:
    """The production wiring of `bot_runtime` (metrics sink, AWS observer, timed Slack session, readiness), minus
    the signal handling, served on a free port with the stand-in pointed at it."""
    store = open_store(settings.db_path)
    metrics = BotMetrics(store)
    session = instrumented_session(metrics)
    client = build_client(settings, session=session)
    approvers = ApproverResolver(client)
    sink = SlackThreadSink(client, store, edit_interval=0.05, retry_delays=(0.05, 0.1, 0.2), settings=settings)
    engine = sandbox_engine(aws_endpoint)(store, settings, [sink, metrics], approvers)
    engine.gateways.observe(metrics.aws_call)
    sink.report_to(engine)
    after_ack = AfterAck()
    metrics.watch_queue(lambda: after_ack.pending)
    app = build_app(engine, settings, client=client, approvers=approvers, after_ack=after_ack)
    readiness = readiness_for(store, settings, engine, metrics, client)
    runner = web.AppRunner(build_web_app(app, engine, metrics=metrics, readiness=readiness), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    slack.app_url = f"http://127.0.0.1:{port}/slack/events"
    try:
        yield Served(store, engine, sink, after_ack, metrics, readiness, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
        await engine.aclose()
        await sink.aclose(grace=2)
        await session.close()
        store.close()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


def samples(text: str) -> list[Any]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        s.value for s in samples(text) if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def by_label(text: str, name: str, label: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for s in samples(text):
        if s.name == name:
            counts[s.labels[label]] += int(s.value)
    return counts


def timeline_calls(sandbox: Sandbox) -> Counter[str]:
    return Counter(e["action"] for e in sandbox.control.timeline() if e["kind"] == "call")


def web_api_calls(slack: SlackStandIn) -> Counter[str]:
    return Counter(c.method for c in slack.calls() if c.method != "response_url")


# ---------------------------------------------------------------- HTTP mode


async def test_metrics_after_a_run_match_the_sandbox_timeline_and_the_standin(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, slack.base_url)
    async with serve_instrumented(slack, settings, sandbox.endpoint) as bot:
        slack.fail_next("chat.postMessage", status=429, retry_after=1)  # the run's parent message, sent again
        run_id = await start_run(slack, bot.store, ALICE, "create orders-pg")
        finished = await bot.engine.wait(run_id, within=RUN_TIMEOUT)
        assert finished.status == "succeeded"
        await asyncio.wait_for(bot.sink.drain(), 20)
        assert await bot.after_ack.drain(10)
        status, text = await get(f"{bot.url}/metrics")
        aws_seen, slack_seen = timeline_calls(sandbox), web_api_calls(slack)
        windows = bot.store.runs.get(run_id).summary["windows"]
    assert status == 200

    strategy = finished.strategy or "none"
    assert total(text, "bluegreen_runs_started_total", kind="create") == 1, text  # may start native, then fall back
    assert total(text, "bluegreen_runs_finished_total", kind="create", strategy=strategy, outcome="succeeded") == 1
    assert total(text, "bluegreen_runs_active") == 0
    assert total(text, "bluegreen_runs_compensating") == 0
    assert total(text, "bluegreen_approvals_pending") == 0
    assert total(text, "bluegreen_after_ack_queue_depth") == 0

    # The detached window, as the run recorded it (one per proxy it detached).
    assert windows and aws_seen[DETACH] == len(windows)
    for proxy, window in windows.items():
        assert total(text, "bluegreen_proxy_detached_seconds_count", proxy=proxy) == 1
        assert total(text, "bluegreen_proxy_detached_seconds_sum", proxy=proxy) == pytest.approx(window["seconds"])
        assert total(text, "bluegreen_proxy_detached_overhead_seconds_sum", proxy=proxy) == pytest.approx(
            window["overhead_seconds"]
        )

    # Every AWS call the sandbox received, by action (no fault injected: one HTTP request per call).
    assert by_label(text, "bluegreen_aws_calls_total", "action") == aws_seen
    assert total(text, "bluegreen_aws_calls_total", environment="production", action=DETACH, outcome="ok") == 1

    # Every Web API request the stand-in received, by method, the 429 among them.
    assert by_label(text, "bluegreen_slack_calls_total", "method") == slack_seen
    rate_limited = sum(1 for c in slack.calls("chat.postMessage") if c.status == 429)
    assert rate_limited == 1
    assert total(text, "bluegreen_slack_calls_total", method="chat.postMessage", outcome="rate_limited") == 1
    assert (
        total(text, "bluegreen_slack_call_seconds_count", method="chat.postMessage") == slack_seen["chat.postMessage"]
    )


async def test_a_refused_aws_call_is_counted_once_with_its_outcome(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, slack.base_url)
    sandbox.control.inject_fault("DescribeDBProxies", "AccessDenied", count=1, status=403)  # botocore won't retry
    async with serve_instrumented(slack, settings, sandbox.endpoint) as bot:
        gateway = bot.engine.gateways.get(settings.environment("production"))
        with pytest.raises(AccessDenied):
            await gateway.ping()
        await gateway.ping()
        _, text = await get(f"{bot.url}/metrics")
    assert timeline_calls(sandbox)["DescribeDBProxies"] == 2
    assert total(text, "bluegreen_aws_calls_total", action="DescribeDBProxies", outcome="error") == 1, text
    assert total(text, "bluegreen_aws_calls_total", action="DescribeDBProxies", outcome="ok") == 1, text
    assert total(text, "bluegreen_aws_call_seconds_count", action="DescribeDBProxies") == 2


def aws_failure(code: str, status: int) -> AwsError:
    """The error `AwsGateway._call` raises when AWS answers `code` after botocore's retries."""
    response = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return translate(ClientError(response, "DescribeDBProxies"), "DescribeDBProxies", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        # Still throttled once botocore's retries are spent (an end-to-end version waits out botocore's backoff,
        # several seconds: the codes are the ones botocore itself treats as throttling).
        (aws_failure("Throttling", 400), "throttled"),
        (aws_failure("ThrottlingException", 400), "throttled"),
        (aws_failure("RequestLimitExceeded", 503), "throttled"),
        (aws_failure("AccessDenied", 403), "error"),
        (
            AwsError("lost", code="EndpointConnectionError", action="DescribeDBProxies", http_status=599),
            "connection_error",
        ),
        (asyncio.CancelledError(), "cancelled"),
        (RuntimeError("a bug"), "error"),
    ],
)
def test_aws_call_outcomes_are_bounded_labels(error: BaseException | None, outcome: str) -> None:
    metrics = BotMetrics()
    metrics.aws_call("production", "DescribeDBProxies", error, 0.01)
    text = metrics.render().decode()
    assert total(text, "bluegreen_aws_calls_total", outcome=outcome) == 1, text
    assert aws_outcome(error) == outcome


# ---------------------------------------------------------------- /readyz and /healthz


async def test_readyz_is_ready_and_cached_so_probes_cost_no_aws_or_slack_calls(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with serve_instrumented(slack, make_settings(tmp_path, slack.base_url), sandbox.endpoint) as bot:
        first = await get(f"{bot.url}/readyz")
        aws_after_first, slack_after_first = timeline_calls(sandbox), web_api_calls(slack)
        for _ in range(5):
            assert (await get(f"{bot.url}/readyz"))[0] == 200
        assert timeline_calls(sandbox) == aws_after_first
        assert web_api_calls(slack) == slack_after_first
    assert first[0] == 200, first[1]
    assert aws_after_first["DescribeDBProxies"] == 1 and slack_after_first["auth.test"] == 1


async def test_readyz_fails_when_the_database_is_read_only(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with serve_instrumented(slack, make_settings(tmp_path, slack.base_url), sandbox.endpoint) as bot:
        assert (await get(f"{bot.url}/readyz"))[0] == 200
        bot.store.db.execute("PRAGMA query_only = ON")  # the bot's own connection can no longer write
        status, body = await get(f"{bot.url}/readyz")
        health = await get(f"{bot.url}/healthz")
        bot.store.db.execute("PRAGMA query_only = OFF")
    assert status == 503
    assert "database: not writable" in body and "readonly" in body
    assert health[0] == 200


async def test_readyz_fails_when_slack_rejects_the_token(slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, slack.base_url, extra={"SLACK_BOT_TOKEN": "xoxb-revoked"})
    async with serve_instrumented(slack, settings, sandbox.endpoint) as bot:
        status, body = await get(f"{bot.url}/readyz")
        health = await get(f"{bot.url}/healthz")
    assert status == 503
    assert "slack: auth.test failed (invalid_auth)" in body
    assert "xoxb-revoked" not in body
    assert health[0] == 200


async def test_readyz_fails_when_the_aws_endpoint_is_down(slack: SlackStandIn, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with serve_instrumented(slack, make_settings(tmp_path, slack.base_url), dead) as bot:
        status, body = await get(f"{bot.url}/readyz")
        health = await get(f"{bot.url}/healthz")
        _, text = await get(f"{bot.url}/metrics")
    assert status == 503
    assert "aws production: no answer from the endpoint" in body
    assert "database" not in body and "slack" not in body
    assert health[0] == 200
    # One describe, given up on (cancelled at the readiness timeout, or refused after botocore's retries).
    assert total(text, "bluegreen_aws_calls_total", action="DescribeDBProxies") == 1, text
    assert total(text, "bluegreen_aws_calls_total", action="DescribeDBProxies", outcome="ok") == 0, text


# ---------------------------------------------------------------- Socket Mode, in a real process

APP_TOKEN = "xapp-1-standin"  # the stand-in's app-level token


def run_windows(store: Store, *run_ids: str) -> dict[str, list[float]]:
    """Each proxy's detached windows (seconds) as the runs recorded them in their summaries."""
    windows: dict[str, list[float]] = {}
    for run_id in run_ids:
        for proxy, window in (store.runs.get(run_id).summary or {}).get("windows", {}).items():
            windows.setdefault(proxy, []).append(window["seconds"])
    return windows


async def ended(store: Store, run_id: str) -> str:
    await async_wait_until(lambda: not store.runs.get(run_id).is_active, RUN_TIMEOUT, what=f"run {run_id} to end")
    return store.runs.get(run_id).status


async def test_socket_mode_metrics_after_a_create_and_a_switchover_over_socket_mode(
    slack: SlackStandIn, sandbox: Sandbox, tmp_path: Path
) -> None:
    """`python -m bot serve --socket` connects to the stand-in's Socket Mode (apps.connections.open at SLACK_API_URL),
    receives alice's commands and bob's click as envelopes, and its METRICS_PORT counts what the sandbox and the
    stand-in saw."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BLUEGREEN_", "AWS_", "METRICS_"))},
        **bot_environment(tmp_path, slack.base_url),
        "SLACK_APP_TOKEN": APP_TOKEN,
        "METRICS_PORT": str(port),
        "AWS_ENDPOINT_URL": sandbox.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "PYTHONUNBUFFERED": "1",
    }
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "socket.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220  (started once; the test then waits on HTTP and the store)
            [sys.executable, "-m", "bot", "serve", "--socket"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        store = open_store(str(tmp_path / "bluegreen.db"))
        try:

            async def connected() -> bool:
                assert proc.poll() is None, log_path.read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    return slack.socket_connected and (await get(f"{url}/healthz"))[0] == 200
                return False

            try:
                await async_wait_until(connected, 30, interval=0.05, what="Socket Mode connected and /healthz")
            except WaitTimeout as waited:
                raise AssertionError(f"{waited}:\n{log_path.read_text()}") from None

            create = await start_run(slack, store, ALICE, "create orders-pg --engine-version 16.4 --mode workaround")
            assert await ended(store, create) == "succeeded", store.runs.get(create).error
            switchover = await start_run(slack, store, ALICE, "switchover orders-pg")
            request = await approval_message(slack, store, switchover)
            assert (await click_button(slack, request, BOB)).status == 200
            assert await ended(store, switchover) == "succeeded", store.runs.get(switchover).error
            await slack.wait_for(
                lambda: run_thread(slack, store, switchover).replies_starting(f"Run {switchover} "),
                timeout=20,
                description="the switchover's summary in its thread",
            )
            ready = await get(f"{url}/readyz")

            # The last checklist edits may still be on their way: scrape until the bot has counted every Web API
            # request the stand-in received (a count that never matches fails here, naming both).
            scraped: list[str] = []

            async def counted_everything() -> bool:
                status, text = await get(f"{url}/metrics")
                assert status == 200, text
                scraped.append(text)
                return by_label(text, "bluegreen_slack_calls_total", "method") == web_api_calls(slack)

            try:
                await async_wait_until(counted_everything, 10, interval=0.1, what="the Slack calls all counted")
            except WaitTimeout as waited:
                counted = by_label(scraped[-1], "bluegreen_slack_calls_total", "method")
                raise AssertionError(f"{waited}: counted {counted}, the stand-in saw {web_api_calls(slack)}") from None
            text = scraped[-1]
            aws_seen, slack_seen = timeline_calls(sandbox), web_api_calls(slack)
            windows = run_windows(store, create, switchover)
            strategies = {run_id: store.runs.get(run_id).strategy for run_id in (create, switchover)}
            proc.terminate()  # waited for without blocking the loop: the stand-in answers the socket's close frame
            await async_wait_until(lambda: proc.poll() is not None, 30, what="the bot to exit after SIGTERM")
            assert proc.returncode == 0, log_path.read_text()
        finally:
            store.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    output = log_path.read_text()

    # Both commands and the click went over Socket Mode, each acknowledged in time.
    assert slack_seen["apps.connections.open"] == 1
    assert [(e.type, e.acked) for e in slack.envelopes()] == [
        ("slash_commands", True),
        ("slash_commands", True),
        ("interactive", True),
    ]
    assert "connected over Socket Mode" in output
    assert ready[0] == 200, ready[1]

    assert strategies == {create: "workaround", switchover: "workaround"}
    for kind in ("create", "switchover"):
        assert total(text, "bluegreen_runs_started_total", kind=kind) == 1, text
        assert total(text, "bluegreen_runs_finished_total", kind=kind, strategy="workaround", outcome="succeeded") == 1
    assert total(text, "bluegreen_runs_active") == 0
    assert total(text, "bluegreen_approvals_pending") == 0

    # The detached windows, as the runs recorded them: the create's and the switchover's, per proxy.
    assert windows and aws_seen[DETACH] == sum(len(seconds) for seconds in windows.values())
    for proxy, seconds in windows.items():
        assert total(text, "bluegreen_proxy_detached_seconds_count", proxy=proxy) == len(seconds)
        assert total(text, "bluegreen_proxy_detached_seconds_sum", proxy=proxy) == pytest.approx(sum(seconds))

    # Every AWS call the sandbox received, by action; every Web API request the stand-in received, by method.
    assert by_label(text, "bluegreen_aws_calls_total", "action") == aws_seen
    assert aws_seen["SwitchoverBlueGreenDeployment"] == 1
    assert by_label(text, "bluegreen_slack_calls_total", "method") == slack_seen
    assert slack_seen["chat.postMessage"] > 0 and slack_seen["auth.test"] > 0
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output and APP_TOKEN not in output


# ---------------------------------------------------------------- gauges read from the store, and METRICS_PORT


def test_compensating_runs_and_pending_approvals_are_read_from_the_store_at_each_scrape(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "gauges.db"))
    try:
        metrics = BotMetrics(store)
        text = metrics.render().decode()
        assert total(text, "bluegreen_runs_compensating") == 0 and total(text, "bluegreen_approvals_pending") == 0
        runs = [store.runs.create(kind="switchover", database=f"db-{n}", params={}, requester=ALICE) for n in range(3)]
        store.runs.set_status(runs[0].id, "compensating")
        store.runs.set_status(runs[1].id, "waiting_approval")
        store.approvals.request(
            run_id=runs[1].id,
            kind="switchover",
            fingerprint="f",
            requested_by=ALICE,
            approvers=["U0BOB"],
            expires_at=time.time() + 600,
        )
        store.approvals.request(  # already expired: not pending any more
            run_id=runs[2].id,
            kind="switchover",
            fingerprint="f",
            requested_by=ALICE,
            approvers=["U0BOB"],
            expires_at=time.time() - 1,
        )
        text = metrics.render().decode()
    finally:
        store.close()
    assert total(text, "bluegreen_runs_compensating") == 1
    assert total(text, "bluegreen_runs_active", status="compensating") == 1
    assert total(text, "bluegreen_runs_active", status="waiting_approval") == 1
    assert total(text, "bluegreen_runs_active", status="pending") == 1
    assert total(text, "bluegreen_runs_active") == 3
    assert total(text, "bluegreen_approvals_pending") == 1


@pytest.mark.parametrize("value", ["abc", "0", "65536", "9102.5", ""])
def test_a_bad_metrics_port_is_refused_naming_it(value: str, tmp_path: Path) -> None:
    env = bot_environment(tmp_path, "http://127.0.0.1:1/api/", extra={"METRICS_PORT": value})
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        load_settings(env, require_slack=True)


def test_metrics_port_defaults_to_9102_and_can_be_set(tmp_path: Path) -> None:
    env = bot_environment(tmp_path, "http://127.0.0.1:1/api/")
    assert load_settings(env, require_slack=True).metrics_port == 9102
    assert load_settings({**env, "METRICS_PORT": "9200"}, require_slack=True).metrics_port == 9200


async def test_a_metrics_port_already_in_use_stops_start_up_naming_it() -> None:
    store = open_store(None)
    metrics = BotMetrics(store)

    async def no_probe(_: str) -> None:
        raise AssertionError("not probed")

    readiness = Readiness(store, [], last_aws_ok=metrics.last_aws_ok, aws_probe=no_probe)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"METRICS_PORT: cannot listen on port {port}"):
            await start_listener(port, None, metrics=metrics, readiness=readiness, host="127.0.0.1")
    store.close()
