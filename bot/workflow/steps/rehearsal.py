"""A rehearsal's own steps: restore a disposable clone of blue, wait for it, and tear everything down.

Safety: every mutation here names a resource this run created (`clone_name`), checked by `owned` right before the
call; the production database is only ever read.
"""

from __future__ import annotations

from bot.aws.models import Database
from bot.planning.rehearsal import clone_name
from bot.workflow import polling
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed


def owned(ctx: StepContext, identifier: str) -> str:
    """The identifier, if this rehearsal created it; StepFailed before any call that would touch anything else."""
    clone = clone_name(ctx.run.database, ctx.run_id)
    if identifier != clone:
        raise StepFailed(
            f"refused: a rehearsal may change only what it created ({clone}), not {identifier}",
            fix="This is a bug in the rehearsal's plan; nothing was sent to AWS. Report it with `show RUN`.",
        )
    return identifier


class RestoreClone(Step):
    kind = "restore_clone"

    async def run(self, ctx: StepContext) -> Replan | None:
        clone = owned(ctx, clone_name(ctx.run.database, ctx.run_id))
        if await ctx.gateway.instance(clone) is not None:
            ctx.say(f"{clone} already exists: not restoring again")
            return None
        shape = await ctx.gateway.instance_shape(ctx.run.database)
        if shape is None:
            raise StepFailed(f"database {ctx.run.database} no longer exists", fix="Nothing was created.")
        await ctx.mutate(
            lambda: ctx.gateway.restore_instance_clone(ctx.run.database, clone, shape, run_id=ctx.run_id),
            what=f"restore {ctx.run.database}'s latest restorable state into {clone}",
        )
        ctx.remember(clone=clone, restore_started=ctx.clock())
        ctx.observe(clone=clone, instance_class=shape.instance_class, parameter_group=shape.parameter_group)
        ctx.say(f"restoring {ctx.run.database} into {clone} ({shape.instance_class})")
        return None


class WaitCloneAvailable(Step):
    kind = "wait_clone_available"

    async def run(self, ctx: StepContext) -> Replan | None:
        clone = clone_name(ctx.run.database, ctx.run_id)

        async def probe() -> Database | None:
            found = await ctx.gateway.instance(clone)
            if found is None or found.status in {"failed", "restore-error", "incompatible-restore"}:
                said = await ctx.gateway.instance_event_messages(clone)
                reason = f": AWS says {' '.join(said)!r}" if said else ""
                raise StepFailed(
                    f"the restore of {clone} ended {found.status if found else 'with no instance'}{reason}",
                    fix="AWS's events for the instance say why: `aws rds describe-events --source-type db-instance"
                    f" --source-identifier {clone}`. The teardown deletes what was created.",
                )
            return found if found.status == "available" else None

        result = await polling.wait_for(
            probe, policy=polling.SLOW, what=f"{clone} to be available", check_cancel=ctx.check_cancel
        )
        started = float(ctx.run.meta.get("restore_started") or ctx.clock())
        seconds = round(ctx.clock() - started, 1)
        ctx.remember(measured={**ctx.run.meta.get("measured", {}), "restore_seconds": seconds})
        ctx.say(f"{result.value.identifier} is available ({seconds} s after the restore was asked for)")
        return None


class TeardownRehearsal(Step):
    """Delete the clone (no final snapshot) and check that nothing tagged for this rehearsal remains."""

    kind = "teardown_rehearsal"
    interruptible = False

    async def run(self, ctx: StepContext) -> Replan | None:
        clone = owned(ctx, clone_name(ctx.run.database, ctx.run_id))
        found = await ctx.gateway.instance(clone)
        if found is not None and found.status != "deleting":
            await ctx.mutate(lambda: ctx.gateway.delete_instance_clone(clone), what=f"delete the clone {clone}")

        async def gone() -> bool | None:
            return True if await ctx.gateway.instance(clone) is None else None

        await polling.wait_for(gone, policy=polling.SLOW, what=f"{clone} to be deleted")
        left = await ctx.gateway.rehearsal_leftovers(ctx.run_id)
        if left:
            raise StepFailed(
                f"still tagged for rehearsal {ctx.run_id}: {', '.join(left)}",
                fix=f"Delete them: `aws rds delete-db-instance --db-instance-identifier {left[0]}"
                " --skip-final-snapshot`.",
            )
        ctx.observe(deleted=[clone], leftovers=[])
        ctx.say(f"deleted {clone}; nothing tagged for this rehearsal remains")
        return None
