"""The Slack front: builds the Bolt app and serves it over HTTP (`POST /slack/events`, `GET /healthz`) or Socket Mode.

`serve_http` / `serve_socket` own the process: the store, the engine with its Slack and console sinks, resuming
unfinished runs at start-up, and a clean stop on SIGTERM (`bot.workflow.draining`): new commands and clicks are
answered "the bot is restarting", runs with a proxy detached hand over cleanly within BLUEGREEN_SHUTDOWN_GRACE, the
others stop at once, the answers queued after acknowledgements are sent, the leases released, and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

import handlers
from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging, known_secrets
from bot.sinks.console import ConsoleSink
from bot.workflow.draining import SERVE_HINT, SigtermHandler
from bot.workflow.engine import Engine
from bot.workflow.metrics import BotMetrics
from bot.workflow.readyz import Readiness
from handlers.after_ack import AfterAck
from handlers.approvers import ApproverResolver
from handlers.guards import ReplayGuard, ephemeral_response
from handlers.health import add_routes, instrumented_session, readiness_for, start_listener
from handlers.ids import CreateModalBlockIds
from handlers.messages import replies
from handlers.pacing import PacedWebClient
from handlers.thread.sink import SlackThreadSink
from storage import Store, open_store

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
RESTARTING, RESTARTING_FIX = "The bot is restarting, so nothing was done.", "Try again in a minute."
AFTER_ACK_DRAIN_MINIMUM = 3.0  # seconds to send the queued answers, even when the grace is spent
SLACK_TIMEOUT = 10  # seconds per Web API call; the retry handlers add their own waits
# Bolt logs the signature, timestamp and whole body of a request that fails verification, at INFO.
QUIET_LOGGERS = ("slack_bolt.AsyncRequestVerification", "slack_bolt.RequestVerification")


class _DropBelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def quiet_noisy_loggers() -> None:
    """Bolt resets its loggers' levels whenever an app is built, so a filter does the lasting work."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(existing, _DropBelowWarning) for existing in logger.filters):
            logger.addFilter(_DropBelowWarning())
    # slack_sdk logs request arguments at DEBUG; never let that reach the bot's logs.
    logging.getLogger("slack_sdk").setLevel(max(logging.INFO, logging.getLogger("slack_sdk").level))


def build_client(settings: Settings, *, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """The Web API client; `session` (shared with Bolt's per-request clients) is how the metrics see every call."""
    return AsyncWebClient(
        token=settings.slack.bot_token,
        session=session,
        base_url=settings.slack.api_url or AsyncWebClient.BASE_URL,
        timeout=SLACK_TIMEOUT,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=3),
            AsyncConnectionErrorRetryHandler(max_retry_count=3),
        ],
    )


def build_app(
    engine: Engine,
    settings: Settings,
    *,
    client: AsyncWebClient | None = None,
    approvers: ApproverResolver | None = None,
    socket_mode: bool = False,
    after_ack: AfterAck | None = None,
) -> AsyncApp:
    """The Bolt app with every listener registered. Over HTTP, requests must carry a valid Slack signature. Once the
    engine is shutting down, requests get "the bot is restarting" (`refuse_while_restarting`)."""
    client = client or build_client(settings)
    if not socket_mode and not settings.slack.signing_secret:
        raise ConfigError("missing setting: SLACK_SIGNING_SECRET (needed to verify requests over HTTP)")
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack.signing_secret or "",
        # Socket Mode is authenticated by the app-level token; Bolt skips signatures there anyway.
        request_verification_enabled=not socket_mode,
        # An unknown request is answered 404 without Bolt suggesting listener code in the log.
        raise_error_for_unhandled_request=False,
        # The listener's return answers the HTTP request: listeners ack and hand slower work to
        # handlers.after_ack, instead of Bolt polling every 10 ms for an ack from a listener still running.
        process_before_response=True,
    )
    quiet_noisy_loggers()
    if not socket_mode:
        app.use(ReplayGuard().refuse_replays)
    after_ack = after_ack or AfterAck()
    app.use(refuse_while_restarting(lambda: _shutting_down(engine), after_ack))
    handlers.register(app, engine, settings, approvers or ApproverResolver(client), after_ack)
    return app


def _shutting_down(engine: object) -> bool:
    return bool(getattr(engine, "shutting_down", False))  # engines built for tests may not stop


def refuse_while_restarting(
    stopping: Callable[[], bool], after_ack: AfterAck
) -> Callable[..., Awaitable[BoltResponse | None]]:
    """Global middleware: from the first SIGTERM on, nothing new starts. A slash command is answered "the bot is
    restarting, try again in a minute" in its acknowledgement (ephemeral, shown at once). A click is acknowledged and
    answered the same way through its response_url, after the ack (Slack ignores the body of a click's
    acknowledgement); the answer is queued with the other after-ack work, which is drained before the process exits.
    A modal submission keeps its modal open with the message under the field. Events are acknowledged and dropped
    (the App Home is published again when it is next opened).

    Not a 503: Slack shows the user only a generic failure for it and retries neither commands nor clicks, whereas
    the process keeps serving through its grace period precisely so that requests the load balancer still routes to
    it get a useful answer."""

    async def refuse_while_restarting(
        body: dict, respond: AsyncRespond | None, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        if not stopping():
            await next()
            return None
        message = replies.error(RESTARTING, RESTARTING_FIX)
        if body.get("command"):
            return ephemeral_response(message)
        if body.get("type") == "view_submission":
            errors = {CreateModalBlockIds.target.value: f"{RESTARTING} {RESTARTING_FIX}"}
            return BoltResponse(status=200, body={"response_action": "errors", "errors": errors})
        if body.get("type") == "block_actions" and respond is not None:
            after_ack.spawn(respond(response_type="ephemeral", replace_original=False, **message.as_kwargs()))
        return BoltResponse(status=200, body="")

    return refuse_while_restarting


def build_web_app(
    app: AsyncApp,
    engine: Engine | None = None,
    *,
    metrics: BotMetrics | None = None,
    readiness: Readiness | None = None,
) -> web.Application:
    """The aiohttp application: Bolt's `POST /slack/events`, `GET /healthz`, and `GET /metrics` and `GET /readyz`
    when given their source (`handlers.health`)."""
    web_app = app.web_app(path=EVENTS_PATH)
    add_routes(web_app, engine, metrics=metrics, readiness=readiness)
    return web_app


@dataclass
class BotRuntime:
    """Everything a serving process owns, built and torn down together."""

    settings: Settings
    store: Store
    client: AsyncWebClient
    approvers: ApproverResolver
    slack_sink: SlackThreadSink
    engine: Engine
    app: AsyncApp
    after_ack: AfterAck
    sigterm: SigtermHandler
    metrics: BotMetrics | None = None
    readiness: Readiness | None = None


@contextlib.asynccontextmanager
async def bot_runtime(settings: Settings, *, socket_mode: bool = False) -> AsyncIterator[BotRuntime]:
    store = open_store(settings.db_path)
    metrics = BotMetrics(store)
    session = instrumented_session(metrics)
    client = build_client(settings, session=session)
    approvers = ApproverResolver(client)
    # Paced: many runs at once must not exceed Slack's per-channel and per-workspace limits.
    slack_sink = SlackThreadSink(PacedWebClient(client), store, settings=settings)
    engine = Engine(
        store=store,
        settings=settings,
        # With JSON logs stderr is the log stream, one JSON object a line: progress stays in the thread only.
        sinks=[slack_sink, *([ConsoleSink(sys.stderr)] if settings.log_format == "text" else []), metrics],
        approver_check=approvers.approver_check,
    )
    engine.gateways.observe(metrics.aws_call)
    slack_sink.report_to(engine)  # an approval request the channel cannot show is withdrawn there
    after_ack = AfterAck()
    app = build_app(engine, settings, client=client, approvers=approvers, socket_mode=socket_mode, after_ack=after_ack)
    # SIGINT too: Ctrl-C in a terminal stops as cleanly as a deploy does. Installed before any run is resumed.
    sigterm = SigtermHandler(engine, settings.shutdown_grace, hint=SERVE_HINT, signals=(signal.SIGTERM, signal.SIGINT))
    metrics.watch_queue(lambda: after_ack.pending)
    readiness = readiness_for(store, settings, engine, metrics, client)
    runtime = BotRuntime(
        settings, store, client, approvers, slack_sink, engine, app, after_ack, sigterm, metrics, readiness
    )
    sigterm.install()
    try:
        resumed = await engine.resume_unfinished()
        if resumed:
            log.info("resumed %d unfinished run(s): %s", len(resumed), ", ".join(resumed))
        engine.start_reaper()
        await _warm_up(runtime)
        yield runtime
    finally:
        sigterm.uninstall()
        await engine.aclose()
        await slack_sink.aclose()
        await session.close()
        store.close()


async def _warm_up(runtime: BotRuntime) -> None:
    """Fetch the user groups named in the configuration now, so no command waits on usergroups.users.list."""
    ids: set[str] = set()
    for environment in runtime.settings.environments.values():
        ids |= environment.operators | environment.approvers
    try:
        await runtime.approvers.warm(ids)
    except Exception:  # a warm-up is an optimisation only
        log.warning("could not pre-fetch user groups; they are fetched on first use")


async def serve_http(settings: Settings, *, host: str = "0.0.0.0", port: int | None = None) -> bool:
    """Serves until SIGTERM or SIGINT, then stops cleanly (see the module). False if a proxy was left detached."""
    async with bot_runtime(settings) as runtime:
        web_app = build_web_app(runtime.app, runtime.engine, metrics=runtime.metrics, readiness=runtime.readiness)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host=host, port=settings.slack.port if port is None else port)
        await site.start()
        log.info("bluegreen-bot listening on %s:%s%s", host, settings.slack.port if port is None else port, EVENTS_PATH)
        try:
            return await _until_stopped(runtime)
        finally:
            await runner.cleanup()


async def serve_socket(settings: Settings) -> bool:
    """Connects to Slack over Socket Mode (SLACK_APP_TOKEN) and serves until SIGTERM or SIGINT, then stops cleanly.
    False if a proxy was left detached."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    if not settings.slack.app_token:
        raise ConfigError("missing setting: SLACK_APP_TOKEN (an xapp- app-level token, for Socket Mode)")
    async with bot_runtime(settings, socket_mode=True) as runtime:
        assert runtime.metrics is not None and runtime.readiness is not None
        listener = await start_listener(
            settings.metrics_port, runtime.engine, metrics=runtime.metrics, readiness=runtime.readiness
        )
        log.info("metrics, /healthz and /readyz on port %s", settings.metrics_port)
        try:
            handler = AsyncSocketModeHandler(runtime.app, settings.slack.app_token)
            await handler.connect_async()
            log.info("bluegreen-bot connected over Socket Mode")
            try:
                return await _until_stopped(runtime)
            finally:
                await handler.close_async()
        finally:
            await listener.cleanup()


async def _until_stopped(runtime: BotRuntime) -> bool:
    """Until the first SIGTERM; then hand the runs over and send the answers queued after acknowledgements, still
    serving meanwhile (requests get "the bot is restarting"). True when no proxy was left detached."""
    await runtime.sigterm.started.wait()
    grace = runtime.settings.shutdown_grace
    left = await runtime.engine.shutdown(grace)
    received_at = runtime.sigterm.received_at or time.time()
    remaining = max(AFTER_ACK_DRAIN_MINIMUM, received_at + grace - time.time())
    await runtime.after_ack.drain(timeout=remaining)
    for run_id, proxies in left.items():
        log.error("run %s left %s without a target; the next process carries it on", run_id, ", ".join(proxies))
    log.info("stopped: every run handed over; leases released" if not left else "stopped")
    return not left


def main(argv: list[str] | None = None) -> int:
    """`python -m bot serve [--socket]`."""
    parser = argparse.ArgumentParser(prog="python -m bot serve", description="Run the Slack bot.")
    parser.add_argument("--socket", action="store_true", help="Socket Mode with SLACK_APP_TOKEN")
    socket_mode = parser.parse_args(argv or []).socket
    try:
        settings = load_settings(require_slack=True, socket_mode=socket_mode)
        configure_logging(settings.log_level, settings.log_format, secrets=known_secrets())
        clean = asyncio.run(serve_socket(settings) if socket_mode else serve_http(settings))
    except ConfigError as error:
        print(f"bluegreen-bot: {error}", file=sys.stderr)
        return 2
    return 0 if clean else 1
