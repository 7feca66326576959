"""Compensation: giving their target back to the proxies a failed or cancelled run left detached.

It never gives up by itself. A proxy without its target cuts off every application behind it, and an outage the bot
stops talking about is one nobody is reminded of. Per proxy it registers the database again with capped
exponential backoff (0.2 s, doubling, at most `BLUEGREEN_COMPENSATION_BACKOFF_CAP`), whatever AWS answers; once
registered it waits for AVAILABLE, and registers again if the target entry disappears. While any proxy is still
without its target it alerts the run's thread every `BLUEGREEN_DETACHED_ALERT_INTERVAL` (broadcast, mentioning the
approvers, naming the proxy and the command that fixes it by hand).

It ends when every proxy has its target again, or when an operator abandons them (`cancel RUN --abandon-proxy`)
after fixing them by hand: `ProxyAbandoned` then tells the runner to end the run.

What must survive a restart is in run.meta["compensation"]: when it began, when the last alert was posted and how
many were, attempts and the latest refusal per proxy. A restarted process neither alerts at once nor forgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from bot.aws.commands import aws_command, target_params
from bot.aws.describe_budget import critical
from bot.aws.models import Database, Registration
from bot.aws.responses import health_of
from bot.errors import AlreadyRegistered, AwsError, BadRequest, BlueGreenError
from bot.workflow import polling
from bot.workflow.events import DetachedAlert, DetachedProxy
from bot.workflow.steps.base import StepContext, StepFailed
from bot.workflow.steps.proxy_targets import wait_available
from storage import RunRecord, Store

log = logging.getLogger(__name__)

RECORD = "compensation"  # run.meta key
ABANDON = "abandon_requested"  # run.meta key, written by Engine.cancel(..., abandon_proxy=True)
FIRST_RETRY = polling.CRITICAL.first
WATCH_INTERVAL = 0.2  # how often the step looks for an abandonment and for an alert falling due


class ProxyAbandoned(BlueGreenError):
    """An operator abandoned the proxies the compensation was still giving their target back to."""

    def __init__(self, by: str, commands: dict[str, str]) -> None:
        labels = list(commands)
        super().__init__(f"{', '.join(labels)} abandoned by {by} while still without the bot's target")
        self.by = by
        self.labels = labels
        self.commands = commands  # label -> the command that registers the target by hand


def register_command(label: str, database: str, kind: str) -> str:
    """The `aws rds register-db-proxy-targets ...` that gives the proxy target group `label` its target back."""
    proxy, _, target_group = label.partition("/")
    registration = Registration(proxy, target_group or "default")
    return aws_command("RegisterDBProxyTargets", target_params(registration, database, kind))


def by_hand_commands(meta: dict[str, Any]) -> dict[str, str]:
    """For each proxy a run left without its target (run.meta["detached"]): the command that fixes it by hand."""
    return {
        label: register_command(label, window["database"], window.get("kind", "instance"))
        for label, window in (meta.get("detached") or {}).items()
    }


def request_abandonment(store: Store, run: RunRecord, user: str) -> None:
    """Record (and audit) that `user` abandons the proxies the compensating `run` is still giving their target
    back to, having fixed them by hand; its process stops at its next look. run.meta["abandon_requested"]["proxies"]
    maps each proxy to the command that registers it by hand. BadRequest, nothing written, for a run that is not
    compensating or was abandoned already. Call it inside the caller's transaction (`store.atomic()`)."""
    commands = by_hand_commands(run.meta)
    if run.status != "compensating" or not commands:
        raise BadRequest(
            f"run {run.id} is {run.status.replace('_', ' ')}, not compensating: it has no proxy it is trying to"
            " give its target back to, so there is nothing to abandon. Nothing changed.",
            fix=f"`cancel {run.id}` (without --abandon-proxy) stops a run safely.",
        )
    earlier = run.meta.get(ABANDON)
    if earlier:
        raise BadRequest(f"run {run.id}'s proxies were already abandoned by {earlier.get('by')}. Nothing changed.")
    store.runs.merge_meta(run.id, {ABANDON: {"by": user, "at": time.time(), "proxies": commands}})
    detail = {"proxies": sorted(commands), "commands": commands}
    store.audit.append(actor=user, action="run:abandon-proxy", run_id=run.id, detail=detail)


@dataclass
class _Progress:
    registration: Registration
    attempts: int = 0
    last_error: str | None = None
    restored: bool = False


def _record(ctx: StepContext) -> dict[str, Any]:
    return dict(ctx.run.meta.get(RECORD) or {})


def _update_record(ctx: StepContext, **changes: Any) -> dict[str, Any]:
    with ctx.store.atomic():
        record = {**_record(ctx), **changes}
        ctx.store.runs.merge_meta(ctx.run_id, {RECORD: record})
    return record


def _note(ctx: StepContext, progress: _Progress, error: str | None, *, attempted: bool = False) -> None:
    """Remember the latest refusal (and count the attempt) in memory and in the run's record."""
    label = progress.registration.label
    if attempted:
        progress.attempts += 1
    progress.last_error = error
    with ctx.store.atomic():
        record = _record(ctx)
        record["attempts"] = {**record.get("attempts", {}), label: progress.attempts}
        record["last_error"] = {**record.get("last_error", {}), label: error}
        ctx.store.runs.merge_meta(ctx.run_id, {RECORD: record})


async def _register(ctx: StepContext, progress: _Progress, database: Database, cap: float) -> bool:
    """One registration attempt: True once AWS has the target (or says it already had it)."""
    registration = progress.registration
    try:
        await ctx.mutate(
            lambda: ctx.gateway.register(registration, database),
            what=f"register {database.identifier} with {registration.label}",
        )
    except AlreadyRegistered:
        ctx.say(f"{registration.label}: already registered (an earlier attempt, or someone by hand)")
    except AwsError as exc:
        # Whatever AWS says (its state, throttling, 5xx, a permission, a missing IP address), an operator or AWS
        # may fix it, and the proxy has no target meanwhile: keep trying.
        first = exc.code not in (progress.last_error or "")
        _note(ctx, progress, exc.message, attempted=True)  # it names the action, the resource and AWS's code
        if first:
            ctx.say(
                f"{registration.label}: AWS refused the registration ({exc.code}); retrying, every {cap:g} s at most"
            )
        return False
    _note(ctx, progress, None, attempted=True)
    return True


async def _look(ctx: StepContext, registration: Registration, database: Database) -> list | None:
    """The database's target entries on the target group, or None when it has none (registered again next)."""
    with critical():  # a proxy without its target: first call on the describe budget
        health = health_of(database, await ctx.gateway.targets(registration.proxy, registration.target_group))
    return health or None


def _states(health: list) -> str:
    return ", ".join(
        f"{t.rds_resource_id}={t.state}" + (f" ({t.reason}: {t.description})" if t.reason else "") for t in health
    )


async def _restore(ctx: StepContext, progress: _Progress, database: Database, cap: float) -> None:
    """Give one proxy target group its target back: register, wait for AVAILABLE, close the window. Returns only
    then; every failure along the way is noted and tried again after the backoff."""
    registration = progress.registration
    first_attempt = ctx.clock()
    last_refusal = first_attempt
    delay = FIRST_RETRY
    registered = False
    waited = False  # the 0.2 s wait for AVAILABLE after a registration: once, then looks with backoff
    while True:
        sent = ctx.clock()
        try:
            if not registered:
                registered = await _register(ctx, progress, database, cap)
                waited = False
                if not registered:
                    last_refusal = sent
            if registered and not waited:
                registered_at = ctx.clock()
                waited = True
                try:
                    result = await wait_available(ctx, registration, database, timeout=ctx.env.target_timeout)
                except StepFailed as exc:
                    _note(ctx, progress, exc.message)
                else:
                    _closed(ctx, progress, database, first_attempt, last_refusal, registered_at, result)
                    return
            elif registered:
                look_sent = ctx.clock()
                health = await _look(ctx, registration, database)
                if health is None:
                    registered = False
                    _note(ctx, progress, "the target entry is gone; registering again")
                    continue
                if all(t.available for t in health):
                    result = polling.WaitResult(health, 1, look_sent, look_sent, ctx.clock())
                    _closed(ctx, progress, database, first_attempt, last_refusal, look_sent, result)
                    return
                _note(ctx, progress, f"registered but not AVAILABLE: {_states(health)}")
        except AwsError as exc:  # a failed look: look again
            _note(ctx, progress, exc.message)
        except Exception as exc:  # never leave a proxy without its target because of a surprise: log, go on
            log.exception("run %s: compensating %s failed unexpectedly", ctx.run_id, registration.label)
            _note(ctx, progress, f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(delay)
        delay = min(cap, delay * 2)


def _closed(
    ctx: StepContext,
    progress: _Progress,
    database: Database,
    first_attempt: float,
    last_refusal: float,
    registered_at: float,
    result: polling.WaitResult,
) -> None:
    label = progress.registration.label
    if last_refusal > first_attempt:
        ctx.windows.aws_time(first_attempt, last_refusal, [label])
    ctx.windows.aws_time(registered_at, max(registered_at, result.last_miss_sent), [label])
    window = ctx.windows.reattached(progress.registration, result.seen_at)
    progress.restored = True
    note = f"; proxy had no target for {window['seconds']:.2f} s" if window else ""
    ctx.say(f"{label}: {database.identifier} AVAILABLE after {progress.attempts} registration attempt(s){note}")


def _alert(ctx: StepContext, progress: dict[str, _Progress], database: Database, record: dict[str, Any]) -> None:
    """Post the next alert for the proxies still without a target; persisted first, so that a restart counts on."""
    now = ctx.clock()
    number = int(record.get("alerts", 0)) + 1
    _update_record(ctx, alerts=number, last_alert_at=now)
    windows = ctx.windows.open_windows()
    proxies = [
        DetachedProxy(
            label=label,
            database=database.identifier,
            detached_at=float(windows.get(label, {}).get("at", record.get("started_at", now))),
            attempts=item.attempts,
            last_error=item.last_error,
            command=register_command(label, database.identifier, database.kind),
        )
        for label, item in progress.items()
        if not item.restored
    ]
    approvers = sorted(ctx.env.approvers)
    interval = ctx.env.detached_alert_interval
    ctx.store.audit.append(
        actor=ctx.actor,
        action="compensation:alert",
        run_id=ctx.run_id,
        detail={"number": number, "at": now, "proxies": [p.label for p in proxies], "approvers": approvers},
    )
    ctx.publish(lambda snapshot: DetachedAlert(snapshot, number, proxies, approvers, interval))


def _abandon(
    ctx: StepContext, progress: dict[str, _Progress], database: Database, request: dict[str, Any]
) -> ProxyAbandoned:
    by = str(request.get("by") or "an operator")
    labels = [label for label, item in progress.items() if not item.restored]
    for label in labels:
        ctx.windows.abandoned(progress[label].registration, by, ctx.clock())
    ctx.say(f"{', '.join(labels)} abandoned by {by}: the bot stopped registering {database.identifier} there")
    return ProxyAbandoned(by, {label: register_command(label, database.identifier, database.kind) for label in labels})


async def compensate(ctx: StepContext, registrations: list[Registration], database: Database) -> None:
    """Give every registration its target back (see the module docstring). Returns once all have it; raises
    ProxyAbandoned when an operator abandons them first. Holds the run's locks all along: the run stays active."""
    now = ctx.clock()
    record = _record(ctx)
    if not record.get("started_at"):
        record = _update_record(ctx, started_at=now, last_alert_at=now, alerts=0)
    cap = ctx.env.compensation_backoff_cap
    progress = {
        r.label: _Progress(
            r,
            attempts=int(record.get("attempts", {}).get(r.label, 0)),
            last_error=record.get("last_error", {}).get(r.label),
        )
        for r in registrations
    }
    tasks = {label: asyncio.ensure_future(_restore(ctx, item, database, cap)) for label, item in progress.items()}
    announced: set[str] = set()
    try:
        while True:
            for label, task in tasks.items():
                if task.done() and label not in announced:
                    task.result()  # re-raises a bug (the runner then starts the compensation again)
                    announced.add(label)
                    remaining = [other for other in tasks if other not in announced]
                    _announce(ctx, label, database, remaining, alerted=int(_record(ctx).get("alerts", 0)) > 0)
            if len(announced) == len(tasks):
                return
            run = ctx.run
            request = run.meta.get(ABANDON)
            if request:
                raise _abandon(ctx, progress, database, request)
            record = dict(run.meta.get(RECORD) or {})
            if ctx.clock() - float(record.get("last_alert_at", now)) >= ctx.env.detached_alert_interval:
                _alert(ctx, progress, database, record)
            await asyncio.wait([t for t in tasks.values() if not t.done()], timeout=WATCH_INTERVAL)
    finally:
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _announce(ctx: StepContext, label: str, database: Database, remaining: list[str], *, alerted: bool) -> None:
    """Tell the thread (the channel too, once it was alerted) that a proxy has its target again."""
    if remaining:
        then = f"Still registering it with {', '.join(remaining)}."
    else:
        then = f"The run ends as it would have: {(ctx.run.meta.get('ending') or {}).get('status', 'failed')}."
    ctx.notify(f"{label} has its target again: {database.identifier} is AVAILABLE. {then}", broadcast=alerted)
