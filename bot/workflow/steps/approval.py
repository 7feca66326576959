"""Gates: the two-person approval and the maintenance window. Both wait durably and can be cancelled."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

from bot.gates.drift import FIX_DRIFT_ACTION
from bot.planning.fingerprint import plan_fingerprint
from bot.workflow import rehearsal_history
from bot.workflow.events import ApprovalDecided, ApprovalRequested
from bot.workflow.steps.base import Replan, RunEnded, Step, StepContext, StepFailed
from bot.workflow.watch import DeploymentWatch, void_approval, voided_reason
from storage import ApprovalRequest, RunRecord

GATE_POLL_SECONDS = 0.25
# Approval meta key set by `Engine.withdraw_approval`: why nobody could see the request (decided "rejected" by the bot).
WITHDRAWN = "withdrawn"
WINDOW_POLL_SECONDS = 5.0

ACTIONS = {
    "switchover": "switch production over to green (the proxy is detached for the duration where the strategy"
    " requires it)",
    "delete_old": "delete the old blue database, keeping a final snapshot (turning off its deletion protection if"
    " it has it)",
}


def approval_action(kind: str, params: Mapping[str, Any]) -> str:
    """What approving does, one sentence; a switchover with --fix-drift also says what it changes afterwards."""
    action = ACTIONS.get(kind, kind)
    if kind == "switchover" and params.get("fix_drift"):
        action += f"; {FIX_DRIFT_ACTION}"
    return action


def rehearsal_lines(ctx: StepContext, run: RunRecord) -> list[str]:
    """The latest rehearsal of green's version, as the preflight found it, aged as of now."""
    found = run.meta.get("rehearsed")
    if not found:
        return []
    return rehearsal_history.lines(found, database=run.database, now=ctx.clock(), allowed=ctx.env.rehearsals)


def gate_fingerprint(ctx: StepContext, kind: str) -> str:
    run = ctx.run
    if kind == "switchover":
        if not run.plan_fingerprint:
            raise StepFailed("no plan fingerprint recorded: the preflight did not run")
        return run.plan_fingerprint
    return plan_fingerprint(kind=kind, deployment=run.meta.get("deployment_id"), blue=run.meta.get("blue_arn"))


def publish_decision(ctx: StepContext, decided: ApprovalRequest) -> None:
    """Tell the sinks how the request was decided; a request the bot voided reads "voided", with the reason."""
    voided = voided_reason(decided.meta)
    decision = "voided" if voided else decided.status
    ctx.publish(
        lambda snapshot: ApprovalDecided(
            snapshot,
            decided.id,
            decision,
            None if voided else decided.decided_by,
            decided.decided_at or ctx.clock(),
            reason=voided[0] if voided else None,
        )
    )


class ApprovalGate(Step):
    kind = "approval"

    async def run(self, ctx: StepContext) -> Replan | None:
        kind = str(ctx.params.get("kind", "switchover"))
        fingerprint = gate_fingerprint(ctx, kind)
        approvals = ctx.store.approvals
        request = approvals.latest(ctx.run_id, kind)
        if request and request.status == "approved" and request.fingerprint == fingerprint:
            ctx.remember(approved_fingerprint=fingerprint)
            ctx.say(f"approved by {request.decided_by} earlier")
            return None
        voided = voided_reason(request.meta) if request and request.fingerprint == fingerprint else None
        if voided:  # a resumed run: the bot voided this request because the deployment failed
            raise StepFailed(voided[0], fix=voided[1])
        run = ctx.run
        if request is None or request.status != "pending" or request.fingerprint != fingerprint:
            approvers = sorted(ctx.env.approvers)
            request = approvals.request(
                run_id=ctx.run_id,
                kind=kind,
                fingerprint=fingerprint,
                requested_by=run.requester,
                approvers=approvers,
                expires_at=ctx.clock() + ctx.env.approval_ttl,
            )
            ctx.store.audit.append(
                actor="bluegreen-bot",
                action="approval:requested",
                run_id=ctx.run_id,
                detail={"request_id": request.id, "kind": kind, "fingerprint": fingerprint, "approvers": approvers},
            )
        ctx.set_run_status("waiting_approval")
        current = request
        facts = {str(k): str(v) for k, v in run.meta.get("facts", {}).items()}
        ctx.publish(
            lambda snapshot: ApprovalRequested(
                snapshot,
                request_id=current.id,
                kind=kind,
                fingerprint=current.fingerprint,
                requester=current.requested_by,
                approvers=list(current.approvers),
                expires_at=current.expires_at,
                action=approval_action(kind, run.params),
                facts=facts,
                gates=list(run.meta.get("readiness") or []) if kind == "switchover" else [],
                rehearsal=rehearsal_lines(ctx, run) if kind == "switchover" else [],
            )
        )
        # While it waits, the deployment it would switch over is watched: a failure voids the request.
        watch = DeploymentWatch(ctx) if kind == "switchover" else None
        while True:
            ctx.check_cancel()
            request = approvals.get(current.id)
            assert request is not None
            if request.status == "pending" and ctx.clock() >= request.expires_at and approvals.expire(request.id):
                request = approvals.get(current.id)
                assert request is not None
            if request.status != "pending":
                break
            failure = await watch.poll() if watch else None
            if watch and failure:  # void first, so that a click after the notice is refused
                void_approval(ctx.store, current.id, failure)
                error = watch.fail(failure)
                decided = approvals.get(current.id)
                assert decided is not None
                publish_decision(ctx, decided)
                ctx.observe(decision=decided.status, request=decided.id, failure=failure.code)
                raise error
            await asyncio.sleep(GATE_POLL_SECONDS)
        if watch:
            watch.report_held_events()
        decided = request
        publish_decision(ctx, decided)
        ctx.observe(decision=decided.status, by=decided.decided_by, request=decided.id)
        if decided.status == "approved":
            ctx.remember(approved_fingerprint=decided.fingerprint)
            ctx.set_run_status("running")
            ctx.say(f"approved by {decided.decided_by}")
            return None
        if decided.meta.get(WITHDRAWN):
            raise StepFailed(
                f"approval request {decided.id} was withdrawn: {decided.meta[WITHDRAWN]}",
                fix="Nothing after the approval was done. Start the run again once its requests can be shown.",
            )
        voided = voided_reason(decided.meta)
        if voided:
            raise StepFailed(voided[0], fix=voided[1])
        if decided.status == "rejected":
            raise RunEnded(f"rejected by {decided.decided_by}", status="rejected")
        if decided.status == "expired":
            raise RunEnded("the approval request expired before anyone approved it", status="expired")
        raise StepFailed(f"approval request {decided.id} was {decided.status}")


class MaintenanceWindowGate(Step):
    kind = "maintenance_window"

    async def run(self, ctx: StepContext) -> Replan | None:
        window = ctx.env.maintenance_window
        if window is None:
            ctx.say("no maintenance window configured for this environment")
            return None
        now = dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)
        if not window.contains(now):
            opening = window.next_opening(now)
            ctx.set_run_status("waiting_window")
            ctx.notify(
                f"Outside the maintenance window ({window.text} UTC): waiting until {opening:%a %H:%M} UTC."
                " `cancel` stops the run safely."
            )
            watch = DeploymentWatch(ctx)  # the approved deployment may still fail while the window is awaited
            while not window.contains(dt.datetime.fromtimestamp(ctx.clock(), dt.UTC)):
                ctx.check_cancel()
                failure = await watch.poll()
                if failure:
                    raise watch.fail(failure)
                await asyncio.sleep(WINDOW_POLL_SECONDS)
            watch.report_held_events()
            ctx.set_run_status("running")
        ctx.say(f"inside the maintenance window ({window.text} UTC)")
        return None
