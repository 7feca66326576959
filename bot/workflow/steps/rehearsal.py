"""A rehearsal's own steps: restore a disposable clone of blue, wait for it, and tear everything down.

Safety: every mutation here names a resource this run created (`clone_name`), checked by `owned` right before the
call; the production database is only ever read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.aws.environment_tags import ENVIRONMENT_TAG
from bot.aws.models import Database, Registration
from bot.aws.rehearsal_clones import REHEARSAL_TAG, InstanceShape
from bot.errors import AwsError, BlueGreenError
from bot.planning.plan import StepSpec
from bot.planning.rehearsal import clone_name
from bot.planning.strategy import switchover_strategy
from bot.workflow import polling, rehearsal_report
from bot.workflow.rehearsal_sweep import SWEEP_COMMAND
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed
from bot.workflow.steps.proxy_targets import attach

RESTORE_FAILED = {"failed", "restore-error", "incompatible-restore", "cloning-failed", "incompatible-parameters"}


def owned(ctx: StepContext, identifier: str) -> str:
    """The identifier, if this rehearsal created it; StepFailed before any call that would touch anything else."""
    clone = clone_name(ctx.run.database, ctx.run_id)
    if identifier != clone and not identifier.startswith(f"{clone}-"):
        raise StepFailed(
            f"refused: a rehearsal may change only what it created ({clone}), not {identifier}",
            fix="This is a bug in the rehearsal's plan; nothing was sent to AWS. Report it with `show RUN`.",
        )
    return identifier


def is_cluster(ctx: StepContext) -> bool:
    return ctx.run.meta.get("database_kind") == "cluster"


async def clone_database(ctx: StepContext, identifier: str) -> Database | None:
    return await (ctx.gateway.cluster(identifier) if is_cluster(ctx) else ctx.gateway.instance(identifier))


class RestoreClone(Step):
    """Blue's latest restorable state into `<db>-rh-<run>`: an instance with blue's class and groups, or an Aurora
    cluster with blue's groups (its instances come once it is available: `WaitCloneAvailable`)."""

    kind = "restore_clone"

    async def run(self, ctx: StepContext) -> Replan | None:
        clone = owned(ctx, clone_name(ctx.run.database, ctx.run_id))
        if await clone_database(ctx, clone) is not None:
            ctx.say(f"{clone} already exists: not restoring again")
            return None
        source = ctx.run.database
        what = f"restore {source}'s latest restorable state into {clone}"
        if is_cluster(ctx):
            cluster = await ctx.gateway.cluster_shape(source)
            if cluster is None:
                raise StepFailed(f"cluster {source} no longer exists", fix="Nothing was created.")
            # Remembered before the call: a process killed right after it resumes with the clone already there and
            # still creates its instances.
            ctx.remember(
                clone_members=[
                    {"instance_class": m.instance_class, "parameter_group": m.parameter_group} for m in cluster.members
                ],
                clone_engine=cluster.engine,
                restore_started=ctx.clock(),
            )
            await ctx.mutate(
                lambda: ctx.gateway.restore_cluster_clone(source, clone, cluster, run_id=ctx.run_id), what=what
            )
            described = f"{len(cluster.members)} instance(s) to come"
        else:
            shape = await ctx.gateway.instance_shape(source)
            if shape is None:
                raise StepFailed(f"database {source} no longer exists", fix="Nothing was created.")
            ctx.remember(restore_started=ctx.clock())  # before the call, as above: the restore time survives a kill
            await ctx.mutate(
                lambda: ctx.gateway.restore_instance_clone(source, clone, shape, run_id=ctx.run_id), what=what
            )
            described = shape.instance_class
        ctx.remember(clone=clone)
        ctx.observe(clone=clone)
        ctx.say(f"restoring {source} into {clone} ({described})")
        return None


class WaitCloneAvailable(Step):
    kind = "wait_clone_available"

    async def run(self, ctx: StepContext) -> Replan | None:
        clone = clone_name(ctx.run.database, ctx.run_id)
        await self._available(ctx, clone, cluster=is_cluster(ctx))
        if is_cluster(ctx):
            engine = str(ctx.run.meta.get("clone_engine"))
            members = ctx.run.meta.get("clone_members", [])
            for number, member in enumerate(members, 1):
                name = owned(ctx, f"{clone}-{number}")
                if await ctx.gateway.instance(name) is None:
                    shape = InstanceShape(member["instance_class"], None, (), member.get("parameter_group"))
                    await ctx.mutate(
                        lambda n=name, m=shape: ctx.gateway.create_member_clone(clone, n, engine, m, run_id=ctx.run_id),
                        what=f"create {name} in {clone}",
                    )
            for number in range(1, len(members) + 1):
                await self._available(ctx, f"{clone}-{number}", cluster=False)
        started = float(ctx.run.meta.get("restore_started") or ctx.clock())
        seconds = round(ctx.clock() - started, 1)
        ctx.remember(subject=clone, measured={**ctx.run.meta.get("measured", {}), "restore_seconds": seconds})
        ctx.say(f"{clone} is available ({seconds} s after the restore was asked for)")
        return None

    @staticmethod
    async def _available(ctx: StepContext, name: str, *, cluster: bool) -> None:
        source_type = "db-cluster" if cluster else "db-instance"

        async def probe() -> Database | None:
            found = await (ctx.gateway.cluster(name) if cluster else ctx.gateway.instance(name))
            if found is None or found.status in RESTORE_FAILED:
                said = await ctx.gateway.event_messages(source_type, name)
                reason = f": AWS says {' '.join(said)!r}" if said else ""
                raise StepFailed(
                    f"the restore of {name} ended {found.status if found else 'with nothing there'}{reason}",
                    fix=f"AWS's events say why: `aws rds describe-events --source-type {source_type}"
                    f" --source-identifier {name}`. The teardown deletes what was created.",
                )
            return found if found.status == "available" else None

        await polling.wait_for(
            probe, policy=polling.SLOW, what=f"{name} to be available", check_cancel=ctx.check_cancel
        )


def proxy_names(ctx: StepContext) -> list[str]:
    """One rehearsal proxy per production proxy: `<clone>`, then `<clone>-2`, ..."""
    clone = clone_name(ctx.run.database, ctx.run_id)
    count = len({r["proxy"] for r in ctx.run.meta.get("production_registrations", [])})
    return [clone if i == 0 else f"{clone}-{i + 1}" for i in range(count)]


def measure(ctx: StepContext, **values: float) -> None:
    ctx.remember(measured={**ctx.run.meta.get("measured", {}), **values})


class CreateCloneProxies(Step):
    """A proxy for the clone copying each production proxy's engine family, auth, role, subnets and security
    groups; then the clone registered with each (AVAILABLE), which becomes the run's registrations."""

    kind = "create_clone_proxies"

    async def run(self, ctx: StepContext) -> Replan | None:
        production = sorted({r["proxy"] for r in ctx.run.meta.get("production_registrations", [])})
        started = ctx.clock()
        clone = await ctx.database()
        environment = (await ctx.gateway.environment_tags(clone.arn)).get(ENVIRONMENT_TAG)
        for source, name in zip(production, proxy_names(ctx), strict=True):
            if await ctx.gateway.proxy(owned(ctx, name)) is not None:
                ctx.say(f"proxy {name} already exists: not created again")
                continue
            settings = await ctx.gateway.proxy_settings(source)
            if settings is None:
                raise StepFailed(f"production proxy {source} no longer exists", fix="Run the rehearsal again.")
            await ctx.mutate(
                lambda n=name, c=settings: ctx.gateway.create_proxy_clone(
                    n, c, run_id=ctx.run_id, environment=environment
                ),
                what=f"create proxy {name} like {source}",
            )
        for name in proxy_names(ctx):

            async def available(proxy: str = name) -> bool | None:
                found = await ctx.gateway.proxy(proxy)
                if found is None or found.status in {"incompatible-network", "insufficient-resource-limits"}:
                    # DBProxy carries no reason: AWS tells it in the proxy's events (e.g. RDS-EVENT-0243).
                    said = await ctx.gateway.event_messages("db-proxy", proxy)
                    reason = f": AWS says {' '.join(said)!r}" if said else ""
                    raise StepFailed(
                        f"proxy {proxy} ended {found.status if found else 'missing'}{reason}",
                        fix="Check the production proxy's subnets (free IP addresses) and the account's proxy quota"
                        f" (`aws rds describe-events --source-type db-proxy --source-identifier {proxy}`); the"
                        " teardown deletes what was created.",
                    )
                return True if found.status == "available" else None

            await polling.wait_for(
                available, policy=polling.SLOW, what=f"proxy {name} available", check_cancel=ctx.check_cancel
            )
        measure(ctx, proxy_seconds=round(ctx.clock() - started, 1))
        await tag_target_groups(ctx, environment)
        registrations = [Registration(name) for name in proxy_names(ctx)]
        ctx.remember(registrations=[r.to_dict() for r in registrations])
        for registration in registrations:
            await attach(ctx, registration, clone, timeout=ctx.env.target_timeout)
        ctx.say(f"{clone.identifier} is AVAILABLE behind {', '.join(proxy_names(ctx)) or 'no proxy'}")
        return None


async def tag_target_groups(ctx: StepContext, environment: str | None) -> None:
    """Each rehearsal proxy's target group gets the clone's environment (and the run's) tag, once: the IAM policy
    authorises RegisterDBProxyTargets against the target group alone, and a new proxy's target group has no tags."""
    if environment is None:  # the database carries no environment tag: the policy that needs one is not in use
        return
    tags = {REHEARSAL_TAG: ctx.run_id, ENVIRONMENT_TAG: environment}
    for name in proxy_names(ctx):
        arn = await ctx.gateway.target_group_arn(owned(ctx, name))
        if arn is None or ENVIRONMENT_TAG in await ctx.gateway.tags(arn):
            continue
        await ctx.mutate(
            lambda n=name, a=arn: ctx.gateway.tag_target_group(n, a, tags),
            what=f"tag proxy {name}'s target group {ENVIRONMENT_TAG}={environment}",
        )


class RehearseSwitchover(Step):
    """The switchover steps production would run for this deployment, without the approval (nothing in production
    changes) and without the drift report."""

    kind = "rehearse_switchover"

    async def run(self, ctx: StepContext) -> Replan | None:
        deployment = await ctx.required("deployment_id", ctx.gateway.deployment, missing="deployment {} is gone")
        mode = str(ctx.run.params.get("mode") or "auto")
        strategy, reason = switchover_strategy(mode, ctx.registrations(), deployment)
        switch = StepSpec("switchover", "Switch over the clone", {"timeout": ctx.env.switchover_timeout})
        labels = ", ".join(r.label for r in ctx.registrations())
        if strategy == "workaround":
            steps = [
                StepSpec("detach", f"Deregister the clone from {labels}", disruptive=True),
                switch,
                StepSpec("reattach", f"Register the clone's new primary with {labels}"),
            ]
        elif strategy == "native":
            steps = [switch, StepSpec("verify_native_targets", f"Verify {labels} moved to the new primary")]
        else:
            steps = [switch]
        return Replan(reason=f"switching the clone over: {reason}", strategy=strategy, steps=steps)


class TeardownRehearsal(Step):
    """Delete everything the rehearsal created (deployment, proxies, both clones, no final snapshots) and check that
    nothing tagged for it remains."""

    kind = "teardown_rehearsal"
    interruptible = False

    async def run(self, ctx: StepContext) -> Replan | None:
        clone = clone_name(ctx.run.database, ctx.run_id)
        try:
            clusters, instances = await self._delete_everything(ctx, clone)
        except (AwsError, StepFailed, polling.WaitTimeout) as exc:
            # Whatever stopped it, what is left still carries the rehearsal's tag: the sweep finds and deletes it.
            said = exc.message if isinstance(exc, BlueGreenError) else str(exc)
            raise StepFailed(
                f"the teardown did not finish: {said}",
                fix=f"What is left carries {REHEARSAL_TAG}={ctx.run_id}: `{SWEEP_COMMAND}` deletes it"
                " (`--dry-run` lists it first).",
            ) from exc
        ctx.observe(deleted=sorted(clusters | instances | set(proxy_names(ctx))), leftovers=[])
        ctx.say(f"deleted {', '.join(sorted(clusters | instances))} and {', '.join(proxy_names(ctx)) or 'no proxy'}")
        report = rehearsal_report.build(ctx.run, ctx.store.steps.list(ctx.run_id), clone=clone, now=ctx.clock())
        text = rehearsal_report.text(report)
        ctx.remember(rehearsal=report, rehearsal_report=text)
        ctx.notify(text, broadcast=True)
        return None

    async def _delete_everything(self, ctx: StepContext, clone: str) -> tuple[set[str], set[str]]:
        """Deployment, proxies, clusters (members first) or instances; StepFailed if anything tagged is left.
        Returns the clusters and instances deleted."""
        deployment = await ctx.recorded("deployment_id", ctx.gateway.deployment)
        if deployment is not None:
            if deployment.status != "DELETING":
                delete_target = not deployment.switched_over
                await ctx.mutate(
                    lambda: ctx.gateway.delete_deployment(deployment.identifier, delete_target=delete_target),
                    what=f"delete the rehearsal's deployment {deployment.identifier}",
                )
            await self._gone(
                ctx, f"{deployment.identifier} deleted", lambda: ctx.gateway.deployment(deployment.identifier)
            )
        for name in proxy_names(ctx):
            found = await ctx.gateway.proxy(owned(ctx, name))
            if found is not None and found.status != "deleting":
                await ctx.mutate(lambda n=name: ctx.gateway.delete_proxy_clone(n), what=f"delete proxy {name}")
        for name in proxy_names(ctx):
            await self._gone(ctx, f"proxy {name} deleted", lambda n=name: ctx.gateway.proxy(n))
        instances = {clone, f"{clone}-old1", *await ctx.gateway.rehearsal_leftovers(ctx.run_id)}
        clusters: set[str] = set()
        if is_cluster(ctx):  # members go with their clusters; no standalone instance to delete
            clusters, instances = await self._delete_clusters(ctx, clone), set()
        for name in sorted(instances):
            found = await ctx.gateway.instance(owned(ctx, name))
            if found is not None and found.status != "deleting":
                await ctx.mutate(lambda n=name: ctx.gateway.delete_instance_clone(n), what=f"delete the clone {name}")
        for name in sorted(instances):
            await self._gone(ctx, f"{name} deleted", lambda n=name: ctx.gateway.instance(n))
        left = await ctx.gateway.rehearsal_leftovers(ctx.run_id) + await ctx.gateway.rehearsal_cluster_leftovers(
            ctx.run_id
        )
        left += [name for name in proxy_names(ctx) if await ctx.gateway.proxy(name) is not None]
        if left:
            raise StepFailed(f"still there after the rehearsal {ctx.run_id}: {', '.join(left)}")
        return clusters, instances

    async def _delete_clusters(self, ctx: StepContext, clone: str) -> set[str]:
        """Every clone cluster (the clone, `-old1` after a switchover, any tagged): members first, then the cluster
        (AWS refuses a cluster whose instances are not being deleted). Returns the clusters deleted."""
        clusters = {clone, f"{clone}-old1", *await ctx.gateway.rehearsal_cluster_leftovers(ctx.run_id)}
        gone: set[str] = set()
        for name in sorted(clusters):
            found = await ctx.gateway.cluster(owned(ctx, name))
            if found is None:
                continue
            gone.add(name)
            for member in found.members:
                state = await ctx.gateway.instance(owned(ctx, member))
                if state is not None and state.status != "deleting":
                    await ctx.mutate(
                        lambda m=member: ctx.gateway.delete_cluster_member(m), what=f"delete the clone's {member}"
                    )
            if found.status != "deleting":
                await ctx.mutate(lambda n=name: ctx.gateway.delete_cluster_clone(n), what=f"delete the clone {name}")
            for member in found.members:
                await self._gone(ctx, f"{member} deleted", lambda m=member: ctx.gateway.instance(m))
            await self._gone(ctx, f"{name} deleted", lambda n=name: ctx.gateway.cluster(n))
        return gone

    @staticmethod
    async def _gone(ctx: StepContext, what: str, fetch: Callable[[], Awaitable[object]]) -> None:
        async def probe() -> bool | None:
            return True if await fetch() is None else None

        await polling.wait_for(probe, policy=polling.SLOW, what=what)
