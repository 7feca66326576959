"""Watching the deployment while a run waits: provisioning (`wait_deployment_available`), an approval request
(`approval`) and a maintenance window (`maintenance_window`).

Failures AWS reports (INVALID_CONFIGURATION, SWITCHOVER_FAILED, replication degraded, a failed task; see
`bot.gates.deployment_health`) fail the waiting step at once: a pending approval is voided first (its Approve button
no longer works, and says why), then the runner posts the reason and the fix as a broadcast notice.

RDS events of the deployment and its members (DescribeEvents) are posted in the thread as they appear:
de-duplicated, and at most one message every `EVENTS_INTERVAL` per run; what the interval holds back goes in the
step's report at the end of the wait, so nothing is lost and no extra message is posted. Events already shown are
remembered in the run's meta, so a resumed run does not post them again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bot.aws.deployment_events import RdsEvent
from bot.aws.models import Deployment, identifier_from_arn
from bot.errors import AwsError
from bot.gates.deployment_health import DeploymentFailure, deployment_failure, deployment_gone
from bot.workflow.steps.base import StepContext, StepFailed
from storage import Store

# How often a waiting gate reads the deployment (and its new events) again. Tests shorten it.
WATCH_INTERVAL = 5.0
# At most one message of RDS events per run in this many seconds. Tests shorten it.
EVENTS_INTERVAL = 60.0
# Each read covers this much time before the previous one again: an event may be listed a little after its Date.
EVENTS_OVERLAP = 120.0
# Keys of the events already shown, per run (newest last): far more than an overlap's worth.
EVENTS_KEPT = 500
# Lines of events in one message; the rest are counted, with the command that lists them all.
EVENT_LINES = 15
# Of the members' own events (an instance's backups, say), only these subjects belong in the thread; every event of
# the deployment itself does.
MEMBER_EVENT_WORDS = ("storage", "switchover", "switch over", "sequence", "replication", "blue/green")

# Run meta: the events shown ({"seen": [key, ...], "posted_at": float}) and the failure that ended the wait.
EVENTS_META = "rds_events"
FAILURE_META = "deployment_failure"
# Approval meta: set when the bot voided the request because the deployment failed ({"reason", "fix"}).
VOIDED = "voided"
BOT_ACTOR = "bluegreen-bot"


def relevant(event: RdsEvent, deployment_id: str) -> bool:
    if event.source == deployment_id:
        return True
    text = event.message.lower()
    return any(word in text for word in MEMBER_EVENT_WORDS)


def event_line(event: RdsEvent) -> str:
    stamp = time.strftime("%H:%M:%S", time.gmtime(event.at))
    return f"{stamp} UTC {event.source}: {event.message}"


def events_text(events: list[RdsEvent], deployment_id: str) -> str:
    """The notice for a batch of events: one line each, the overflow counted with the command that lists them."""
    lines = [event_line(e) for e in events[:EVENT_LINES]]
    if len(events) > EVENT_LINES:
        lines.append(
            f"... and {len(events) - EVENT_LINES} more: `aws rds describe-events --source-type blue-green-deployment"
            f" --source-identifier {deployment_id}`"
        )
    noun = "event" if len(events) == 1 else "events"
    return f"RDS {noun} for {deployment_id}:\n" + "\n".join(f"• {line}" for line in lines)


def void_approval(store: Store, request_id: str, failure: DeploymentFailure) -> bool:
    """Void a pending approval request because the deployment it would switch over failed: decided "rejected" by
    the bot (compare-and-set, so a click racing it either wins before or is refused after), with the reason and
    fix in its meta for the Approve button's answer. False, nothing changed, when it was no longer pending."""
    request = store.approvals.get(request_id)
    if request is None:
        return False
    with store.atomic():
        if not store.approvals.decide(request_id, user=BOT_ACTOR, decision="rejected"):
            return False
        store.approvals.merge_meta(request_id, {VOIDED: {"reason": failure.reason, "fix": failure.fix}})
        store.audit.append(
            actor=BOT_ACTOR,
            action="approval:voided",
            run_id=request.run_id,
            detail={"request_id": request_id, "code": failure.code, "reason": failure.reason},
        )
    return True


def voided_reason(meta: dict[str, Any]) -> tuple[str, str | None] | None:
    """(reason, fix) of a request the bot voided, from its meta; None for any other request."""
    voided = meta.get(VOIDED)
    if not isinstance(voided, dict):
        return None
    return str(voided.get("reason") or "the deployment failed"), voided.get("fix")


@dataclass
class DeploymentWatch:
    """One waiting step's view of the run's deployment. `poll` reads it again every WATCH_INTERVAL; `inspect` looks
    at a deployment the step read itself. Both post new events and return the failure found, if any; `fail` records
    that failure and returns the StepFailed to raise."""

    ctx: StepContext
    _read_at: float = float("-inf")
    _events_read_at: float = float("-inf")
    _pending: dict[str, RdsEvent] = field(default_factory=dict)
    _deployment_id: str | None = None
    _read_from: float = 0.0  # events before this were read already (the first read goes back to the run's start)

    @property
    def deployment_id(self) -> str | None:
        return self._deployment_id or self.ctx.run.meta.get("deployment_id")

    async def poll(self) -> DeploymentFailure | None:
        """Read the deployment if WATCH_INTERVAL has passed since the last read. A deployment that no longer exists
        is a failure; a read AWS did not answer is not (the next one may be)."""
        now = time.monotonic()
        deployment_id = self.deployment_id
        if deployment_id is None or now - self._read_at < WATCH_INTERVAL:
            return None
        self._read_at = now
        try:
            deployment = await self.ctx.gateway.deployment(deployment_id)
        except AwsError:
            return None
        if deployment is None:
            return deployment_gone(deployment_id, self.ctx.run.database)
        return await self.inspect(deployment)

    async def inspect(self, deployment: Deployment) -> DeploymentFailure | None:
        self._deployment_id = deployment.identifier
        failure = deployment_failure(deployment, self.ctx.run.database)
        await self._post_events(deployment, read_now=failure is not None)  # AWS's own words about the failure
        return failure

    def fail(self, failure: DeploymentFailure) -> StepFailed:
        """Record the failure on the run and return the StepFailed to raise at once: the runner posts it in the
        thread as a broadcast notice with the fix, and ends the run. Events still held back go in the step's report."""
        self.report_held_events()
        self.ctx.remember(**{FAILURE_META: failure.to_dict()})
        return StepFailed(failure.reason, fix=failure.fix)

    def report_held_events(self) -> None:
        """At the end of the wait: the events the interval held back go in the step's report."""
        held = self._take_pending()
        if held:
            self.ctx.say(events_text(held, self.deployment_id or "the deployment"))

    # ----- events ---------------------------------------------------------------------------------------------

    def _memory(self) -> dict[str, Any]:
        stored = self.ctx.run.meta.get(EVENTS_META)
        return stored if isinstance(stored, dict) else {}

    async def _post_events(self, deployment: Deployment, *, read_now: bool = False) -> None:
        now = time.monotonic()
        # Events are posted at most once an EVENTS_INTERVAL, so reading them twice as often is enough (and keeps a
        # long wait from costing two DescribeEvents calls at every poll).
        if read_now or now - self._events_read_at >= max(WATCH_INTERVAL, EVENTS_INTERVAL / 2):
            self._events_read_at = now
            await self._read_events(deployment)
        if not self._pending:
            return
        posted_at = float(self._memory().get("posted_at") or 0.0)
        if self.ctx.clock() - posted_at < EVENTS_INTERVAL:
            return
        batch = self._take_pending()
        self.ctx.notify(events_text(batch, deployment.identifier))

    async def _read_events(self, deployment: Deployment) -> None:
        members = [deployment.source_arn, deployment.target_arn or ""]
        members += [arn for member in deployment.members for arn in (member.source, member.target)]
        instances = {identifier_from_arn(arn) for arn in members if ":db:" in arn}
        clusters = {identifier_from_arn(arn) for arn in members if ":cluster:" in arn}
        started = self.ctx.clock()
        events = await self.ctx.gateway.deployment_events(
            deployment.identifier,
            # This run's events only (not those of the run that created the deployment), and not again and again.
            since=max(self.ctx.run.created_at, self._read_from),
            instances=instances,
            clusters=clusters,
        )
        if events is None:  # AWS did not answer: events are best-effort, the next read covers these
            return
        self._read_from = started - EVENTS_OVERLAP
        seen = set(self._memory().get("seen") or ())
        for event in events:
            if relevant(event, deployment.identifier) and event.key not in seen:
                self._pending.setdefault(event.key, event)

    def _take_pending(self) -> list[RdsEvent]:
        """The held-back events, oldest first, now counted as shown (durably, before anything is posted)."""
        batch = sorted(self._pending.values(), key=lambda e: (e.at, e.source, e.message))
        self._pending.clear()
        if batch:
            memory = self._memory()
            seen = [*(memory.get("seen") or ()), *(e.key for e in batch)][-EVENTS_KEPT:]
            self.ctx.remember(**{EVENTS_META: {"seen": seen, "posted_at": self.ctx.clock()}})
        return batch
