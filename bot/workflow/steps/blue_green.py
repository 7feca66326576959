"""Blue/Green Deployment steps: preflight checks, create, wait, switch over, delete."""

from __future__ import annotations

from bot.aws.environment_tags import GREEN_TAG
from bot.aws.models import Database, Deployment, Registration, identifier_from_arn, major_version
from bot.aws.responses import health_of
from bot.errors import AwsError, ProxyNotSupported
from bot.planning.fingerprint import switchover_fingerprint
from bot.planning.plan import workaround_create_steps
from bot.workflow import polling, rehearsal_history
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed, verify_approved_plan
from bot.workflow.steps.readiness import ready_to_act, require_ready
from bot.workflow.watch import DeploymentWatch

ACTIVE_STATUSES = {"PROVISIONING", "AVAILABLE", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_FAILED", "INVALID_CONFIGURATION"}


async def unhealthy_targets(ctx: StepContext, database: Database, registrations: list[Registration]) -> list[str]:
    problems = []
    for registration in registrations:
        targets = await ctx.gateway.targets(registration.proxy, registration.target_group)
        for target in health_of(database, targets):
            if not target.available:
                reason = f" ({target.reason})" if target.reason else ""
                problems.append(f"{registration.label}: {target.rds_resource_id} is {target.state}{reason}")
    return problems


async def current_deployment(ctx: StepContext) -> Deployment:
    return await ctx.required(
        "deployment_id", ctx.gateway.deployment, missing="blue/green deployment {} no longer exists"
    )


class PreflightCreate(Step):
    """Read-only: the database, where it is registered (the rollback record), no deployment in the way."""

    kind = "preflight_create"

    async def run(self, ctx: StepContext) -> Replan | None:
        database = await ctx.database()
        if database.kind == "instance" and database.cluster:
            raise StepFailed(f"{database.identifier} belongs to Aurora cluster {database.cluster}; use the cluster")
        if "registrations" not in ctx.run.meta:
            # A scan started now, not a recent one: this record is what the run will detach and restore.
            registrations = await ctx.gateway.registrations(database, fresh_after=ctx.gateway.proxy_index.clock())
            ctx.remember(registrations=[r.to_dict() for r in registrations])
        registrations = ctx.registrations()
        existing = [
            d
            for d in await ctx.gateway.deployments_for(database)
            if d.status in ACTIVE_STATUSES and d.name != ctx.run.meta.get("deployment_name")
        ]
        if existing:
            raise StepFailed(
                f"{database.identifier} already has deployment {existing[0].identifier} ({existing[0].status})",
                fix="Switch it over, or remove it with `rollback`, before creating another.",
            )
        problems = await unhealthy_targets(ctx, database, registrations)
        if problems:
            raise StepFailed("proxy targets are not healthy: " + "; ".join(problems), fix="Fix the proxy first.")
        ctx.observe(
            engine=database.engine,
            version=database.engine_version,
            status=database.status,
            proxies=[r.label for r in registrations],
        )
        ctx.say(
            f"{database.identifier}: {database.engine} {database.engine_version}, {database.status};"
            f" registered with {', '.join(r.label for r in registrations) or 'no proxy'}"
        )
        return None


class CreateDeployment(Step):
    """Runbook step 2: create the blue/green deployment (tagged with the run id)."""

    kind = "create_deployment"

    async def run(self, ctx: StepContext) -> Replan | None:
        name = ctx.run.meta["deployment_name"]
        existing = await ctx.gateway.deployment_named(name)
        if existing is None:
            source = await ctx.database()
            params = ctx.run.params
            sent = ctx.clock()
            try:
                await ctx.mutate(
                    lambda: ctx.gateway.create_deployment(
                        name=name,
                        source=source,
                        engine_version=params.get("engine_version"),
                        parameter_group=params.get("parameter_group"),
                        tags={"bluegreen-bot:run-id": ctx.run_id, "bluegreen-bot:strategy": ctx.params["strategy"]},
                    ),
                    what=f"create blue/green deployment {name}",
                )
            except ProxyNotSupported as exc:
                if ctx.params.get("fallback"):
                    ctx.say(f"AWS refused the native strategy: {exc.message}")
                    return Replan(
                        reason=f"AWS refused a blue/green deployment with the proxy attached ({exc.code});"
                        " falling back to the runbook's workaround",
                        strategy="workaround",
                        steps=workaround_create_steps(ctx.registrations(), ctx.subject),
                    )
                raise StepFailed(exc.message, fix="Run it again with --mode workaround.") from exc
            except AwsError as exc:
                if exc.code != "BlueGreenDeploymentAlreadyExistsFault":
                    raise
            ctx.windows.aws_time(sent, ctx.clock())
            existing = await ctx.gateway.deployment_named(name)
            if existing is None:
                raise StepFailed(f"AWS accepted the creation of {name} but does not list it")
        else:
            ctx.say(f"{name} already exists ({existing.identifier}): not created again")
        ctx.remember(deployment_id=existing.identifier, green_arn=existing.target_arn)
        ctx.observe(deployment=existing.identifier, status=existing.status, green=existing.target_arn)
        ctx.say(f"deployment {existing.identifier} ({existing.status}); green {existing.target_arn}")
        return None


class WaitDeploymentAvailable(Step):
    """Wait for the deployment to be AVAILABLE, reporting its tasks."""

    kind = "wait_deployment_available"

    async def run(self, ctx: StepContext) -> Replan | None:
        seen: dict[str, str] = {}
        watch = DeploymentWatch(ctx)
        # Each task's statuses as the bot saw them change: [status, seen at, the look before] (kept across a
        # restart), from which a rehearsal's report gives each task's duration. One write per change.
        history: dict[str, list[list[object]]] = dict(ctx.run.meta.get("deployment_tasks") or {})
        looked: list[float | None] = [None]

        async def probe() -> Deployment | None:
            deployment = await current_deployment(ctx)
            now, changed = ctx.clock(), False
            for task in deployment.tasks:
                if seen.get(task.name) != task.status:
                    seen[task.name] = task.status
                    ctx.say(f"task {task.name}: {task.status}")
                transitions = history.setdefault(task.name, [])
                if not transitions or transitions[-1][0] != task.status:
                    transitions.append([task.status, now, looked[0]])
                    changed = True
            looked[0] = now
            if changed:
                ctx.remember(deployment_tasks=history)
            failure = await watch.inspect(deployment)
            if failure is not None:
                raise watch.fail(failure)
            return deployment if deployment.status == "AVAILABLE" else None

        result = await polling.wait_for(
            probe, policy=polling.SLOW, what="the blue/green deployment to be AVAILABLE", check_cancel=ctx.check_cancel
        )
        watch.report_held_events()
        green = await ctx.gateway.database_by_arn(result.value.target_arn or "")
        ctx.observe(
            status="AVAILABLE", green=green.identifier if green else None, green_version=green and green.engine_version
        )
        ctx.say(f"deployment AVAILABLE; green {green.identifier if green else '?'} at {green and green.engine_version}")
        return None


class PreflightSwitchover(Step):
    """Read-only: the readiness gates (deployment AVAILABLE, green ready, replica lag, ...), green at the expected
    version, every proxy target healthy."""

    kind = "preflight_switchover"

    async def run(self, ctx: StepContext) -> Replan | None:
        database = await ctx.database()
        candidates = [d for d in await ctx.gateway.deployments_for(database) if d.status in ACTIVE_STATUSES]
        if not candidates:
            raise StepFailed(
                f"{database.identifier} has no blue/green deployment to switch over",
                fix=f"Create one first: `create {database.identifier}`.",
            )
        deployment = candidates[0]
        # The readiness gates (the deployment AVAILABLE among them), shown as a table in the approval request.
        readiness = await require_ready(ctx, "before the approval request", deployment)
        ctx.remember(readiness=[r.to_dict() for r in readiness])
        green = await ctx.gateway.database_by_arn(deployment.target_arn or "")
        if green is None or green.status != "available":
            raise StepFailed(f"green {deployment.target_arn} is {green.status if green else 'missing'}, not available")
        expected = ctx.run.params.get("engine_version")
        if expected and green.engine_version != expected:
            raise StepFailed(f"green runs {green.engine_version}, not the expected {expected}")
        if "registrations" not in ctx.run.meta:
            fresh = ctx.gateway.proxy_index.clock()
            ctx.remember(
                registrations=[r.to_dict() for r in await ctx.gateway.registrations(database, fresh_after=fresh)]
            )
        registrations = ctx.registrations()
        problems = await unhealthy_targets(ctx, database, registrations)
        if problems:
            raise StepFailed("proxy targets are not healthy: " + "; ".join(problems), fix="Fix the proxy first.")
        ctx.remember(deployment_id=deployment.identifier, green_arn=deployment.target_arn)
        facts = {
            "deployment": f"{deployment.identifier} ({deployment.status})",
            "blue": f"{database.identifier} {database.engine} {database.engine_version}",
            "green": f"{green.identifier} {green.engine_version} ({green.status})",
            "proxies": ", ".join(f"{r.label} AVAILABLE" for r in registrations) or "none",
            "strategy": ctx.run.strategy or "direct",
            "expected detached window": ctx.run.meta.get("detached_estimate") or "none",
        }
        ctx.remember(facts=facts, switchover_timeout=ctx.params.get("timeout"))
        if ctx.run.kind == "switchover":  # the approval request shows the latest rehearsal of green's version
            version = green.engine_version if green.engine_version != database.engine_version else None
            found = rehearsal_history.latest(
                ctx.store, environment=ctx.run.environment, database=ctx.run.database, version=version
            )
            ctx.remember(rehearsed=found)
        fingerprint = switchover_fingerprint(
            deployment,
            green.engine_version,
            [r.label for r in registrations],
            ctx.run.strategy,
            ctx.params.get("timeout"),
            fix_drift=bool(ctx.run.params.get("fix_drift")),
        )
        ctx.store.runs.update(ctx.run_id, plan_fingerprint=fingerprint)
        ctx.observe(**facts, fingerprint=fingerprint)
        for key, value in facts.items():
            ctx.say(f"{key}: {value}")
        if major_version(green.engine, green.engine_version) != database.major_version:
            ctx.say(f"major version change {database.engine_version} -> {green.engine_version}")
        return None


class Switchover(Step):
    """Runbook step 6: switch over and wait for SWITCHOVER_COMPLETED. Sent at most once per AVAILABLE deployment."""

    kind = "switchover"
    interruptible = False  # once AWS runs it, it cannot be stopped; the proxy must be restored after

    async def run(self, ctx: StepContext) -> Replan | None:
        timeout = int(ctx.params.get("timeout") or 300)
        inside_window = bool(ctx.windows.open_windows())
        first_attempt = not ctx.state.get("requested_at")
        if inside_window and first_attempt:
            # Checked before the detachment; looking again here would only lengthen the window.
            status = "AVAILABLE"
            deployment_id = ctx.run.meta["deployment_id"]
        else:
            deployment = await current_deployment(ctx)
            if not inside_window and deployment.status == "AVAILABLE":
                await verify_approved_plan(ctx)  # only before sending; a resumed wait has nothing to verify
                await ready_to_act(ctx, "before the switchover call")  # native or direct: nothing is detached
            status, deployment_id = deployment.status, deployment.identifier
        sent = ctx.clock()
        if status == "AVAILABLE":
            ctx.save(requested_at=sent)
            try:
                await ctx.mutate(
                    lambda: ctx.gateway.switchover(deployment_id, timeout),
                    what=f"switch over {deployment_id}",
                )
            except AwsError as exc:
                if exc.code != "InvalidBlueGreenDeploymentStateFault":
                    raise
                ctx.say("AWS says a switchover is already under way (a retried request): waiting for it")
        else:
            ctx.say(f"deployment is {status}: not sending the switchover again")

        async def probe() -> Deployment | None:
            current = await current_deployment(ctx)
            return current if current.status in {"SWITCHOVER_COMPLETED", "SWITCHOVER_FAILED"} else None

        result = await polling.wait_for(
            probe,
            policy=polling.CRITICAL.within(timeout + 600),
            what="the switchover to finish",
        )
        ctx.windows.aws_time(sent, result.last_miss_sent)
        final = result.value
        ctx.observe(status=final.status, details=final.status_details, polls=result.polls)
        if final.status == "SWITCHOVER_FAILED":
            raise StepFailed(
                f"switchover of {final.identifier} failed: {final.status_details or 'no details'}; AWS rolled it back",
                fix="Nothing was renamed. Check the guardrails (replication lag, long transactions), then retry.",
            )
        ctx.say(f"switchover completed in about {result.seen_at - sent:.2f} s ({result.polls} polls)")
        ctx.remember(switched_over_at=result.seen_at)
        return None


class LocateDeployment(Step):
    """Find the deployment of this database: before switchover its source, after switchover its target."""

    kind = "locate_deployment"

    async def run(self, ctx: StepContext) -> Replan | None:
        database = await ctx.database()
        expect = ctx.params.get("expect", "any")
        if ctx.run.meta.get("deployment_id"):
            deployment = await ctx.gateway.deployment(ctx.run.meta["deployment_id"])
            if deployment is None:
                ctx.say("the deployment is already gone")
                return None
        else:
            found = await ctx.gateway.deployments_for(database) + await ctx.gateway.deployments_for(
                database, role="target"
            )
            if not found:
                raise StepFailed(f"{database.identifier} has no blue/green deployment")
            deployment = found[0]
        if expect == "switched" and not deployment.switched_over:
            raise StepFailed(
                f"deployment {deployment.identifier} is {deployment.status}, not switched over",
                fix=f"Use `rollback {database.identifier}` to remove a deployment that was not switched over.",
            )
        if expect == "not_switched" and deployment.switched_over:
            raise StepFailed(
                f"deployment {deployment.identifier} was already switched over: too late to roll back",
                fix=f"Use `cleanup {database.identifier}` to remove it.",
            )
        ctx.remember(
            deployment_id=deployment.identifier, green_arn=deployment.target_arn, blue_arn=deployment.source_arn
        )
        ctx.observe(deployment=deployment.identifier, status=deployment.status, source=deployment.source_arn)
        ctx.say(f"deployment {deployment.identifier}: {deployment.status}")
        return None


class DeleteDeployment(Step):
    """Delete the deployment. DeleteTarget only before a switchover (after one, green is production)."""

    kind = "delete_deployment"

    async def run(self, ctx: StepContext) -> Replan | None:
        deployment = await ctx.recorded("deployment_id", ctx.gateway.deployment)
        if deployment is None:
            ctx.say("deployment already deleted")
            return None
        if deployment.status == "DELETING":
            ctx.say("deletion already under way")
            return None
        delete_target = bool(ctx.params.get("delete_target")) and not deployment.switched_over
        if delete_target:  # the IAM policy lets AWS delete green on the bot's behalf only once green is marked
            for arn in await ctx.gateway.unmarked_green(deployment):
                await ctx.mutate(
                    lambda a=arn: ctx.gateway.mark_green(a),
                    what=f"tag {identifier_from_arn(arn)} {GREEN_TAG}=true before deleting it with the deployment",
                )
        await ctx.mutate(
            lambda: ctx.gateway.delete_deployment(deployment.identifier, delete_target=delete_target),
            what=f"delete blue/green deployment {deployment.identifier}" + (" and green" if delete_target else ""),
        )
        ctx.say(f"deleting {deployment.identifier}" + (" with its green resources" if delete_target else ""))
        return None


class WaitDeploymentGone(Step):
    kind = "wait_deployment_gone"

    async def run(self, ctx: StepContext) -> Replan | None:
        deployment_id = ctx.run.meta.get("deployment_id")

        async def probe() -> bool | None:
            return True if await ctx.gateway.deployment(deployment_id) is None else None

        if deployment_id:
            await polling.wait_for(probe, policy=polling.SLOW, what=f"{deployment_id} to be deleted")
        ctx.say("deployment deleted")
        return None
