"""The Slack front: builds the Bolt app and serves it over HTTP (`POST /slack/events`, `GET /healthz`) or Socket Mode.

`serve_http` / `serve_socket` own the process: the store, the engine with its Slack and console sinks, resuming
unfinished runs at start-up, and a clean stop on SIGTERM (runs keep their state and resume on the next start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

import handlers
from bot.config import ConfigError, Settings, load_settings
from bot.sinks.console import ConsoleSink
from bot.workflow.engine import Engine
from handlers.approvers import ApproverResolver
from handlers.guards import ReplayGuard
from handlers.pacing import PacedWebClient
from handlers.thread.sink import SlackThreadSink
from storage import Store, open_store

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
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


def build_client(settings: Settings) -> AsyncWebClient:
    return AsyncWebClient(
        token=settings.slack.bot_token,
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
) -> AsyncApp:
    """The Bolt app with every listener registered. Over HTTP, requests must carry a valid Slack signature."""
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
    handlers.register(app, engine, settings, approvers or ApproverResolver(client))
    return app


def build_web_app(app: AsyncApp, engine: Engine | None = None) -> web.Application:
    """The aiohttp application: Bolt's `POST /slack/events` plus `GET /healthz`."""
    web_app = app.web_app(path=EVENTS_PATH)

    async def health(_: web.Request) -> web.Response:
        body: dict[str, object] = {"ok": True}
        if engine is not None:
            body["active_runs"] = len(engine.runs(active_only=True, limit=1000))
        return web.json_response(body)

    web_app.router.add_get(HEALTH_PATH, health)
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


@contextlib.asynccontextmanager
async def bot_runtime(settings: Settings, *, socket_mode: bool = False) -> AsyncIterator[BotRuntime]:
    store = open_store(settings.db_path)
    client = build_client(settings)
    approvers = ApproverResolver(client)
    # Paced: many runs at once must not exceed Slack's per-channel and per-workspace limits.
    slack_sink = SlackThreadSink(PacedWebClient(client), store)
    engine = Engine(
        store=store,
        settings=settings,
        sinks=[slack_sink, ConsoleSink(sys.stderr)],
        approver_check=approvers.approver_check,
    )
    app = build_app(engine, settings, client=client, approvers=approvers, socket_mode=socket_mode)
    runtime = BotRuntime(settings, store, client, approvers, slack_sink, engine, app)
    try:
        resumed = await engine.resume_unfinished()
        if resumed:
            log.info("resumed %d unfinished run(s): %s", len(resumed), ", ".join(resumed))
        engine.start_reaper()
        await _warm_up(runtime)
        yield runtime
    finally:
        await engine.aclose()
        await slack_sink.aclose()
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


async def serve_http(settings: Settings, *, host: str = "0.0.0.0", port: int | None = None) -> None:
    """Serves until SIGTERM or SIGINT."""
    async with bot_runtime(settings) as runtime:
        runner = web.AppRunner(build_web_app(runtime.app, runtime.engine), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host=host, port=settings.slack.port if port is None else port)
        await site.start()
        log.info("bluegreen-bot listening on %s:%s%s", host, settings.slack.port if port is None else port, EVENTS_PATH)
        try:
            await _until_stopped()
        finally:
            await runner.cleanup()


async def serve_socket(settings: Settings) -> None:
    """Connects to Slack over Socket Mode (SLACK_APP_TOKEN) and serves until SIGTERM or SIGINT."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    if not settings.slack.app_token:
        raise ConfigError("missing setting: SLACK_APP_TOKEN (an xapp- app-level token, for Socket Mode)")
    async with bot_runtime(settings, socket_mode=True) as runtime:
        handler = AsyncSocketModeHandler(runtime.app, settings.slack.app_token)
        await handler.connect_async()
        log.info("bluegreen-bot connected over Socket Mode")
        try:
            await _until_stopped()
        finally:
            await handler.close_async()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        log.info("stopping: runs in flight keep their state and resume on the next start")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> int:
    """`python -m bot serve [--socket]`."""
    parser = argparse.ArgumentParser(prog="python -m bot serve", description="Run the Slack bot.")
    parser.add_argument("--socket", action="store_true", help="Socket Mode with SLACK_APP_TOKEN")
    socket_mode = parser.parse_args(argv or []).socket
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(require_slack=True, socket_mode=socket_mode)
        asyncio.run(serve_socket(settings) if socket_mode else serve_http(settings))
    except ConfigError as error:
        print(f"bluegreen-bot: {error}", file=sys.stderr)
        return 2
    return 0
