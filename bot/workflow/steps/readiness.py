"""Readiness from the steps: before the approval request (`preflight_switchover`) and, after the approval, right
before the first detach (`detach`) or before the switchover call when nothing is detached (`switchover`, native or
direct). Never inside an open window: once a proxy has no target, every AWS call lengthens its outage.

A failed gate fails the step with the table and the fix, before anything is detached. A replica lag over
`max_replica_lag` is waited for instead, re-checking, up to `lag_wait`; the thread says what the bot waits for and
the approval stays valid. Unknown gates (AWS did not answer) are shown, never block and never count as a pass.
"""

from __future__ import annotations

from bot.aws.models import Deployment
from bot.gates.model import FAIL, UNKNOWN, GateResult, failed, gate_rows
from bot.gates.readiness import evaluate_readiness, only_pending_lag
from bot.workflow import polling
from bot.workflow.steps.base import StepContext, StepFailed, verify_approved_plan

LAG_POLL = polling.PollPolicy(first=0.2, maximum=5.0, factor=1.5, timeout=300.0)


async def evaluate(ctx: StepContext, deployment: Deployment | None = None) -> list[GateResult]:
    """Every readiness gate of the run's deployment, read fresh from AWS (the deployment too, unless given)."""
    if deployment is None:
        deployment = await ctx.required(
            "deployment_id", ctx.gateway.deployment, missing="blue/green deployment {} no longer exists"
        )
    blue = await ctx.database()
    green = await ctx.gateway.database_by_arn(deployment.target_arn) if deployment.target_arn else None
    return await evaluate_readiness(ctx.gateway, deployment, blue, green, max_lag=ctx.env.max_replica_lag)


def not_ready(results: list[GateResult], stage: str) -> StepFailed:
    failures = failed(results)
    listed = "; ".join(f"{r.name}: {r.reason}" for r in failures)
    fixes = " ".join(dict.fromkeys(r.fix for r in failures if r.fix))
    return StepFailed(f"not ready to switch over ({stage}): {listed}", fix=fixes or None)


async def require_ready(ctx: StepContext, stage: str, deployment: Deployment | None = None) -> list[GateResult]:
    """The readiness gates, passed (unknowns allowed), waiting out a replica lag for up to `lag_wait`. StepFailed
    with the table and the fix otherwise. `stage` says when ("before detaching the proxies", ...), for the thread."""
    results = await evaluate(ctx, deployment)
    if not failed(results):
        return _passed(ctx, results)
    if not only_pending_lag(results):
        for row in gate_rows(results):
            ctx.say(row)
        raise not_ready(results, stage)
    started = float(ctx.state.get("lag_wait_started") or ctx.clock())  # a resumed step keeps its deadline
    ctx.save(lag_wait_started=started)
    lag = next(r for r in results if r.status == FAIL)
    wait = ctx.env.lag_wait
    approval = "the approval stays valid and " if ctx.run.meta.get("approved_fingerprint") else ""
    ctx.notify(
        f"Waiting for green to catch up {stage}: {lag.reason}. Re-checking for up to {wait:g} s; {approval}nothing"
        " is detached meanwhile. `cancel` stops the run safely."
    )
    ctx.say(f"waiting for the replica lag: {lag.reason}")
    latest = results

    identifier = deployment.identifier if deployment else None

    async def probe() -> list[GateResult] | None:
        nonlocal latest
        fresh = await ctx.gateway.deployment(identifier) if identifier else None
        if identifier and fresh is None:
            raise StepFailed(f"blue/green deployment {identifier} no longer exists")
        latest = await evaluate(ctx, fresh)
        if not failed(latest):
            return latest
        if not only_pending_lag(latest):
            raise not_ready(latest, stage)
        return None

    remaining = max(0.0, wait - (ctx.clock() - started))
    try:
        result = await polling.wait_for(
            probe, policy=LAG_POLL.within(remaining), what="the replica lag", check_cancel=ctx.check_cancel
        )
    except polling.WaitTimeout:
        for row in gate_rows(latest):
            ctx.say(row)
        failure = not_ready(latest, stage)
        raise StepFailed(
            f"{failure.message}; still over after waiting {wait:g} s (lag_wait). Nothing was detached.",
            fix=failure.fix,
        ) from None
    ctx.save(lag_wait_started=None, waited_for_lag=True)
    ctx.notify(f"Replica lag back under {ctx.env.max_replica_lag:g} s: carrying on ({stage}).")
    return _passed(ctx, result.value)


def _passed(ctx: StepContext, results: list[GateResult]) -> list[GateResult]:
    for row in gate_rows(results):
        ctx.say(row)
    ctx.observe(readiness=[r.to_dict() for r in results])
    unknown = [r.name for r in results if r.status == UNKNOWN]
    if unknown:
        ctx.say(f"not known (not blocking): {', '.join(unknown)}")
    return results


async def ready_to_act(ctx: StepContext, stage: str) -> None:
    """After the approval, right before the first AWS change of the switchover: the deployment is still ready.
    Nothing to do for a run without an approved switchover (a `create` detaching for the workaround) or once a
    window is open (a resumed step: the check happened before the first deregistration)."""
    if not ctx.run.meta.get("approved_fingerprint") or ctx.windows.open_windows():
        return
    await require_ready(ctx, stage)
    if ctx.state.get("waited_for_lag"):
        await verify_approved_plan(ctx)  # AWS had time to change while the bot waited
