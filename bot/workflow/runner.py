"""The durable loop. One run at a time per lease: take the lease, run the next unfinished step, persist every
transition before moving on, publish events, and compensate when something fails while a proxy is detached.

The steps table is the plan of record: a resumed run (new process, expired lease) carries on from the first step
that is not finished, and every step observes AWS before acting, so no mutation is repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from bot.aws.gateway import AwsGateway
from bot.config import Environment, Settings
from bot.errors import BlueGreenError, RunCancelled
from bot.planning.plan import StepSpec, compensation_steps
from bot.planning.rehearsal import teardown_steps
from bot.workflow import draining, failpoints, monitoring, run_log
from bot.workflow.events import (
    Event,
    EventBus,
    Notice,
    RunFinished,
    RunSnapshot,
    RunStarted,
    StepChanged,
    StepReport,
)
from bot.workflow.gateway_pool import GatewayPool
from bot.workflow.owners import owner_is_dead
from bot.workflow.steps import lookup
from bot.workflow.steps.base import PlanChanged, Replan, RunEnded, StepContext, StepFailed
from bot.workflow.steps.compensation import ProxyAbandoned
from bot.workflow.windows import WindowLedger
from storage import StepRecord, Store

log = logging.getLogger(__name__)

LEASE_TTL = 15.0
UNFINISHED_STEP = ("waiting", "running")
SNAPSHOT_REUSE_SECONDS = 5.0  # a step's "after" proxy snapshot stands as the next step's "before" within this
REGISTERING_STEPS = draining.RESTORING_STEPS  # the steps that give a proxy its target back


def snapshot_of(store: Store, run_id: str) -> RunSnapshot:
    run = store.runs.get(run_id)
    assert run is not None
    return RunSnapshot(run=run, steps=store.steps.list(run_id))


def add_steps(store: Store, run_id: str, specs: Sequence[StepSpec]) -> list[StepRecord]:
    """Persist steps with their spec (kind, params, aws commands) so a resumed run rebuilds them exactly."""
    with store.atomic():
        records = store.steps.add(run_id, [(spec.kind, spec.title) for spec in specs])
        for record, spec in zip(records, specs, strict=True):
            store.steps.merge_state(run_id, record.idx, {"spec": spec.to_dict()})
    return records


class Runner:
    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        gateways: GatewayPool,
        bus: EventBus,
        owner: str,
        lease_ttl: float = LEASE_TTL,
    ) -> None:
        self.store = store
        self.settings = settings
        self.gateways = gateways
        self.bus = bus
        self.owner = owner
        self.lease_ttl = lease_ttl
        self._reports: set[asyncio.Task[None]] = set()
        # Per run: the proxy snapshot taken after its last step, and when; the next step's "before" when still fresh.
        self._last_snapshot: dict[str, tuple[float, asyncio.Future[dict[str, Any]]]] = {}
        self.shutdown = draining.Shutdown()  # requested on SIGTERM; obeyed before every step (bot.workflow.draining)

    # ----- leases ---------------------------------------------------------------------------------------------

    def claim(self, run_id: str) -> bool:
        if self.store.leases.claim(run_id, self.owner, self.lease_ttl):
            return True
        lease = self.store.leases.get(run_id)
        if lease is not None and owner_is_dead(lease.owner):
            log.info("run %s: lease holder %s is gone; taking over", run_id, lease.owner)
            return self.store.leases.claim(run_id, self.owner, self.lease_ttl, force=True)
        return False

    async def _keep_lease(self, run_id: str, task: asyncio.Task[Any]) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            if not self.store.leases.renew(run_id, self.owner, self.lease_ttl):
                log.error("run %s: lost its lease; stopping here so two processes never drive one run", run_id)
                task.cancel()
                return

    @run_log.in_run
    async def drive(self, run_id: str, *, resumed: bool = False) -> bool:
        """Run `run_id` to its end (or until the process stops). False if another live process owns it."""
        if not self.claim(run_id):
            return False
        current = asyncio.current_task()
        assert current is not None
        keeper = asyncio.get_running_loop().create_task(self._keep_lease(run_id, current))
        try:
            await self._loop(run_id, resumed)
        except Exception:
            # A bug in the runner itself: leave the run active so that it is resumed (and compensated), loudly.
            log.exception("run %s: the runner failed; the run stays active and will be resumed", run_id)
            self.store.audit.append(actor="bluegreen-bot", action="run:runner-error", run_id=run_id, detail={})
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            self.store.leases.release(run_id, self.owner)
        return True

    # ----- the loop -------------------------------------------------------------------------------------------

    async def reports_posted(self, within: float) -> None:
        """Wait, at most `within` seconds, for the step reports still being prepared to reach the sinks."""
        if self._reports:
            await asyncio.wait(list(self._reports), timeout=within)

    def publish(self, run_id: str, factory: Callable[[RunSnapshot], Event]) -> None:
        self.bus.publish(factory(snapshot_of(self.store, run_id)))

    async def _loop(self, run_id: str, resumed: bool) -> None:
        run = self.store.runs.get(run_id)
        if run is None or not run.is_active:
            return
        env = self.settings.environment(run.environment)
        gateway = self.gateways.get(env)
        if run.status == "pending":
            self.store.runs.set_status(run_id, "running")
        self.publish(run_id, lambda s: RunStarted(s, resumed=resumed))
        run_log.started(run, resumed)
        if resumed:
            self.store.audit.append(
                actor="bluegreen-bot", action="run:resumed", run_id=run_id, detail={"by": self.owner}
            )
        while True:
            run = self.store.runs.get(run_id)
            assert run is not None
            if not run.is_active:
                return
            step = next((s for s in self.store.steps.list(run_id) if s.status in UNFINISHED_STEP), None)
            if step is None:
                ending = run.meta.get("ending") or {"status": "succeeded", "error": None}
                await self._finish(run_id, ending["status"], ending.get("error"))
                return
            if self.shutdown.requested and await draining.stop_here(self, run_id, step, gateway, env):
                return
            with run_log.in_step(step.name):
                try:
                    await self._execute(run_id, step, gateway, env)
                except PlanChanged as exc:
                    self._ask_again(run_id, str(exc))
                except RunEnded as exc:
                    self._skip_rest(run_id, step.idx, exc.status)
                    await self._finish(run_id, exc.status, exc.message)
                    return
                except Exception as exc:  # every failure is handled the same way: compensate, then end
                    await self._fail(run_id, step, exc)

    async def _execute(self, run_id: str, step: StepRecord, gateway: AwsGateway, env: Environment) -> None:
        spec = step.state.get("spec", {"kind": step.name, "params": {}})
        implementation = lookup(spec["kind"])
        run = self.store.runs.get(run_id)
        assert run is not None
        if implementation.interruptible and run.meta.get("cancel_requested"):
            raise RunCancelled(f"cancelled by {run.meta['cancel_requested'].get('by', 'an operator')}")
        failpoints.hit(f"before-step:{spec['kind']}")
        self.store.steps.start(run_id, step.idx)
        run_log.step_started(run_id, step.name)
        self.publish(run_id, lambda s: StepChanged(s, step.idx))
        ledger = WindowLedger(self.store, run_id)
        ctx = StepContext(
            run_id=run_id,
            idx=step.idx,
            params=dict(spec.get("params", {})),
            gateway=gateway,
            store=self.store,
            env=env,
            windows=ledger,
            publish=lambda factory: self.publish(run_id, factory),
        )
        registrations = ctx.registrations()
        # Inside a detached window every extra call lengthens the outage: watch before and after it, not during.
        before = self._fresh_snapshot(run_id) or asyncio.ensure_future(
            self._snapshot_unless_detached(gateway, ledger, registrations)
        )
        try:
            outcome = await implementation.run(ctx)
        except BaseException:
            self._report_later(run_id, step.idx, ctx, before, None)
            raise
        snapshot = asyncio.ensure_future(self._snapshot_unless_detached(gateway, ledger, ctx.registrations()))
        self._last_snapshot[run_id] = (time.monotonic(), snapshot)
        after = asyncio.ensure_future(self._after_checks(gateway, env, spec["kind"], ctx.registrations(), snapshot))
        if spec["kind"] in REGISTERING_STEPS and env.require_probe:
            await self._require_probe(after)
        if isinstance(outcome, Replan):
            self._replan(run_id, step.idx, outcome)
            ctx.say(outcome.reason)
        else:
            self.store.steps.finish(run_id, step.idx, "done")
        run_log.step_done(run_id, step.name, replanned=isinstance(outcome, Replan))
        failpoints.hit(f"after-step:{spec['kind']}")
        self.publish(run_id, lambda s: StepChanged(s, step.idx))
        self._report_later(run_id, step.idx, ctx, before, after)

    @staticmethod
    async def _snapshot_unless_detached(
        gateway: AwsGateway, ledger: WindowLedger, registrations: list
    ) -> dict[str, Any]:
        if ledger.open_windows():
            return {}
        return await monitoring.proxy_snapshot(gateway, registrations)

    def _fresh_snapshot(self, run_id: str) -> asyncio.Future[dict[str, Any]] | None:
        """The snapshot taken right after the run's previous step, if it is recent enough to stand for the state
        before this one: one set of proxy reads between two steps, not two."""
        taken_at, snapshot = self._last_snapshot.pop(run_id, (0.0, None))
        return snapshot if snapshot is not None and time.monotonic() - taken_at < SNAPSHOT_REUSE_SECONDS else None

    async def _after_checks(
        self, gateway: AwsGateway, env: Environment, kind: str, registrations: list, snapshot: asyncio.Future
    ) -> dict[str, Any]:
        checks: dict[str, Any] = {"proxies": await snapshot}
        if kind in REGISTERING_STEPS:
            checks["connectivity"] = await monitoring.probe_proxies(gateway, registrations, dict(env.proxy_probes))
        return checks

    @staticmethod
    async def _require_probe(after: asyncio.Future[dict[str, Any]]) -> None:
        checks = await after
        failed = [label for label, result in checks.get("connectivity", {}).items() if not result.get("ok")]
        if failed:
            raise StepFailed(
                f"applications cannot connect through {', '.join(failed)} (required probe)",
                fix="Check the proxy endpoint, its security groups and the database's credentials secret.",
            )

    def _report_later(
        self,
        run_id: str,
        idx: int,
        ctx: StepContext,
        before: asyncio.Future[dict[str, Any]],
        after: asyncio.Future[dict[str, Any]] | None,
    ) -> None:
        """Attach the monitoring to the step and post its report without delaying the next step."""

        async def report() -> None:
            lines = list(ctx.lines)
            monitor: dict[str, Any] = {}
            try:
                monitor["before"] = await before
                if after is not None:
                    monitor["after"] = await after
            except Exception as exc:  # monitoring is advisory
                monitor["error"] = f"unavailable: {exc}"
            self.store.steps.merge_observed(run_id, idx, {"monitor": monitor})
            for label, snapshot in monitor.get("after", {}).get("proxies", {}).items():
                lines.append("after: " + monitoring.describe_snapshot(label, snapshot))
            for label, result in monitor.get("after", {}).get("connectivity", {}).items():
                verdict = {True: "ok", False: "FAILED", None: "unavailable"}[result.get("ok")]
                lines.append(f"connectivity through {label}: {verdict} ({result.get('detail')})")
            self.publish(run_id, lambda s: StepReport(s, idx, lines, list(ctx.calls)))

        task = asyncio.ensure_future(report())
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    def _replan(self, run_id: str, idx: int, replan: Replan) -> None:
        run = self.store.runs.get(run_id)
        later: list[StepSpec] = []
        if run is not None and run.kind == "rehearse":
            # A rehearsal keeps the rest of its plan (its switchover, its teardown) after the replaced part.
            replaced = {spec.kind for spec in replan.steps}
            later = [
                StepSpec(s.name, s.title, dict(spec.get("params", {})), tuple(spec.get("commands", ())))
                for s in self.store.steps.list(run_id)
                if s.idx > idx and s.status == "waiting" and s.name not in replaced
                for spec in [s.state.get("spec", {})]
            ]
        with self.store.atomic():
            self.store.steps.finish(run_id, idx, "skipped", detail=replan.reason)
            self._skip_rest(run_id, idx, "skipped")
            add_steps(self.store, run_id, [*replan.steps, *later])
            self.store.runs.update(run_id, strategy=replan.strategy)
            self.store.audit.append(
                actor="bluegreen-bot", action="run:replanned", run_id=run_id, detail={"reason": replan.reason}
            )
        self.publish(run_id, lambda s: Notice(s, replan.reason, broadcast=True))

    def _skip_rest(self, run_id: str, after_idx: int, status: str = "skipped") -> None:
        for later in self.store.steps.list(run_id):
            if later.idx > after_idx and later.status == "waiting":
                self.store.steps.finish(run_id, later.idx, "skipped" if status != "cancelled" else "cancelled")

    def _ask_again(self, run_id: str, reason: str) -> None:
        """The plan changed after approval: run the preflight and the gate again."""
        steps = self.store.steps.list(run_id)
        first = next((s.idx for s in steps if s.name in {"preflight_switchover", "preflight_create"}), 0)
        with self.store.atomic():
            for record in steps:
                if record.idx >= first and record.status in {"done", "running"}:
                    self.store.steps.reset(run_id, record.idx, detail=reason)
            self.store.runs.merge_meta(run_id, {"approved_fingerprint": None})
        self.publish(run_id, lambda s: Notice(s, f"{reason}. Checking again and asking for a new approval."))

    async def _fail(self, run_id: str, step: StepRecord, exc: BaseException) -> None:
        cancelled = isinstance(exc, RunCancelled)
        abandoned = isinstance(exc, ProxyAbandoned)
        message = str(exc) if isinstance(exc, BlueGreenError) else f"{type(exc).__name__}: {exc}"
        run_log.step_failed(run_id, step.name, exc, message)
        status = "cancelled" if cancelled else "failed"
        current = self.store.steps.get(run_id, step.idx)
        run = self.store.runs.get(run_id)
        assert run is not None
        already_compensating = run.status == "compensating"
        kind = run.meta.get("database_kind", "instance")
        with self.store.atomic():
            if current.status == "running" or (cancelled and current.status == "waiting"):
                ended = "cancelled" if cancelled or abandoned else "failed"
                self.store.steps.finish(run_id, step.idx, ended, detail=message)
            self._skip_rest(run_id, step.idx, status)
            # A rehearsal's proxies are its own and its teardown deletes them: it has no target to give back.
            open_windows = WindowLedger(self.store, run_id).open_windows() if run.kind != "rehearse" else {}
            if already_compensating:
                # The run ends as it would have, with its original error, once no proxy is left without a target
                # (or an operator abandoned them). Compensation never gives up by itself: start it again.
                ending = dict(run.meta.get("ending") or {"status": "failed", "error": None})
                if abandoned:
                    ending["error"] = "; ".join(part for part in (ending.get("error"), message) if part)
                    self.store.runs.merge_meta(run_id, {"ending": ending})
                elif run.kind == "rehearse":  # its teardown failed too: the run ends with both reasons
                    ending["error"] = "; ".join(p for p in (ending.get("error"), f"then the teardown: {message}") if p)
                    self.store.runs.merge_meta(run_id, {"ending": ending})
                elif open_windows:
                    add_steps(self.store, run_id, compensation_steps(run.database, list(open_windows), kind))
            elif run.kind == "rehearse" and step.name != "teardown_rehearsal":
                # A rehearsal always ends by deleting what it created, whatever stopped it.
                self.store.runs.set_status(run_id, "compensating")
                self.store.runs.merge_meta(run_id, {"ending": {"status": status, "error": message}})
                add_steps(self.store, run_id, teardown_steps(run.database))
            elif open_windows:
                # A proxy has no target: put it back before anything else.
                self.store.runs.set_status(run_id, "compensating")
                self.store.runs.merge_meta(run_id, {"ending": {"status": status, "error": message}})
                add_steps(self.store, run_id, compensation_steps(run.database, list(open_windows), kind))
            else:
                self.store.runs.merge_meta(run_id, {"ending": {"status": status, "error": message}})
            if isinstance(exc, ProxyAbandoned):
                self.store.audit.append(
                    actor=exc.by,
                    action="compensation:abandoned",
                    run_id=run_id,
                    detail={"proxies": exc.labels, "commands": exc.commands},
                )
            else:
                self.store.audit.append(
                    actor="bluegreen-bot",
                    action="step:failed",
                    run_id=run_id,
                    detail={"step": step.name, "error": message, "compensating": bool(open_windows)},
                )
        if isinstance(exc, ProxyAbandoned):
            commands = "; ".join(f"`{command}`" for command in exc.commands.values())
            text = (
                f"{exc.by} abandoned {', '.join(exc.labels)}: the bot no longer registers {run.database} there nor"
                f" watches it. If it still has no target, register it by hand: {commands}"
            )
        elif already_compensating and open_windows:
            text = (
                f"Compensation stopped unexpectedly ({message}); registering {run.database} with"
                f" {', '.join(open_windows)} again."
            )
        else:
            text = f"Step failed: {message}"
            if open_windows and not already_compensating:
                text += f". Registering {run.database} with {', '.join(open_windows)} again now."
        self.publish(run_id, lambda s: StepChanged(s, step.idx))
        self.publish(run_id, lambda s: Notice(s, text, broadcast=True))
        if already_compensating and open_windows and not abandoned:
            # Paced: a compensation that keeps breaking must not spin.
            await asyncio.sleep(self.settings.environment(run.environment).compensation_backoff_cap)

    async def _finish(self, run_id: str, status: str, error: str | None) -> None:
        # Reports of the last steps first, then the summary.
        self._last_snapshot.pop(run_id, None)
        if self._reports:
            await asyncio.gather(*list(self._reports), return_exceptions=True)
        with self.store.atomic():
            run = self.store.runs.set_status(run_id, status, error=error)
            self.store.locks.release(run_id)
            self.store.audit.append(
                actor="bluegreen-bot", action=f"run:{status}", run_id=run_id, detail={"error": error}
            )
        run_log.finished(run_id, status, error)
        windows = {
            label: {k: v for k, v in window.items() if k in {"seconds", "overhead_seconds", "aws_seconds"}}
            for label, window in run.summary.get("windows", {}).items()
        }
        self.publish(run_id, lambda s: RunFinished(s, status, error, windows))
