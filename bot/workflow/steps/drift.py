"""After a switchover: the drift report (old blue against the new primary, `bot.gates.drift`) posted in the thread,
and with --fix-drift (or the environment's `fix_drift`) deletion protection and tags restored on the new primary.

Old blue is the switched-over deployment's source (AWS renamed it `<name>-old1`, as `cleanup` finds it), the new
primary its target. The report is computed once and kept in the step's state, so a resumed step posts and fixes what
it saw right after the switchover, not what its own fixes left. Each fix is checked against AWS before it is sent
(a fix already there is not sent again; one sent by an attempt that died before AWS answered is recorded as
applied), so nothing is changed twice.

Without fixes to make, a report AWS would not let the bot read is a notice, not a failure: the switchover is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.aws.commands import aws_command
from bot.aws.gateway import Mutation
from bot.aws.settings_changes import DatabaseSettings, add_tags_params, deletion_protection_params
from bot.errors import AwsError
from bot.gates.drift import DriftFixes, DriftReport, compare, fixes_for
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed


def fix_requested(ctx: StepContext) -> bool:
    return bool(ctx.run.params.get("fix_drift"))


def describe_commands(database: str, kind: str) -> str:
    action, key = ("DescribeDBClusters", "DBClusterIdentifier") if kind == "cluster" else (
        "DescribeDBInstances", "DBInstanceIdentifier")  # fmt: skip
    return f"`{aws_command(action, {key: database + '-old1'})}` and `{aws_command(action, {key: database})}`"


class DriftReportStep(Step):
    """Read-only unless the run asked for --fix-drift."""

    kind = "drift_report"

    async def run(self, ctx: StepContext) -> Replan | None:
        if "report" not in ctx.state:
            read = await self._read(ctx)
            if read is None:
                return None
            old, new = read
            ctx.save(report=compare(old, new).to_dict(), fixes=fixes_for(old, new).to_dict(),
                     new={"arn": new.arn, "identifier": new.identifier, "kind": new.kind})  # fmt: skip
        report = DriftReport.from_dict(ctx.state["report"])
        fixes = DriftFixes.from_dict(ctx.state["fixes"])
        if not ctx.state.get("posted"):
            ctx.notify(report.text())
            ctx.save(posted=True)
        for line in report.lines():
            ctx.say(line)
        fixed: list[str] = []
        if fix_requested(ctx):
            fixed = await self._fix(ctx, fixes)
        ctx.observe(drift=report.to_dict(), differences=len(report.differences), fixed=fixed)
        with ctx.store.atomic():
            run = ctx.run
            ctx.store.runs.update(ctx.run_id, summary={**run.summary, "drift": {**report.to_dict(), "fixed": fixed}})
        return None

    async def _read(self, ctx: StepContext) -> tuple[DatabaseSettings, DatabaseSettings] | None:
        database = ctx.run.database
        try:
            why = None
            deployment = await ctx.recorded("deployment_id", ctx.gateway.deployment)
            if deployment is None or not deployment.switched_over or not deployment.target_arn:
                status = deployment.status if deployment else "gone"
                why = f"deployment {ctx.run.meta.get('deployment_id')} is {status}"
            else:
                old = await ctx.gateway.database_settings(deployment.source_arn)
                new = await ctx.gateway.database_settings(deployment.target_arn)
                if old is not None and new is not None:
                    return old, new
                why = f"{deployment.source_arn if old is None else deployment.target_arn} no longer exists"
        except AwsError as exc:
            why = f"AWS did not answer ({exc.code}: {exc.message})"
        kind = str(ctx.run.meta.get("database_kind", "instance"))
        text = f"No drift report: {why}. Compare old blue and {database} by hand: {describe_commands(database, kind)}."
        if fix_requested(ctx):
            raise StepFailed(
                f"the switchover completed, but --fix-drift could not read old blue and {database}: {why}",
                fix=f"Compare them by hand ({describe_commands(database, kind)}) and fix deletion protection and tags.",
            )
        ctx.notify(text)
        ctx.say(text)
        return None

    async def _fix(self, ctx: StepContext, fixes: DriftFixes) -> list[str]:
        target = ctx.state["new"]
        if fixes.empty:
            ctx.say("--fix-drift: deletion protection and tags already match old blue; nothing to change")
            return []
        try:
            current = await ctx.gateway.database_settings(target["arn"])
        except AwsError as exc:
            raise StepFailed(
                f"the switchover completed, but --fix-drift could not read {target['identifier']}: {exc.message}",
                fix="Set deletion protection and tags by hand as the drift report above shows.",
            ) from exc
        if current is None:
            raise StepFailed(f"the switchover completed, but the new primary {target['identifier']} is gone")
        fixed = []
        if fixes.deletion_protection:
            action, params = deletion_protection_params(current.identifier, current.kind, True)
            what = f"turn on deletion protection on {current.identifier}, as on old blue"
            if current.deletion_protection:
                self._confirm_if_sent(ctx, action, what, aws_command(action, params))
                ctx.say(f"{current.identifier}: deletion protection already on")
            else:
                await self._send(ctx, what, aws_command(action, params),
                                 lambda: ctx.gateway.set_deletion_protection(current, True))  # fmt: skip
            fixed.append("deletion protection")
        if fixes.tags:
            what = f"add old blue's tags {', '.join(sorted(fixes.tags))} to {current.identifier}"
            still = {key: value for key, value in fixes.tags.items() if current.tags.get(key) != value}
            command = aws_command("AddTagsToResource", add_tags_params(current.arn, still or fixes.tags))
            if not still:
                self._confirm_if_sent(ctx, "AddTagsToResource", what, command)
                ctx.say(f"{current.identifier}: old blue's tags already present")
            else:
                await self._send(ctx, what, command, lambda: ctx.gateway.add_tags(current.arn, still))
            fixed.append("tags " + ", ".join(f"{k}={v}" for k, v in sorted(fixes.tags.items())))
        if not ctx.state.get("fixes_posted"):
            ctx.notify(f"--fix-drift: {current.identifier} now has old blue's {' and '.join(fixed)}.")
            ctx.save(fixes_posted=True)
        return fixed

    @staticmethod
    async def _send(ctx: StepContext, what: str, command: str, call: Callable[[], Awaitable[Mutation]]) -> None:
        ctx.save(sent=[*ctx.state.get("sent", []), what])
        try:
            await ctx.mutate(call, what=what)
        except AwsError as exc:
            raise StepFailed(
                f"the switchover completed, but --fix-drift could not {what}: {exc.code}: {exc.message}",
                fix=f"Run `{command}`.",
            ) from exc
        ctx.say(f"{what}: done")

    @staticmethod
    def _confirm_if_sent(ctx: StepContext, action: str, what: str, command: str) -> None:
        """An earlier attempt sent this fix and died before AWS answered; AWS now shows it applied."""
        if what in ctx.state.get("sent", []) and not ctx.answered(what):
            ctx.confirm_applied(action, what, command)
