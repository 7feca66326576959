"""What the runner tells the world, and the bus that delivers it. Sinks (Slack thread, console) render these and
decide nothing.

Every event carries a snapshot of the run and its steps, so a sink can render the whole checklist without
reading storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.logs import log_context
from storage import RunRecord, StepRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    run: RunRecord
    steps: list[StepRecord]


@dataclass(frozen=True, slots=True)
class AwsCall:
    """One AWS mutation, as shown in the thread and kept in the audit log."""

    action: str
    command: str  # the equivalent `aws rds ...` command line
    request_id: str | None
    outcome: str  # "ok", or the AWS error code
    at: float


@dataclass(frozen=True, slots=True)
class RunStarted:
    snapshot: RunSnapshot
    resumed: bool = False  # True when a process picks the run up again after a restart


@dataclass(frozen=True, slots=True)
class StepChanged:
    """A step changed status (running, done, failed, skipped...). The checklist is re-rendered."""

    snapshot: RunSnapshot
    step_idx: int


@dataclass(frozen=True, slots=True)
class StepReport:
    """The details of one finished step: posted as a thread reply."""

    snapshot: RunSnapshot
    step_idx: int
    lines: list[str]
    aws_calls: list[AwsCall] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something an operator should read now (fallback to the workaround, waiting for a window, compensation)."""

    snapshot: RunSnapshot
    text: str
    broadcast: bool = False


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    snapshot: RunSnapshot
    request_id: str
    kind: str  # "switchover" | "delete_old"
    fingerprint: str
    requester: str
    approvers: list[str]
    expires_at: float
    action: str  # what will happen, one sentence
    facts: dict[str, str]  # what the plan was checked against
    gates: list[dict[str, Any]] = field(default_factory=list)  # readiness, as `GateResult.to_dict` (switchover)
    rehearsal: list[str] = field(default_factory=list)  # the latest rehearsal of the database and version (switchover)


@dataclass(frozen=True, slots=True)
class ApprovalDecided:
    snapshot: RunSnapshot
    request_id: str
    decision: str  # "approved" | "rejected" | "expired" | "superseded" | "voided" (by the bot: the deployment failed)
    user: str | None
    at: float
    reason: str | None = None  # why the bot voided it


@dataclass(frozen=True, slots=True)
class DetachedProxy:
    """A proxy the run detached that still has no target, as an alert shows it."""

    label: str
    database: str
    detached_at: float  # when the bot deregistered the database from it (wall clock)
    attempts: int  # registrations tried by the compensation so far
    last_error: str | None  # AWS's latest refusal, or the target's health
    command: str  # the `aws rds register-db-proxy-targets ...` that gives it its target back


@dataclass(frozen=True, slots=True)
class DetachedAlert:
    """Compensation still cannot give proxies their target: posted every BLUEGREEN_DETACHED_ALERT_INTERVAL,
    broadcast, mentioning the approvers. `number` counts the run's alerts across restarts (1, 2, ...)."""

    snapshot: RunSnapshot
    number: int
    proxies: list[DetachedProxy]
    approvers: list[str]
    next_in: float  # seconds until the next alert


@dataclass(frozen=True, slots=True)
class RunFinished:
    snapshot: RunSnapshot
    status: str
    error: str | None
    windows: dict[str, dict[str, float]]  # proxy label -> {"seconds", "overhead_seconds"}


Event = (
    RunStarted | StepChanged | StepReport | Notice | ApprovalRequested | ApprovalDecided | DetachedAlert | RunFinished
)


class Sink(Protocol):
    async def emit(self, event: Event) -> None: ...


class ApprovalDelivery(Protocol):
    """What a sink that could not show an approval request to anyone (the bot lost the run's channel) tells the
    engine, which implements it: the request is withdrawn and the run stops at its gate. Nothing is approved unseen."""

    async def withdraw_approval(self, request_id: str, reason: str) -> bool: ...


class EventBus:
    """Hands events to every sink through its own queue, so a slow sink (Slack being rate limited) never holds up
    a step inside a proxy-detached window. Per sink, order is kept."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self._sinks = list(sinks)
        self._queues: list[asyncio.Queue[Event]] = []
        self._workers: list[asyncio.Task[None]] = []

    def _start(self) -> None:
        if self._workers:
            return
        for sink in self._sinks:
            queue: asyncio.Queue[Event] = asyncio.Queue()
            self._queues.append(queue)
            self._workers.append(asyncio.get_running_loop().create_task(self._work(sink, queue)))

    def publish(self, event: Event) -> None:
        self._start()
        for queue in self._queues:
            queue.put_nowait(event)

    @staticmethod
    async def _work(sink: Sink, queue: asyncio.Queue[Event]) -> None:
        while True:
            event = await queue.get()
            # The worker was started inside whichever run published first: log under this event's run instead.
            run = event.snapshot.run
            try:
                with log_context(run_id=run.id, environment=run.environment, step=None):
                    await sink.emit(event)
            except Exception:  # a sink must never break a run
                log.exception("sink %s failed on %s", type(sink).__name__, type(event).__name__)
            finally:
                queue.task_done()

    async def drain(self) -> None:
        for queue in self._queues:
            await queue.join()

    async def aclose(self) -> None:
        await self.drain()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers.clear()
        self._queues.clear()
