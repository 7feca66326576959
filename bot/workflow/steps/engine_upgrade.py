"""Runbook step 4: upgrade the engine on green when the deployment was not created at the target version."""

from __future__ import annotations

from bot.aws.models import Database, major_version
from bot.workflow import polling
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed


async def green_database(ctx: StepContext) -> Database:
    return await ctx.required("green_arn", ctx.gateway.database_by_arn, missing="green database {} not found")


class ModifyGreenVersion(Step):
    kind = "modify_green_version"

    async def run(self, ctx: StepContext) -> Replan | None:
        green = await green_database(ctx)
        target = str(ctx.run.params["engine_version"])
        if green.engine_version == target:
            ctx.say(f"{green.identifier} already runs {target}")
            return None
        if green.status == "upgrading":
            ctx.say(f"{green.identifier} is already upgrading: not asking again")
            return None
        if green.status != "available":
            raise StepFailed(f"green {green.identifier} is {green.status}, not available")
        allow_major = major_version(green.engine, target) != green.major_version
        await ctx.mutate(
            lambda: ctx.gateway.modify_engine_version(green, target, allow_major=allow_major),
            what=f"upgrade {green.identifier} from {green.engine_version} to {target}",
        )
        ctx.observe(green=green.identifier, before=green.engine_version, target=target, major=allow_major)
        ctx.say(f"{green.identifier}: {green.engine_version} -> {target}" + (" (major version)" if allow_major else ""))
        return None


class WaitGreenVersion(Step):
    kind = "wait_green_version"

    async def run(self, ctx: StepContext) -> Replan | None:
        target = str(ctx.run.params["engine_version"])

        async def probe() -> Database | None:
            green = await green_database(ctx)
            return green if green.status == "available" and green.engine_version == target else None

        result = await polling.wait_for(
            probe, policy=polling.SLOW, what=f"green to be available at {target}", check_cancel=ctx.check_cancel
        )
        ctx.observe(version=result.value.engine_version, status=result.value.status)
        ctx.say(f"{result.value.identifier} is available at {target}")
        return None
