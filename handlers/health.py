"""The operational endpoints: `GET /healthz` (liveness), `GET /readyz` (readiness, `bot.workflow.readyz`) and
`GET /metrics` (Prometheus, `bot.workflow.metrics`), on the HTTP server or, in Socket Mode, on a listener of their
own (METRICS_PORT). Also the Slack side of the metrics: every Web API request, timed, through one aiohttp session.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError
from bot.workflow.metrics import CONTENT_TYPE, BotMetrics
from bot.workflow.readyz import Readiness

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"


def _shutting_down(engine: object) -> bool:
    return bool(getattr(engine, "shutting_down", False))  # engines built for tests may not stop


def add_routes(
    web_app: web.Application,
    engine: Any = None,
    *,
    metrics: BotMetrics | None = None,
    readiness: Readiness | None = None,
) -> None:
    """`/healthz` always; `/metrics` and `/readyz` when given their source. /healthz answers 200 while the process
    and its event loop are alive (503 once stopping); /readyz answers 503 with `{"ok": false, "reasons": [...]}`."""

    async def health(_: web.Request) -> web.Response:
        if _shutting_down(engine):  # a readiness probe takes the process out of rotation while it drains
            return web.json_response({"ok": False, "stopping": True}, status=503)
        body: dict[str, object] = {"ok": True}
        if engine is not None:
            body["active_runs"] = len(engine.runs(active_only=True, limit=1000))
        return web.json_response(body)

    web_app.router.add_get(HEALTH_PATH, health)
    if readiness is not None:

        async def ready(_: web.Request) -> web.Response:
            reasons = ["stopping"] if _shutting_down(engine) else await readiness.check()
            return web.json_response({"ok": not reasons, "reasons": reasons}, status=503 if reasons else 200)

        web_app.router.add_get(READY_PATH, ready)
    if metrics is not None:

        async def scrape(_: web.Request) -> web.Response:
            response = web.Response(body=metrics.render())
            response.headers["Content-Type"] = CONTENT_TYPE
            return response

        web_app.router.add_get(METRICS_PATH, scrape)


async def start_listener(
    port: int,
    engine: Any,
    *,
    metrics: BotMetrics,
    readiness: Readiness,
    host: str = "0.0.0.0",
) -> web.AppRunner:
    """Socket Mode's small HTTP listener for the three endpoints. The caller cleans up the returned runner.
    ConfigError naming METRICS_PORT when the port cannot be listened on (in use, or not allowed)."""
    web_app = web.Application()
    add_routes(web_app, engine, metrics=metrics, readiness=readiness)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host=host, port=port).start()
    except OSError as error:
        await runner.cleanup()
        raise ConfigError(
            f"METRICS_PORT: cannot listen on port {port} ({error.strerror or error}); set METRICS_PORT to a free port"
        ) from None
    return runner


def slack_method(url: Any) -> str:
    """`chat.postMessage` from `https://slack.com/api/chat.postMessage`: the last path segment (bounded: the code's
    own method names)."""
    return str(getattr(url, "path", url)).rstrip("/").rsplit("/", 1)[-1] or "unknown"


def slack_trace(metrics: BotMetrics) -> aiohttp.TraceConfig:
    """Times every request made through the session and counts it by method and HTTP outcome."""
    trace = aiohttp.TraceConfig()

    async def start(_: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        context.started = time.monotonic()

    async def end(_: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        metrics.slack_call(slack_method(params.url), params.response.status, time.monotonic() - context.started)

    async def failed(_: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        metrics.slack_call(slack_method(params.url), None, time.monotonic() - context.started)

    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    trace.on_request_exception.append(failed)
    return trace


def instrumented_session(metrics: BotMetrics) -> aiohttp.ClientSession:
    """The aiohttp session every Slack client of the process shares (Bolt's per-request clients reuse it), so one
    place sees every Web API call. Call inside the running loop; the caller closes it."""
    return aiohttp.ClientSession(trace_configs=[slack_trace(metrics)])


def slack_auth_check(client: AsyncWebClient):
    """A readiness check: None when `auth.test` accepts the client's token, else Slack's error code (never the
    token)."""

    async def check() -> str | None:
        try:
            await client.auth_test()
        except SlackApiError as error:
            return str(error.response.get("error") or error.response.status_code)
        return None

    return check


def readiness_for(store: Any, settings: Any, engine: Any, metrics: BotMetrics, client: AsyncWebClient) -> Readiness:
    """The serving process's readiness: its store, Slack token, and every configured environment's AWS endpoint
    (probed with one page of DescribeDBProxies through the engine's own gateway, which also counts as a recent call)."""

    async def probe(name: str) -> None:
        await engine.gateways.get(settings.environments[name]).ping()

    return Readiness(
        store,
        settings.environments,
        last_aws_ok=metrics.last_aws_ok,
        aws_probe=probe,
        slack_check=slack_auth_check(client),
    )
