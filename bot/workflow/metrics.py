"""Prometheus metrics for one process: a sink for the run events, an observer for every AWS call, and hooks the Slack
front calls for its Web API calls and its after-ack queue. `GET /metrics` renders `BotMetrics.render()`.

Each `BotMetrics` owns its own `CollectorRegistry` (never prometheus-client's global one), so processes and tests
are isolated. Label values are bounded: run kinds, strategies, statuses and outcomes are the bot's own constants,
environments come from the configuration, AWS actions and Slack methods from the code, and proxy labels are the
proxies the account has. No run id, user id or free text is ever a label.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.errors import AwsError
from bot.workflow.events import Event, RunFinished, RunStarted
from storage import ACTIVE_RUN_STATUSES

if TYPE_CHECKING:
    from storage import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled"}
)
# The detached window is seconds long when all goes well and minutes when it does not.
WINDOW_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
CALL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def aws_outcome(error: BaseException | None) -> str:
    """`ok`, `throttled` (still throttled after botocore's own retries), `connection_error` (no answer from AWS),
    `cancelled` (the caller gave up) or `error`: a bounded label value."""
    if error is None:
        return "ok"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    code = getattr(error, "code", None)
    if code in THROTTLING_CODES:
        return "throttled"
    if isinstance(error, AwsError) and getattr(error, "http_status", None) == 599:
        return "connection_error"
    return "error"


def slack_outcome(status: int | None) -> str:
    """The HTTP answer to one Web API request as a bounded label: `ok` (200; Slack's own `ok: false` errors are
    HTTP 200 too), `rate_limited` (429), `server_error` (5xx), `client_error` (other 4xx), `connection_error`."""
    if status is None:
        return "connection_error"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


class _StoreGauges(Collector):
    """Read at scrape time from the database, so they are right after a restart and across processes."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = dict.fromkeys(ACTIVE_RUN_STATUSES, 0)
        for run in self._store.runs.list(active_only=True, limit=100_000):
            counts[run.status] = counts.get(run.status, 0) + 1
        active = GaugeMetricFamily("bluegreen_runs_active", "Runs not finished, by status.", labels=["status"])
        for status, count in sorted(counts.items()):
            active.add_metric([status], count)
        yield active
        yield GaugeMetricFamily(
            "bluegreen_runs_compensating",
            "Runs giving a proxy its target back after a failure. Page someone when above 0 for long.",
            value=counts.get("compensating", 0),
        )
        yield GaugeMetricFamily(
            "bluegreen_approvals_pending",
            "Approval requests waiting for a decision (not expired).",
            value=self._store.approvals.pending_count(),
        )


class BotMetrics:
    """The process's metrics. `emit` is an event sink; `aws_call` and `slack_call` are observers; `watch_queue`
    turns a callable into the after-ack queue-depth gauge."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs_started = Counter(
            "bluegreen_runs_started",
            "Runs started (or resumed by a new process).",
            ["kind", "strategy", "resumed"],
            registry=r,
        )
        self.runs_finished = Counter(
            "bluegreen_runs_finished",
            "Runs finished, by outcome (their final status).",
            ["kind", "strategy", "outcome"],
            registry=r,
        )
        self.detached = Histogram(
            "bluegreen_proxy_detached_seconds",
            "How long a proxy had no target in a run (deregistration to AVAILABLE again).",
            ["proxy"],
            buckets=WINDOW_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "bluegreen_proxy_detached_overhead_seconds",
            "The bot's own share of a detached window (the window minus the time spent waiting on AWS).",
            ["proxy"],
            buckets=WINDOW_BUCKETS,
            registry=r,
        )
        self.aws_calls = Counter(
            "bluegreen_aws_calls",
            "AWS API calls, by action and outcome.",
            ["environment", "action", "outcome"],
            registry=r,
        )
        self.aws_seconds = Histogram(
            "bluegreen_aws_call_seconds", "AWS API call latency.", ["action"], buckets=CALL_BUCKETS, registry=r
        )
        self.slack_calls = Counter(
            "bluegreen_slack_calls",
            "Slack Web API HTTP requests (each retry counts), by method and outcome.",
            ["method", "outcome"],
            registry=r,
        )
        self.slack_seconds = Histogram(
            "bluegreen_slack_call_seconds",
            "Slack Web API request latency.",
            ["method"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.after_ack_depth = Gauge(
            "bluegreen_after_ack_queue_depth",
            "Work after an acknowledgement not yet finished (running or waiting for a slot).",
            registry=r,
        )
        self.last_aws_ok: dict[str, float] = {}  # environment -> monotonic time of its last successful AWS call
        if store is not None:
            r.register(_StoreGauges(store))

    async def emit(self, event: Event) -> None:
        """Sink: counts runs started and finished, and observes each proxy's detached window at the end of a run."""
        run = event.snapshot.run
        strategy = run.strategy or "none"
        if isinstance(event, RunStarted):
            self.runs_started.labels(run.kind, strategy, str(event.resumed).lower()).inc()
        elif isinstance(event, RunFinished):
            self.runs_finished.labels(run.kind, strategy, event.status).inc()
            for proxy, window in event.windows.items():
                if "seconds" in window:
                    self.detached.labels(proxy).observe(window["seconds"])
                if "overhead_seconds" in window:
                    self.overhead.labels(proxy).observe(window["overhead_seconds"])

    def aws_call(self, environment: str, action: str, error: BaseException | None, seconds: float) -> None:
        """Observer for `AwsGateway._call`: one AWS call, its error (None on success) and how long it took."""
        self.aws_calls.labels(environment, action, aws_outcome(error)).inc()
        self.aws_seconds.labels(action).observe(seconds)
        if error is None:
            self.last_aws_ok[environment] = time.monotonic()  # readiness: this environment's AWS answered

    def slack_call(self, method: str, status: int | None, seconds: float) -> None:
        """One Web API HTTP request: `status` is None when no answer came back."""
        self.slack_calls.labels(method, slack_outcome(status)).inc()
        self.slack_seconds.labels(method).observe(seconds)

    def watch_queue(self, depth: Callable[[], int]) -> None:
        """The after-ack queue depth is read from `depth` at each scrape."""
        self.after_ack_depth.set_function(depth)

    def render(self) -> bytes:
        """The registry in Prometheus' text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
