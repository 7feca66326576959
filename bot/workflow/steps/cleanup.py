"""After a switchover: delete the old blue database (renamed `<name>-old1`), with a final snapshot."""

from __future__ import annotations

from bot.workflow import polling
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed


class DeleteOldBlue(Step):
    kind = "delete_old_blue"

    async def run(self, ctx: StepContext) -> Replan | None:
        old = await ctx.recorded("blue_arn", ctx.gateway.database_by_arn)
        if old is None:
            ctx.say("the old blue database is already gone")
            return None
        if old.identifier == ctx.run.database:
            raise StepFailed(f"refusing to delete {old.identifier}: it carries the production name")
        if old.status == "deleting":
            ctx.say(f"{old.identifier} is already being deleted")
            return None
        snapshot = f"{old.identifier}-final-{ctx.run_id[2:]}"[:255]
        ctx.remember(old_blue=old.identifier, final_snapshot=snapshot)
        await ctx.mutate(
            lambda: ctx.gateway.delete_database(old, final_snapshot=snapshot),
            what=f"delete old blue {old.identifier} with final snapshot {snapshot}",
        )
        ctx.say(f"deleting {old.identifier}; final snapshot {snapshot}")
        return None


class WaitOldBlueGone(Step):
    kind = "wait_old_blue_gone"

    async def run(self, ctx: StepContext) -> Replan | None:
        blue_arn = ctx.run.meta.get("blue_arn")

        async def probe() -> bool | None:
            return True if not blue_arn or await ctx.gateway.database_by_arn(blue_arn) is None else None

        await polling.wait_for(probe, policy=polling.SLOW, what="the old blue database to be deleted")
        ctx.say("old blue database deleted")
        return None
