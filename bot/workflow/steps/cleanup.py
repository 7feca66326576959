"""After a switchover: delete the old blue database (renamed `<name>-old1`), with a final snapshot.

An instance is one call. An Aurora cluster takes several, because AWS refuses DeleteDBCluster while a member instance
is not `deleting`: `delete_old_members` deletes every member first (readers, then the writer, so the old cluster
makes no needless failover; without snapshots, which AWS refuses for a cluster member), then `delete_old_blue`
deletes the cluster with its final snapshot, which holds the data.

Each deletion is sent once. A resumed step skips a deletion an earlier attempt saw AWS accept, and one AWS already
shows `deleting` or gone (recording it, if that attempt died before AWS answered). Nothing carrying the production
name, and no member of the production cluster, is ever deleted.
"""

from __future__ import annotations

from bot.aws.commands import aws_command
from bot.aws.models import Database
from bot.errors import InvalidState, NotFound
from bot.workflow import polling
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed

# AWS answers DeleteDBInstance with the instance already `deleting`; waiting longer than this means something is off.
MEMBERS_DELETING_TIMEOUT = 600.0


def accepted(ctx: StepContext, what: str) -> bool:
    """Whether an earlier attempt of this step recorded AWS accepting that mutation (deletions cannot be undone)."""
    return any(call.get("what") == what and call.get("outcome") == "ok" for call in ctx.record.aws_calls)


def refuse_production(ctx: StepContext, identifier: str, protected: frozenset[str] = frozenset()) -> None:
    if identifier == ctx.run.database or identifier in protected:
        raise StepFailed(
            f"refusing to delete {identifier}: it carries the production name of {ctx.run.database}",
            fix="Nothing was deleted. Check which database is `-old1` in the AWS console.",
        )


def deletion_order(cluster: Database) -> list[str]:
    """The cluster's members, readers first and the writer last."""
    readers = [m for m in cluster.members if m != cluster.writer]
    return readers + [m for m in cluster.members if m == cluster.writer]


def member_command(member: str) -> str:
    return aws_command("DeleteDBInstance", {"DBInstanceIdentifier": member, "SkipFinalSnapshot": True})


def database_command(database: Database, snapshot: str) -> str:
    if database.kind == "cluster":
        return aws_command(
            "DeleteDBCluster", {"DBClusterIdentifier": database.identifier, "FinalDBSnapshotIdentifier": snapshot}
        )
    return aws_command(
        "DeleteDBInstance", {"DBInstanceIdentifier": database.identifier, "FinalDBSnapshotIdentifier": snapshot}
    )


async def live_members(ctx: StepContext, members: list[str]) -> list[str]:
    """The members that still exist and are not `deleting`."""
    live = []
    for member in members:
        instance = await ctx.gateway.instance(member)
        if instance is not None and instance.status != "deleting":
            live.append(member)
    return live


class DeleteOldMembers(Step):
    """Aurora: delete every member instance of the old blue cluster, then wait until AWS shows each `deleting` or
    gone, which is all DeleteDBCluster needs."""

    kind = "delete_old_members"

    async def run(self, ctx: StepContext) -> Replan | None:
        if "members" not in ctx.state:
            old = await ctx.recorded("blue_arn", ctx.gateway.database_by_arn)
            if old is None:
                ctx.say("the old blue cluster is already gone")
                return None
            refuse_production(ctx, old.identifier)
            if old.kind != "cluster":
                ctx.say(f"{old.identifier} is not an Aurora cluster: it has no member instances")
                return None
            ctx.save(members=deletion_order(old), cluster=old.identifier)
            ctx.remember(old_members=deletion_order(old))
        members: list[str] = ctx.state["members"]
        cluster: str = ctx.state["cluster"]
        production = await ctx.database()
        protected = frozenset(production.members)
        for member in members:
            await self._delete(ctx, cluster, member, protected)
        await self._wait_deleting(ctx, members)
        ctx.observe(cluster=cluster, members=members)
        return None

    async def _delete(self, ctx: StepContext, cluster: str, member: str, protected: frozenset[str]) -> None:
        refuse_production(ctx, member, protected)
        what = f"delete {member}, member of old blue {cluster}, without a snapshot"
        if accepted(ctx, what):
            ctx.say(f"{member}: deletion already accepted by AWS")
            return
        instance = await ctx.gateway.instance(member)
        if instance is None or instance.status == "deleting":
            if member in ctx.state.get("sent", []) and not ctx.answered(what):
                ctx.confirm_applied("DeleteDBInstance", what, member_command(member))
            ctx.say(f"{member} was already {'deleted' if instance is None else 'being deleted'}")
            return
        if instance.cluster != cluster:
            raise StepFailed(
                f"refusing to delete {member}: it belongs to {instance.cluster or 'no cluster'} now, not to {cluster}",
                fix="Nothing more was deleted. Check the old cluster's members in the AWS console.",
            )
        ctx.save(sent=[*ctx.state.get("sent", []), member])
        try:
            await ctx.mutate(lambda: ctx.gateway.delete_cluster_member(member), what=what)
        except (InvalidState, NotFound):
            # "already being deleted" or "not found": a retried request AWS had applied, or someone else's deletion.
            again = await ctx.gateway.instance(member)
            if again is not None and again.status != "deleting":
                raise
        ctx.say(f"deleting {member} (no snapshot: the cluster's final snapshot holds the data)")

    async def _wait_deleting(self, ctx: StepContext, members: list[str]) -> None:
        async def probe() -> bool | None:
            return True if not await live_members(ctx, members) else None

        policy = polling.SLOW.within(MEMBERS_DELETING_TIMEOUT)
        try:
            await polling.wait_for(
                probe, policy=policy, what="the old members to be deleting", check_cancel=ctx.check_cancel
            )
        except polling.WaitTimeout:
            live = await live_members(ctx, members)
            raise StepFailed(
                f"{', '.join(live)} still not being deleted after {MEMBERS_DELETING_TIMEOUT:.0f} s",
                fix="Check them in the AWS console; the cluster is not deleted until every member is.",
            ) from None


class DeleteOldBlue(Step):
    """Delete the old blue instance, or the old blue cluster once its members are deleting, with a final snapshot."""

    kind = "delete_old_blue"

    async def run(self, ctx: StepContext) -> Replan | None:
        old = await ctx.recorded("blue_arn", ctx.gateway.database_by_arn)
        if old is None:
            self._confirm_if_sent(ctx)
            ctx.say("the old blue database is already gone")
            return None
        refuse_production(ctx, old.identifier)
        snapshot = f"{old.identifier}-final-{ctx.run_id[2:]}"[:255]
        what = f"delete old blue {old.identifier} with final snapshot {snapshot}"
        ctx.remember(old_blue=old.identifier, final_snapshot=snapshot)
        if accepted(ctx, what):
            ctx.say(f"{old.identifier}: deletion already accepted by AWS")
            return None
        if old.status == "deleting":
            self._confirm_if_sent(ctx)
            ctx.say(f"{old.identifier} is already being deleted")
            return None
        live = await live_members(ctx, list(old.members))
        if live:
            raise StepFailed(
                f"{old.identifier} still has member instances that are not being deleted: {', '.join(live)}; "
                "AWS refuses to delete a cluster before its members",
                fix="Delete each with `" + member_command("ID") + "`, then `" + database_command(old, snapshot) + "`.",
            )
        await _lift_deletion_protection(ctx, old)
        action = "DeleteDBCluster" if old.kind == "cluster" else "DeleteDBInstance"
        ctx.save(sent={"what": what, "action": action, "command": database_command(old, snapshot)})
        try:
            await ctx.mutate(lambda: ctx.gateway.delete_database(old, final_snapshot=snapshot), what=what)
        except (InvalidState, NotFound):
            again = await ctx.gateway.database_by_arn(old.arn)
            if again is not None and again.status != "deleting":
                raise
        ctx.say(f"deleting {old.identifier}; final snapshot {snapshot}")
        return None

    def _confirm_if_sent(self, ctx: StepContext) -> None:
        """An earlier attempt sent the deletion and died before AWS answered; AWS now shows it applied."""
        sent = ctx.state.get("sent")
        if sent and not ctx.answered(sent["what"]):
            ctx.confirm_applied(sent["action"], sent["what"], sent["command"])


async def _lift_deletion_protection(ctx: StepContext, old: Database) -> None:
    """AWS refuses to delete a protected database; the approval to delete old blue covers turning it off (old blue
    keeps the protection production had). Read fresh each time, so a resumed step never sends it twice."""
    settings = await ctx.gateway.database_settings(old.arn)
    if settings is None or not settings.deletion_protection:
        return
    await ctx.mutate(
        lambda: ctx.gateway.set_deletion_protection(settings, False),
        what=f"turn off deletion protection on old blue {old.identifier} (approved with its deletion)",
    )
    ctx.say(f"{old.identifier}: deletion protection turned off, as approved, so that AWS accepts the deletion")


class WaitOldBlueGone(Step):
    kind = "wait_old_blue_gone"

    async def run(self, ctx: StepContext) -> Replan | None:
        blue_arn = ctx.run.meta.get("blue_arn")
        members: list[str] = ctx.run.meta.get("old_members", [])

        async def probe() -> bool | None:
            if blue_arn and await ctx.gateway.database_by_arn(blue_arn) is not None:
                return None
            for member in members:
                if await ctx.gateway.instance(member) is not None:
                    return None
            return True

        await polling.wait_for(probe, policy=polling.SLOW, what="the old blue database to be deleted")
        ctx.say("old blue database deleted" + (f", with its members {', '.join(members)}" if members else ""))
        return None
