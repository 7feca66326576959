"""The facade the CLI and the Slack handlers use. Handlers never reach past it to the runner, steps or AWS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.aws.gateway import AwsGateway
from bot.aws.models import Database, Deployment, ProxyTarget, Registration
from bot.config import Environment, Settings
from bot.errors import BadRequest
from bot.gates.evaluate import check_prerequisites
from bot.planning.plan import Observed, Plan, build_plan
from bot.planning.rehearsal import clone_name, plan_rehearsal
from bot.planning.rehearsal_cost import RehearsalEstimate, cost_estimate
from bot.planning.requests import RunRequest, check_run_id
from bot.workflow import draining, rehearsal_history
from bot.workflow.approvals import ApprovalDesk, ApproverCheck, ids_only
from bot.workflow.events import EventBus, RunSnapshot, Sink
from bot.workflow.gateway_pool import GatewayPool
from bot.workflow.owners import process_owner
from bot.workflow.runner import Runner, add_steps, snapshot_of
from bot.workflow.steps.compensation import request_abandonment
from storage import ApprovalRequest, LockConflict, RunRecord, Store

log = logging.getLogger(__name__)

REAPER_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    database: Database
    registrations: list[Registration]
    targets: list[ProxyTarget]  # the database's own target entries on those target groups, health included
    deployment: Deployment | None
    active_run: RunRecord | None


def deployment_name(database: str, run_id: str) -> str:
    return f"bg-{database[:45]}-{run_id[2:]}"


def with_environment_defaults(request: RunRequest, env: Environment) -> RunRequest:
    """The request as the environment completes it: its `fix_drift` setting turns --fix-drift on for a switchover.
    BadRequest for a rehearsal in an environment that does not allow them (a clone and its proxy cost money)."""
    if request.kind == "rehearse" and not env.rehearsals:
        raise BadRequest(
            f"environment {env.name} does not allow rehearsals: a rehearsal restores a copy of {request.database}"
            " and creates a proxy for it, which costs money while it runs.",
            fix=f"Set `rehearsals = true` in the [{env.name}] table of BLUEGREEN_CONFIG, then run the command again.",
        )
    if request.kind == "switchover" and env.fix_drift and not request.fix_drift:
        return replace(request, fix_drift=True)
    return request


def _build(request: RunRequest, observed: Observed, env: Environment) -> Plan:
    if request.kind == "rehearse":
        return plan_rehearsal(request, observed)
    return build_plan(request, observed, switchover_timeout=env.switchover_timeout)


class Engine:
    """Plans, starts and drives runs, and takes the operators' decisions. Methods that look at AWS raise ConfigError
    for an unknown environment and `bot.errors.AwsError` when AWS fails."""

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        sinks: Sequence[Sink] = (),
        approver_check: ApproverCheck | None = None,
        owner: str | None = None,
        gateways: GatewayPool | None = None,
        lease_ttl: float | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.approver_check = approver_check or ids_only
        self.owner = owner or process_owner()
        self.gateways = gateways or GatewayPool()
        self.bus = EventBus(sinks)
        self.approvals = ApprovalDesk(store, self.bus, self.approver_check, self._env)
        runner_kwargs = {"lease_ttl": lease_ttl} if lease_ttl else {}
        self.runner = Runner(
            store=store, settings=settings, gateways=self.gateways, bus=self.bus, owner=self.owner, **runner_kwargs
        )
        self._tasks: dict[str, asyncio.Task[bool]] = {}
        self._observing: dict[tuple[str, str], asyncio.Future[Observed]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._shutdown: asyncio.Future[dict[str, list[str]]] | None = None

    def _env(self, name: str | None) -> Environment:
        return self.settings.environment(name)

    def _gateway(self, env: Environment) -> AwsGateway:
        return self.gateways.get(env)

    # ----- reads ----------------------------------------------------------------------------------------------

    async def _database(self, gateway: AwsGateway, identifier: str) -> Database:
        database = await gateway.database(identifier)
        if database is None:
            raise BadRequest(
                f"no DB instance or Aurora cluster named `{identifier}` in this account and region.",
                fix="`status <db>` shows what the bot can see; check the spelling and the environment.",
            )
        return database

    async def observe(self, request: RunRequest, *, fresh_after: float | None = None) -> Observed:
        """What AWS says about the database. Identical look-ups in flight at the same moment (a burst of `status`
        or `plan` for one database) share one set of AWS calls; nothing is kept once they are answered.

        With `fresh_after` (the proxy index's clock, taken when a run was requested) the proxies come from a scan that
        started at or after it, so no registration made before the request is missed; such a look-up is not shared
        with one already in flight (the index still shares its scan)."""
        if fresh_after is not None:
            return await self._observe(request, fresh_after)
        key = (request.environment, request.database)
        pending = self._observing.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._observe(request))
            self._observing[key] = pending
            pending.add_done_callback(lambda _: self._observing.pop(key, None))
        return await asyncio.shield(pending)

    async def _observe(self, request: RunRequest, fresh_after: float | None = None) -> Observed:
        gateway = self._gateway(self._env(request.environment))
        database = await self._database(gateway, request.database)
        (registrations, targets), deployments, switched = await asyncio.gather(
            gateway.proxy_view(database, fresh_after=fresh_after),
            gateway.deployments_for(database),
            gateway.deployments_for(database, role="target"),
        )
        green = None
        live = next((d for d in deployments if d.status != "DELETING"), None)
        if live and live.target_arn:
            green = await gateway.database_by_arn(live.target_arn)
        return Observed(database, registrations, targets, deployments, switched, green)

    async def status(self, database: str, environment: str | None = None) -> DatabaseStatus:
        """The database as AWS shows it now (proxies, target health, latest deployment) and its active run, if any.
        BadRequest if no instance or cluster has that name."""
        request = RunRequest(kind="create", database=database, requester="status", environment=environment or "default")
        observed = await self.observe(request)
        active = self.store.runs.list(active_only=True, database=observed.database.identifier, limit=1)
        deployment = observed.deployments[0] if observed.deployments else None
        if deployment is None and observed.switched_deployments:
            deployment = observed.switched_deployments[0]
        return DatabaseStatus(
            observed.database, observed.registrations, observed.targets, deployment, active[0] if active else None
        )

    async def plan(self, request: RunRequest) -> Plan:
        """The plan `start` would run now, without starting anything, with the latest rehearsal of the database and
        version (`plan.rehearsal`). BadRequest if the database is missing or its state does not allow the request
        (see `bot.planning.plan`)."""
        env = self._env(request.environment)
        request = with_environment_defaults(request, env)
        observed = await self.observe(request)
        plan = _build(request, observed, env)
        plan = await check_prerequisites(self._gateway(env), request, observed, plan)
        return replace(plan, rehearsal=rehearsal_history.for_plan(self.store, env, request, observed))

    async def rehearsal_estimate(self, request: RunRequest) -> RehearsalEstimate:
        """What a rehearsal would create and how long it would run, for the requester to confirm; nothing starts.
        BadRequest where the environment does not allow rehearsals, for an unknown database, or a plan it refuses."""
        if request.kind != "rehearse":
            raise BadRequest(f"`{request.kind}` has no rehearsal estimate.", fix="Ask for `rehearse <db>`.")
        env = self._env(request.environment)
        request = with_environment_defaults(request, env)
        observed = await self.observe(request)
        plan = _build(request, observed, env)
        size = await self._gateway(env).database_size(observed.database)
        if size is None:
            raise BadRequest(f"{request.database} disappeared while it was being sized.", fix="Check `status <db>`.")
        return cost_estimate(request, observed, plan, size)

    async def databases(self, environment: str | None = None) -> list[Database]:
        """Every Aurora cluster and standalone DB instance in the environment's account and region."""
        return await self._gateway(self._env(environment)).databases()

    async def upgrade_targets(self, database: str, environment: str | None = None) -> list[str]:
        """Engine versions AWS offers as upgrade targets for the database (empty if AWS will not say).
        BadRequest if no instance or cluster has that name."""
        gateway = self._gateway(self._env(environment))
        return await gateway.upgrade_targets(await self._database(gateway, database))

    def runs(self, *, active_only: bool = False, limit: int = 20) -> list[RunRecord]:
        """Recorded runs, newest first (only the unfinished ones with `active_only`). Reads storage only."""
        return self.store.runs.list(active_only=active_only, limit=limit)

    def snapshot(self, run_id: str) -> RunSnapshot | None:
        """The run and its steps as stored now, or None for an unknown run id."""
        if self.store.runs.get(run_id) is None:
            return None
        return snapshot_of(self.store, run_id)

    # ----- starting and driving runs --------------------------------------------------------------------------

    async def start(self, request: RunRequest, *, confirmation: str | None = None) -> RunRecord:
        """Plan, record (run, steps, locks, audit) in one transaction, and drive the run in the background; returns
        the run as recorded. BadRequest if the plan is refused, another active run holds the database or a proxy, or
        the process is shutting down. A `confirmation` (a confirmed estimate's token) starts at most one run: once a
        run was recorded with it, BadRequest naming that run."""
        self._refuse_while_shutting_down()
        env = self._env(request.environment)
        request = with_environment_defaults(request, env)
        requested_at = self._gateway(env).proxy_index.clock()
        observed = await self.observe(request, fresh_after=requested_at)
        plan = _build(request, observed, env)
        plan = await check_prerequisites(self._gateway(env), request, observed, plan)  # GatesFailed: nothing changed
        self._refuse_while_shutting_down()
        registrations = observed.registrations
        if request.kind == "rollback":
            registrations = self._recorded_registrations(observed.database.identifier) or registrations
        resources = [f"db:{observed.database.identifier}", *sorted({f"proxy:{r.proxy}" for r in registrations})]
        rehearsal = request.kind == "rehearse"
        if rehearsal:
            resources = []  # a rehearsal holds no production lock; it locks its clone once the run id is known
        params = {k: v for k, v in request.params().items() if v is not None}
        try:
            with self.store.atomic():
                if confirmation is not None:
                    self._refuse_confirmed_twice(observed.database.identifier, confirmation)
                run = self.store.runs.create(
                    kind=request.kind,
                    database=observed.database.identifier,
                    params=params,
                    requester=request.requester,
                    environment=env.name,
                    channel=request.channel,
                    strategy=plan.strategy,
                    meta={
                        # A rehearsal's registrations are its own proxies' (once created); production's are copied.
                        "registrations": [] if rehearsal else [r.to_dict() for r in registrations],
                        **({"production_registrations": [r.to_dict() for r in registrations]} if rehearsal else {}),
                        "database_kind": observed.database.kind,
                        "plan_reason": plan.reason,
                        "detached_estimate": plan.detached_estimate,
                        "prerequisites": [g.to_dict() for g in plan.gates],
                        **({"confirmation": confirmation} if confirmation is not None else {}),
                    },
                )
                if rehearsal:
                    resources = [f"db:{clone_name(run.database, run.id)}"]
                self.store.locks.acquire(run.id, resources)
                self.store.runs.merge_meta(run.id, {"deployment_name": deployment_name(run.database, run.id)})
                add_steps(self.store, run.id, plan.steps)
                self.store.audit.append(
                    actor=request.requester,
                    action=f"run:requested:{request.kind}",
                    run_id=run.id,
                    detail={"database": run.database, "params": params, "strategy": plan.strategy},
                )
        except LockConflict as exc:
            raise BadRequest(
                f"run {exc.holder_run_id} is already active on {exc.resource.split(':', 1)[1]}.",
                fix=f"Wait for it to finish, or `cancel {exc.holder_run_id}`.",
            ) from None
        self._spawn(run.id)
        fresh = self.store.runs.get(run.id)
        assert fresh is not None
        return fresh

    def confirmed_run(self, database: str, confirmation: str) -> RunRecord | None:
        """The run recorded with this confirmation token, if any (reads storage only)."""
        for run in self.store.runs.list(database=database, limit=50):
            if run.meta.get("confirmation") == confirmation:
                return run
        return None

    def _refuse_confirmed_twice(self, database: str, confirmation: str) -> None:
        earlier = self.confirmed_run(database, confirmation)
        if earlier is not None:
            raise BadRequest(
                f"this confirmation already started run {earlier.id} ({earlier.kind} of {earlier.database}).",
                fix=f"Follow it in its thread; `cancel {earlier.id}` stops it.",
            )

    def _recorded_registrations(self, database: str) -> list[Registration]:
        for run in self.store.runs.list(database=database, limit=50):
            if run.kind == "create" and run.meta.get("registrations"):
                return [Registration.from_dict(r) for r in run.meta["registrations"]]
        return []

    def _spawn(self, run_id: str, *, resumed: bool = False) -> None:
        if run_id in self._tasks and not self._tasks[run_id].done():
            return
        task = asyncio.get_running_loop().create_task(self.runner.drive(run_id, resumed=resumed))
        self._tasks[run_id] = task

    async def resume_unfinished(self) -> list[str]:
        """Drive every unfinished run whose lease is free or whose holder died; returns the ids taken up (none once
        the process is shutting down)."""
        resumed: list[str] = []
        if self.shutting_down:
            return resumed
        for run in self.store.runs.unfinished():
            if run.id in self._tasks and not self._tasks[run.id].done():
                continue
            if self.runner.claim(run.id):
                self.store.leases.release(run.id, self.owner)
                self._spawn(run.id, resumed=True)
                resumed.append(run.id)
        return resumed

    def start_reaper(self) -> None:
        """Long-running processes pick up runs whose process died (expired or orphaned leases)."""

        async def reap() -> None:
            while True:
                try:
                    await self.resume_unfinished()
                except Exception:
                    log.exception("resuming unfinished runs failed")
                await asyncio.sleep(REAPER_INTERVAL)

        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(reap())

    async def wait(self, run_id: str, within: float | None = None) -> RunRecord:
        """The run once it has ended and its events were delivered to the sinks, or, once the process is shutting
        down, as this process left it (possibly still active). BadRequest for an unknown run; TimeoutError if it is
        still active after `within` seconds."""
        deadline = None if within is None else time.monotonic() + within
        while True:
            run = self.store.runs.get(run_id)
            if run is None:
                raise BadRequest(f"no run {run_id}")
            task = self._tasks.get(run_id)
            if (not run.is_active or self.shutting_down) and (task is None or task.done()):
                await self.bus.drain()
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run.status} after {within} s")
            if task is not None and not task.done():
                await asyncio.wait([task], timeout=0.5)  # never raises the task's outcome (cancelled at shutdown)
            else:
                await asyncio.sleep(0.2)

    # ----- decisions ------------------------------------------------------------------------------------------

    async def approve(self, request_id: str, user: str, fingerprint: str | None = None) -> ApprovalRequest:
        """Approve a pending request under the two-person rule; returns it decided. ApprovalRefused, nothing changed,
        if it is unknown, decided, expired, for another plan (`fingerprint`), or `user` may not approve it."""
        return await self.approvals.decide(request_id, user, fingerprint, "approved")

    async def reject(self, request_id: str, user: str, fingerprint: str | None = None) -> ApprovalRequest:
        """Reject a pending request (an approver, or the requester withdrawing it); returns it decided.
        ApprovalRefused as for `approve`."""
        return await self.approvals.decide(request_id, user, fingerprint, "rejected")

    async def withdraw_approval(self, request_id: str, reason: str) -> bool:
        """`ApprovalDelivery`: a sink could not show approval request `request_id` to anyone (the bot lost the run's
        channel). The request is withdrawn so that nobody can approve what the approvers never saw, and the run stops
        at its approval gate. False, nothing changed, when it was no longer pending or is unknown."""
        return await self.approvals.withdraw(request_id, reason)

    async def cancel(self, run_id: str, user: str, *, abandon_proxy: bool = False) -> RunRecord:
        """Ask the run to stop at its next interruptible point (a detached proxy is registered again before it ends).
        Returns the run with the request recorded. BadRequest for a malformed or unknown id or a run already ended.

        With `abandon_proxy`, for a run that is compensating (it keeps trying to give proxies it detached their
        target back): stop that, because `user` has fixed the proxies by hand. Audited with the proxies; the run
        ends as it would have once its process sees the request. `run.meta["abandon_requested"]["proxies"]` maps
        each abandoned proxy to the command that registers it by hand. BadRequest, nothing changed, for a run that
        is not compensating or was abandoned already."""
        check_run_id(run_id)
        with self.store.atomic():
            run = self.store.runs.get(run_id)
            if run is None:
                raise BadRequest(f"no run `{run_id}`.", fix="`runs` lists the active runs.")
            if not run.is_active:
                raise BadRequest(f"run {run_id} already ended ({run.status}).")
            if abandon_proxy:
                request_abandonment(self.store, run, user)
            else:
                self.store.runs.merge_meta(run_id, {"cancel_requested": {"by": user, "at": time.time()}})
                self.store.audit.append(actor=user, action="run:cancel-requested", run_id=run_id, detail={})
        fresh = self.store.runs.get(run_id)
        assert fresh is not None
        return fresh

    # ----- stopping for a restart (SIGTERM; see bot.workflow.draining) ---------------------------------------------

    @property
    def shutting_down(self) -> bool:
        """From the first SIGTERM on: no run starts, and runs stop at their next step boundary."""
        return self.runner.shutdown.requested

    def request_shutdown(self, hint: str | None = None) -> None:
        """Synchronous, for a signal handler: from now on every run stops before its next step unless a proxy of it
        is detached. `hint` ends each thread's notice: who carries the run on."""
        self.runner.shutdown.request(hint)

    async def shutdown(self, grace: float) -> dict[str, list[str]]:
        """Stop for a restart: runs with a proxy detached complete their critical section within `grace` seconds of
        the request (registered again, or their started switchover awaited and the target registered), the others
        stop at once; each thread is told; the leases are released for a successor to take over at once. Returns
        the runs left with a proxy detached (the grace ran out, or `stop_now`), with those proxies: empty for a clean
        handover. A second call waits for the same outcome."""
        if self._shutdown is None:
            self._shutdown = asyncio.ensure_future(self._shut_down(grace))
        return await asyncio.shield(self._shutdown)

    async def _shut_down(self, grace: float) -> dict[str, list[str]]:
        self.request_shutdown()
        await self._stop_reaper()
        left = await draining.drain(self.runner, dict(self._tasks), grace)
        self._release_leases()
        return left

    def stop_now(self) -> None:
        """A second SIGTERM: every run stops where it is; its recorded state lets the next process finish it."""
        draining.stop_now(self.runner, self._tasks)

    def _refuse_while_shutting_down(self) -> None:
        if self.shutting_down:
            raise BadRequest("the bot is restarting, so nothing was started.", fix="Try again in a minute.")

    async def _stop_reaper(self) -> None:
        if self._reaper:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None

    def _release_leases(self) -> None:
        """Give up every lease this process holds, so that a successor takes the runs over without waiting for
        their expiry (a no-op for runs another process holds)."""
        for run_id in self._tasks:
            self.store.leases.release(run_id, self.owner)

    async def aclose(self) -> None:
        """Stop the reaper and this process's run tasks (the runs stay active and are resumed later), release their
        leases, deliver the pending events, close the AWS clients."""
        await self._stop_reaper()
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._release_leases()
        await self.bus.aclose()
        await self.gateways.aclose()
