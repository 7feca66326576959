"""Detaching a database from its proxies and attaching it again: the part of the runbook where applications are
cut off. Every proxy is handled concurrently, registration is retried the moment AWS refuses it for the database's
state, and the wait for AVAILABLE polls every 0.2 s.
"""

from __future__ import annotations

import asyncio

from bot.aws.commands import aws_command, target_params
from bot.aws.describe_budget import critical
from bot.aws.models import Database, Registration
from bot.aws.responses import health_of, registered_as
from bot.errors import AlreadyRegistered, AwsError, InvalidState, NotRegistered
from bot.workflow import polling
from bot.workflow.steps.base import Replan, Step, StepContext, StepFailed, verify_approved_plan
from bot.workflow.steps.readiness import ready_to_act


async def is_registered(ctx: StepContext, registration: Registration, database: Database) -> bool:
    """A fresh read of the target group (never the proxy index): Detach relies on it right before deregistering."""
    with critical():  # around or inside a detached window: never queued behind scans and look-ups
        targets = await ctx.gateway.targets(registration.proxy, registration.target_group)
    return any(registered_as(database, t) for t in targets)


async def wait_available(
    ctx: StepContext, registration: Registration, database: Database, *, timeout: float
) -> polling.WaitResult:
    async def probe() -> list | None:
        try:
            with critical():  # the detached window's polling: first call on the describe budget
                targets = await ctx.gateway.targets(registration.proxy, registration.target_group)
        except AwsError as exc:
            if exc.retryable:
                return None  # a failed look is not a failed registration: look again
            raise
        health = health_of(database, targets)
        return health if health and all(t.available for t in health) else None

    policy = polling.CRITICAL.within(timeout)
    try:
        return await polling.wait_for(
            probe, policy=policy, what=f"{database.identifier} AVAILABLE on {registration.label}"
        )
    except polling.WaitTimeout:
        targets = await ctx.gateway.targets(registration.proxy, registration.target_group)
        states = ", ".join(
            f"{t.rds_resource_id}={t.state}" + (f" ({t.reason}: {t.description})" if t.reason else "")
            for t in health_of(database, targets)
        )
        raise StepFailed(
            f"{database.identifier} is registered with {registration.label} but not AVAILABLE after {timeout:.0f} s:"
            f" {states or 'no target entry'}",
            fix="Check the proxy's secret, IAM role and security groups; the registration was left in place.",
        ) from None


async def attach(ctx: StepContext, registration: Registration, database: Database, *, timeout: float) -> None:
    """Register (unless already registered) and wait until AVAILABLE; close the detached window.

    Inside a window the bot deregistered itself it registers straight away (AWS answers AlreadyRegistered if a
    previous attempt got through); elsewhere it looks first."""
    first_attempt = ctx.clock()
    last_refusal = first_attempt
    refusals: set[str] = set()
    if ctx.windows.is_open(registration) or not await is_registered(ctx, registration, database):

        async def try_register() -> bool | None:
            nonlocal last_refusal
            sent = ctx.clock()
            try:
                await ctx.mutate(
                    lambda: ctx.gateway.register(registration, database),
                    what=f"register {database.identifier} with {registration.label}",
                )
            except AlreadyRegistered:
                ctx.say(f"{registration.label}: already registered (an earlier attempt got through)")
            except AwsError as exc:
                # The database's state (InvalidState), throttling, 5xx or a lost connection: AWS may accept it
                # a moment later, and a proxy without its target is the one thing not to give up on.
                if not (isinstance(exc, InvalidState) or exc.retryable):
                    raise
                last_refusal = sent
                if exc.code not in refusals:
                    ctx.say(f"AWS refused the registration for now ({exc.code}); retrying")
                refusals.add(exc.code)
                return None
            return True

        try:
            await polling.wait_for(
                try_register,
                policy=polling.CRITICAL.within(timeout),
                what=f"AWS to accept registering {database.identifier} with {registration.label}",
            )
        except polling.WaitTimeout:
            command = aws_command(
                "RegisterDBProxyTargets", target_params(registration, database.identifier, database.kind)
            )
            raise StepFailed(
                f"AWS did not accept registering {database.identifier} with {registration.label} within"
                f" {timeout:.0f} s ({', '.join(sorted(refusals))}); {registration.label} has no target now",
                fix=f"Register it by hand: `{command}`",
            ) from None
    registered_at = ctx.clock()
    result = await wait_available(ctx, registration, database, timeout=timeout)
    if last_refusal > first_attempt:
        ctx.windows.aws_time(first_attempt, last_refusal, [registration.label])
    ctx.windows.aws_time(registered_at, max(registered_at, result.last_miss_sent), [registration.label])
    window = ctx.windows.reattached(registration, result.seen_at)
    note = ""
    if window:
        note = (
            f"; proxy had no target for {window['seconds']:.2f} s"
            f" (bot overhead at most {window['overhead_seconds']:.2f} s)"
        )
    ctx.say(f"{registration.label}: {database.identifier} AVAILABLE after {result.polls} polls{note}")


def _timeout(ctx: StepContext) -> float:
    return float(ctx.params.get("timeout", ctx.env.target_timeout))


class Detach(Step):
    """Runbook steps 1 and 5: deregister the database from every proxy target group it is registered with."""

    kind = "detach"

    async def run(self, ctx: StepContext) -> Replan | None:
        database = await ctx.database()
        registrations = ctx.registrations()
        await verify_approved_plan(ctx)
        await ready_to_act(ctx, "before detaching the proxies")  # the last look: from here on every call is window time

        async def detach_one(registration: Registration) -> None:
            if not await is_registered(ctx, registration, database):
                # Already gone: an earlier attempt of this step (crash) or someone else. Keep the window.
                sent_before = ctx.state.get("sent", {}).get(registration.label)
                ctx.windows.detached(registration, database.identifier, database.kind, sent_before or ctx.clock())
                what = f"deregister {database.identifier} from {registration.label}"
                if sent_before and not ctx.answered(what):
                    ctx.confirm_applied(
                        "DeregisterDBProxyTargets",
                        what,
                        aws_command(
                            "DeregisterDBProxyTargets",
                            target_params(registration, database.identifier, database.kind),
                        ),
                    )
                ctx.say(f"{registration.label}: {database.identifier} was already deregistered")
                return
            sent = ctx.clock()
            ctx.save(sent={**ctx.state.get("sent", {}), registration.label: sent})
            try:
                await ctx.mutate(
                    lambda: ctx.gateway.deregister(registration, database),
                    what=f"deregister {database.identifier} from {registration.label}",
                )
            except NotRegistered:
                pass  # a retried request that AWS had already applied
            ctx.windows.detached(registration, database.identifier, database.kind, sent)
            ctx.windows.aws_time(sent, ctx.clock(), [registration.label])
            ctx.say(f"{registration.label}: deregistered {database.identifier}; the proxy has no target from now")

        await asyncio.gather(*(detach_one(r) for r in registrations))
        ctx.observe(detached=[r.label for r in registrations])
        return None


class Reattach(Step):
    """Runbook steps 3 and 7 (and compensation): register the database under its name again on every proxy target
    group of the rollback record, then wait until every target is AVAILABLE.

    As compensation (`only_open`: the proxies a failed run left detached) it never gives up by itself; see
    `bot.workflow.steps.compensation`."""

    kind = "reattach"
    interruptible = False

    async def run(self, ctx: StepContext) -> Replan | None:
        # No describe before registering: the name and kind are on record, and every call here is window time.
        database = ctx.database_on_record()
        registrations = ctx.registrations()
        if ctx.params.get("only_open"):
            from bot.workflow.steps.compensation import compensate  # it builds on this module's waits

            # Every open window, whether or not it is in the rollback record.
            registrations = [Registration.from_dict(window) for window in ctx.windows.open_windows().values()]
            await compensate(ctx, registrations, database)
            ctx.observe(attached=[r.label for r in registrations], database=database.identifier)
            return None
        results = await asyncio.gather(
            *(attach(ctx, r, database, timeout=_timeout(ctx)) for r in registrations), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        ctx.observe(attached=[r.label for r in registrations], database=database.identifier)
        return None


class VerifyNativeTargets(Step):
    """Native strategy: AWS moves the proxy to the new primary by itself. Verify every proxy shows it AVAILABLE
    within a bound, and repair by registering again where it does not."""

    kind = "verify_native_targets"
    interruptible = False

    async def run(self, ctx: StepContext) -> Replan | None:
        database = await ctx.database()
        bound = float(ctx.params.get("bound", ctx.env.native_follow_timeout))

        async def verify(registration: Registration) -> None:
            try:
                result = await wait_available(ctx, registration, database, timeout=bound)
                ctx.say(f"{registration.label}: AWS moved the proxy to {database.identifier} ({result.polls} polls)")
            except StepFailed as exc:
                ctx.say(f"{registration.label}: {exc.message}; repairing by registering again")
                if await is_registered(ctx, registration, database):
                    sent = ctx.clock()
                    await ctx.mutate(
                        lambda: ctx.gateway.deregister(registration, database),
                        what=f"deregister stale {database.identifier} from {registration.label}",
                    )
                    ctx.windows.detached(registration, database.identifier, database.kind, sent)
                await attach(ctx, registration, database, timeout=_timeout(ctx))

        await asyncio.gather(*(verify(r) for r in ctx.registrations()))
        return None


class EnsureRegistered(Step):
    """Rollback: make sure every proxy of the rollback record points at blue again."""

    kind = "ensure_registered"
    interruptible = False

    async def run(self, ctx: StepContext) -> Replan | None:
        database = await ctx.database()
        registrations = ctx.registrations()
        if not registrations:
            ctx.say("no proxy registration on record for this database: nothing to restore")
            return None
        await asyncio.gather(*(attach(ctx, r, database, timeout=_timeout(ctx)) for r in registrations))
        return None
