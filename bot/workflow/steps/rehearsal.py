"""A rehearsal's own steps: restore a disposable clone of blue, wait for it, and tear everything down.

Safety: every mutation here names a resource this run created (`clone_name`), checked by `owned` right before the
call; the production database is only ever read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.aws.models import Database, Registration
from bot.aws.rehearsal_clones import InstanceShape
from bot.planning.plan import StepSpec
from bot.planning.rehearsal import clone_name
from bot.planning.strategy import switchover_strategy
from bot.workflow import polling
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
            await ctx.mutate(
                lambda: ctx.gateway.restore_cluster_clone(source, clone, cluster, run_id=ctx.run_id), what=what
            )
            ctx.remember(
                clone_members=[
                    {"instance_class": m.instance_class, "parameter_group": m.parameter_group} for m in cluster.members
                ],
                clone_engine=cluster.engine,
            )
            described = f"{len(cluster.members)} instance(s) to come"
        else:
            shape = await ctx.gateway.instance_shape(source)
            if shape is None:
                raise StepFailed(f"database {source} no longer exists", fix="Nothing was created.")
            await ctx.mutate(
                lambda: ctx.gateway.restore_instance_clone(source, clone, shape, run_id=ctx.run_id), what=what
            )
            described = shape.instance_class
        ctx.remember(clone=clone, restore_started=ctx.clock())
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
        for source, name in zip(production, proxy_names(ctx), strict=True):
            if await ctx.gateway.proxy(owned(ctx, name)) is not None:
                ctx.say(f"proxy {name} already exists: not created again")
                continue
            settings = await ctx.gateway.proxy_settings(source)
            if settings is None:
                raise StepFailed(f"production proxy {source} no longer exists", fix="Run the rehearsal again.")
            await ctx.mutate(
                lambda n=name, c=settings: ctx.gateway.create_proxy_clone(n, c, run_id=ctx.run_id),
                what=f"create proxy {name} like {source}",
            )
        for name in proxy_names(ctx):

            async def available(proxy: str = name) -> bool | None:
                found = await ctx.gateway.proxy(proxy)
                if found is None or found.status in {"incompatible-network", "insufficient-resource-limits"}:
                    raise StepFailed(
                        f"proxy {proxy} ended {found.status if found else 'missing'}",
                        fix="Check the production proxy's subnets and the account's proxy quota; the teardown"
                        " deletes what was created.",
                    )
                return True if found.status == "available" else None

            await polling.wait_for(
                available, policy=polling.SLOW, what=f"proxy {name} available", check_cancel=ctx.check_cancel
            )
        measure(ctx, proxy_seconds=round(ctx.clock() - started, 1))
        registrations = [Registration(name) for name in proxy_names(ctx)]
        ctx.remember(registrations=[r.to_dict() for r in registrations])
        clone = await ctx.database()
        for registration in registrations:
            await attach(ctx, registration, clone, timeout=ctx.env.target_timeout)
        ctx.say(f"{clone.identifier} is AVAILABLE behind {', '.join(proxy_names(ctx)) or 'no proxy'}")
        return None


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
            raise StepFailed(
                f"still there after the rehearsal {ctx.run_id}: {', '.join(left)}",
                fix=f"Delete them by hand, e.g. `aws rds delete-db-instance --db-instance-identifier {left[0]}"
                " --skip-final-snapshot`.",
            )
        ctx.observe(deleted=sorted(clusters | instances | set(proxy_names(ctx))), leftovers=[])
        ctx.say(f"deleted {', '.join(sorted(clusters | instances))} and {', '.join(proxy_names(ctx)) or 'no proxy'}")
        report = rehearsal_report(ctx)
        ctx.remember(rehearsal_report=report)
        ctx.notify(report, broadcast=True)
        return None

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


def rehearsal_report(ctx: StepContext) -> str:
    run = ctx.run
    measured = run.meta.get("measured", {})
    steps = ctx.store.steps.list(ctx.run_id)
    done = {s.name: s for s in steps if s.status == "done" and s.started_at and s.ended_at}
    measured = dict(measured)
    if "create_deployment" in done and "wait_deployment_available" in done:
        green = done["wait_deployment_available"].ended_at - done["create_deployment"].started_at  # type: ignore[operator]
        measured["green_seconds"] = round(green, 1)
    if "switchover" in done:
        measured["switchover_seconds"] = round(done["switchover"].ended_at - done["switchover"].started_at, 1)  # type: ignore[operator]
    lines = [f"Rehearsal of {run.database} on a disposable clone: what it measured"]
    labels = {
        "restore_seconds": "restore to available",
        "proxy_seconds": "proxy available",
        "green_seconds": "green AVAILABLE",
        "switchover_seconds": "switchover",
    }
    for key, label in labels.items():
        if key in measured:
            lines.append(f"- {label}: {measured[key]} s")
    for proxy, window in (run.summary or {}).get("windows", {}).items():
        lines.append(f"- {proxy} without a target: {window.get('seconds')} s")
    ending = run.meta.get("ending")
    if ending and ending.get("error"):
        lines.append(f"- failed: {ending['error']}")
    lines.append(f"- torn down: nothing tagged bluegreen-bot:rehearsal={run.id} remains ({len(steps)} steps)")
    return "\n".join(lines)
