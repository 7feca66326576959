"""A rehearsal's gates: production's prerequisites on the clone before its deployment is created, and production's
readiness gates on the clone's deployment before its switchover. Read-only. They are recorded in run meta
(`prerequisites`, `readiness`) as a production run records them, for the report; a failure fails the step, and with
it the rehearsal (the teardown follows).
"""

from __future__ import annotations

from bot.gates.model import GateResult, failed, gate_rows
from bot.gates.prerequisites import CreateRequest, evaluate_prerequisites
from bot.gates.readiness import only_pending_lag
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed
from bot.workflow.steps.readiness import evaluate, not_ready, require_ready


def _record(ctx: StepContext, key: str, results: list[GateResult]) -> None:
    ctx.remember(**{key: [r.to_dict() for r in results]})
    ctx.observe(**{key: [r.to_dict() for r in results]})
    for row in gate_rows(results):
        ctx.say(row)


class RehearsalPrerequisites(Step):
    """`create`'s prerequisites, evaluated on the clone (blue's settings, restored) behind its own proxies."""

    kind = "rehearsal_prerequisites"

    async def run(self, ctx: StepContext) -> Replan | None:
        clone = await ctx.database()
        params = ctx.run.params
        request = CreateRequest(
            database=clone,
            engine_version=params.get("engine_version"),
            parameter_group=params.get("parameter_group"),
            strategy=ctx.run.strategy,
            mode=str(params.get("mode") or "auto"),
            registrations=tuple(ctx.registrations()),
            deployments=tuple(await ctx.gateway.deployments_for(clone)),
        )
        results = await evaluate_prerequisites(ctx.gateway, request)
        _record(ctx, "prerequisites", results)
        failures = failed(results)
        if failures:
            first = failures[0]
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            # The clone carries production's settings: the fix is for production, named as such.
            fix = (first.fix or "").replace(clone.identifier, ctx.run.database) or None
            raise StepFailed(
                f"prerequisite {first.name} failed on the clone {clone.identifier}: {first.reason}{more}; a create"
                f" of {ctx.run.database} would be refused the same way",
                fix=fix,
            )
        return None


class RehearsalReadiness(Step):
    """The readiness gates production checks before its approval request and its switchover, on the clone's
    deployment; a replica lag over the limit is waited out as production does (`lag_wait`)."""

    kind = "rehearsal_readiness"

    async def run(self, ctx: StepContext) -> Replan | None:
        deployment = await ctx.required(
            "deployment_id", ctx.gateway.deployment, missing="the rehearsal's deployment {} no longer exists"
        )
        stage = "before the rehearsal's switchover"
        results = await evaluate(ctx, deployment)
        if failed(results) and not only_pending_lag(results):
            _record(ctx, "readiness", results)
            raise not_ready(results, stage)
        if not failed(results):
            _record(ctx, "readiness", results)
            return None
        try:
            results = await require_ready(ctx, stage, deployment)  # waits out the lag, as production does
        except StepFailed:
            ctx.remember(readiness=[r.to_dict() for r in await evaluate(ctx, deployment)])  # the report's table
            raise
        ctx.remember(readiness=[r.to_dict() for r in results])
        return None
