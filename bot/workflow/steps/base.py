"""What every step gets from the runner, and the base class every step derives from (the catalogue that maps a
step kind to its class is `bot.workflow.steps.CATALOGUE`).

A step observes (is it already done?), acts once, then waits for AWS to confirm. Everything a step must remember
across a crash goes through `StepContext.save`; every AWS mutation goes through `StepContext.mutate`, which records it
in the audit log, on the step, and in the thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from bot.aws import mutation_guard
from bot.aws.gateway import AwsGateway, Mutation
from bot.aws.models import Database, Registration
from bot.config import Environment
from bot.errors import AwsError, BlueGreenError, RunCancelled
from bot.planning.fingerprint import switchover_fingerprint
from bot.planning.plan import StepSpec
from bot.planning.rehearsal import clone_name
from bot.workflow import failpoints
from bot.workflow.events import AwsCall, Event, Notice, RunSnapshot
from storage import RunRecord, StepRecord, Store

if TYPE_CHECKING:
    from bot.workflow.windows import WindowLedger

T = TypeVar("T")
log = logging.getLogger(__name__)


class StepFailed(BlueGreenError):
    """The step cannot complete; the runner compensates if a proxy is detached."""


class PlanChanged(BlueGreenError):
    """What was approved no longer matches AWS; the approval gate must run again."""


class RunEnded(BlueGreenError):
    """The run ends here without an error of its own (rejected, approval expired)."""

    def __init__(self, message: str, *, status: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Replan:
    """Returned by a step that changes the rest of the plan (the auto strategy falling back to the workaround)."""

    reason: str
    strategy: str
    steps: list[StepSpec]


@dataclass
class StepContext:
    run_id: str
    idx: int
    params: dict[str, Any]
    gateway: AwsGateway
    store: Store
    env: Environment
    windows: WindowLedger
    actor: str = "bluegreen-bot"
    lines: list[str] = field(default_factory=list)
    calls: list[AwsCall] = field(default_factory=list)
    clock: Callable[[], float] = time.time
    # Set by the runner: publish(factory) builds an event from a fresh snapshot and hands it to the sinks.
    publish: Callable[[Callable[[RunSnapshot], Event]], None] = lambda factory: None

    @property
    def run(self) -> RunRecord:
        run = self.store.runs.get(self.run_id)
        assert run is not None
        return run

    @property
    def record(self) -> StepRecord:
        return self.store.steps.get(self.run_id, self.idx)

    @property
    def state(self) -> dict[str, Any]:
        return self.record.state

    def save(self, **values: Any) -> None:
        self.store.steps.merge_state(self.run_id, self.idx, values)

    def observe(self, **values: Any) -> None:
        self.store.steps.merge_observed(self.run_id, self.idx, values)

    def say(self, line: str) -> None:
        self.lines.append(line)

    def notify(self, text: str, *, broadcast: bool = False) -> None:
        self.publish(lambda snapshot: Notice(snapshot, text, broadcast))

    def set_run_status(self, status: str) -> None:
        if self.run.status != status:
            self.store.runs.set_status(self.run_id, status)

    def check_cancel(self) -> None:
        cancel = self.run.meta.get("cancel_requested")
        if cancel:
            raise RunCancelled(f"cancelled by {cancel.get('by', 'an operator')}")

    # ----- run-level records the steps share (the rollback record) ----------------------------------------------

    def registrations(self) -> list[Registration]:
        return [Registration.from_dict(r) for r in self.run.meta.get("registrations", [])]

    def remember(self, **values: Any) -> None:
        self.store.runs.merge_meta(self.run_id, values)

    @property
    def subject(self) -> str:
        """The database the run's steps act on: the run's database, or a rehearsal's clone once it exists."""
        return str(self.run.meta.get("subject") or self.run.database)

    async def database(self, identifier: str | None = None) -> Database:
        subject = self.subject
        kind = self.run.meta.get("database_kind") if identifier in (None, subject) else None
        identifier = identifier or subject
        database = await self.gateway.database(identifier, kind)
        if database is None:
            raise StepFailed(
                f"database {identifier} no longer exists", fix="Check the AWS console; nothing was changed."
            )
        return database

    async def recorded(self, key: str, fetch: Callable[[str], Awaitable[T | None]]) -> T | None:
        """Fetch, fresh from AWS, the resource whose id or ARN the run recorded under meta[key]; None when nothing
        is recorded or AWS no longer has it."""
        value = self.run.meta.get(key)
        return await fetch(value) if value else None

    async def required(self, key: str, fetch: Callable[[str], Awaitable[T | None]], *, missing: str) -> T:
        """As `recorded`, but absent is a failure: StepFailed(missing), "{}" in it standing for the recorded value."""
        found = await self.recorded(key, fetch)
        if found is None:
            raise StepFailed(missing.format(self.run.meta.get(key) or "(unknown)"))
        return found

    def database_on_record(self) -> Database:
        """The run's database by name and kind, without asking AWS (registration needs no more)."""
        kind = self.run.meta.get("database_kind", "instance")
        return Database(identifier=self.subject, kind=kind, arn="", engine="", engine_version="", status="")

    async def mutate(self, call: Callable[[], Awaitable[Mutation]], *, what: str) -> Mutation:
        """Make one AWS mutation and record it everywhere, whether it succeeded or not."""
        started = self.clock()
        self.store.audit.append(
            actor=self.actor, action="aws-sent", run_id=self.run_id, detail={"what": what, "step": self.idx}
        )
        try:
            with mutation_guard.only(self.rehearsal_resources()):
                mutation = await call()
        except AwsError as exc:
            self._record(exc.action, what, exc.request_id, exc.code, started, command=None)
            raise
        self._record(mutation.action, what, mutation.request_id, "ok", started, command=mutation.command)
        failpoints.hit(f"after-call:{mutation.action}")
        return mutation

    def rehearsal_resources(self) -> frozenset[str] | None:
        """A rehearsal's own resources, the only ones its mutations may name; None for any other run."""
        run = self.run
        if run.kind != "rehearse":
            return None
        created = (run.meta.get("subject"), run.meta.get("deployment_name"), run.meta.get("deployment_id"))
        return frozenset({clone_name(run.database, run.id), *(str(c) for c in created if c)})

    def answered(self, what: str) -> bool:
        """Whether an earlier attempt of this step recorded AWS's answer to that mutation."""
        return any(call.get("what") == what for call in self.record.aws_calls)

    def confirm_applied(self, action: str, what: str, command: str) -> None:
        """A mutation sent by an attempt that died before AWS answered, now seen applied: record its outcome."""
        what = f"{what} (applied before the process stopped; confirmed by describe)"
        self._record(action, what, None, "ok", self.clock(), command=command)

    def _record(
        self, action: str, what: str, request_id: str | None, outcome: str, at: float, command: str | None
    ) -> None:
        call = AwsCall(action=action, command=command or action, request_id=request_id, outcome=outcome, at=at)
        self.calls.append(call)
        log.log(
            logging.INFO if outcome == "ok" else logging.WARNING,
            "run %s: %s: %s (%s)",
            self.run_id,
            what,
            call.command,
            outcome,
            extra={"action": action, "aws_request_id": request_id},
        )
        detail = {"what": what, "command": call.command, "outcome": outcome, "step": self.idx}
        with self.store.atomic():
            self.store.steps.add_aws_call(
                self.run_id, self.idx, {**detail, "action": action, "request_id": request_id, "at": at}
            )
            self.store.audit.append(
                actor=self.actor, action=f"aws:{action}", run_id=self.run_id, detail=detail, request_id=request_id
            )


async def verify_approved_plan(ctx: StepContext) -> None:
    """The approval was for a fingerprint; refuse to act if AWS no longer matches it. Runs before a proxy is
    detached, never inside the window."""
    approved = ctx.run.meta.get("approved_fingerprint")
    if not approved:
        return
    deployment_id = ctx.run.meta.get("deployment_id")
    deployment = await ctx.gateway.deployment(deployment_id) if deployment_id else None
    if deployment is None or deployment.status != "AVAILABLE":
        raise PlanChanged(f"deployment {deployment_id} is {deployment.status if deployment else 'gone'} now")
    green = await ctx.gateway.database_by_arn(deployment.target_arn or "")
    if green is None or green.status != "available":
        raise PlanChanged(f"green is {green.status if green else 'gone'} now")
    current = switchover_fingerprint(
        deployment,
        green.engine_version if green else None,
        [r.label for r in ctx.registrations()],
        ctx.run.strategy,
        ctx.run.meta.get("switchover_timeout"),
        fix_drift=bool(ctx.run.params.get("fix_drift")),
    )
    if current != approved:
        raise PlanChanged("AWS changed since the approval (deployment, green version or proxies)")


class Step:
    """A kind of step. Subclasses set `kind`, implement `run`, and are listed in `bot.workflow.steps.STEPS`."""

    kind: ClassVar[str]
    # Whether cancelling may interrupt it. Steps that restore a proxy's target must always finish.
    interruptible: ClassVar[bool] = True

    async def run(self, ctx: StepContext) -> Replan | None:
        raise NotImplementedError
