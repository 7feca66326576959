"""The two-person rule: deciding an approval request once, and withdrawing one nobody could see.

The engine's `approve`, `reject` and `withdraw_approval` are this desk's; it never touches AWS.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bot.config import Environment
from bot.errors import ApprovalRefused
from bot.workflow.events import ApprovalDecided, EventBus
from bot.workflow.runner import snapshot_of
from bot.workflow.steps.approval import WITHDRAWN
from bot.workflow.watch import voided_reason
from storage import ApprovalRequest, RunRecord, Store

# Decides whether a user may approve in an environment (Slack resolves user groups; the CLI compares ids).
ApproverCheck = Callable[[str, Environment], Awaitable[bool]]

BOT_ACTOR = "bluegreen-bot"


async def ids_only(user: str, env: Environment) -> bool:
    return user in env.approvers


class ApprovalDesk:
    """Decides approval requests by compare-and-set, so that two concurrent approvals start one switchover."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        approver_check: ApproverCheck,
        environment: Callable[[str | None], Environment],
    ) -> None:
        self.store = store
        self.bus = bus
        self.approver_check = approver_check
        self._env = environment

    async def decide(self, request_id: str, user: str, fingerprint: str | None, decision: str) -> ApprovalRequest:
        """`decision` ("approved" or "rejected") by `user`; returns the request decided. ApprovalRefused, audited and
        nothing changed, when the request is unknown, decided, withdrawn, voided (with the reason and fix), expired,
        for another plan, or `user` may not decide it."""
        request = self.store.approvals.get(request_id)
        if request is None:
            raise ApprovalRefused(f"no approval request `{request_id}`.")
        run = self.store.runs.get(request.run_id)
        assert run is not None
        voided = voided_reason(request.meta)  # the deployment failed while the request waited
        if voided:
            refusal, fix = f"this request was voided by the bot: {voided[0]}; nothing changed.", voided[1]
        else:
            refusal, fix = await self._refusal(request, run, user, fingerprint, decision), None
        if refusal:
            self.store.audit.append(
                actor=user,
                action=f"approval:refused:{decision}",
                run_id=run.id,
                detail={"request_id": request_id, "reason": refusal},
            )
            raise ApprovalRefused(refusal, fix=fix)
        if not self.store.approvals.decide(request_id, user=user, decision=decision):
            latest = self.store.approvals.get(request_id)
            assert latest is not None
            raise ApprovalRefused(f"already {latest.status} by {latest.decided_by or 'the bot'}; nothing changed.")
        self.store.audit.append(
            actor=user, action=f"approval:{decision}", run_id=run.id, detail={"request_id": request_id}
        )
        decided = self.store.approvals.get(request_id)
        assert decided is not None
        return decided

    async def _refusal(
        self, request: ApprovalRequest, run: RunRecord, user: str, fingerprint: str | None, decision: str
    ) -> str | None:
        if request.meta.get(WITHDRAWN):
            return f"this request was withdrawn: {request.meta[WITHDRAWN]}; nothing changed."
        if request.status != "pending":
            who = f" by {request.decided_by}" if request.decided_by else ""
            return f"this request was already {request.status}{who}; nothing changed."
        if time.time() >= request.expires_at:
            if self.store.approvals.expire(request.id):
                self.bus.publish(
                    ApprovalDecided(snapshot_of(self.store, run.id), request.id, "expired", None, time.time())
                )
            return "this approval request has expired; the run will ask again if it is retried."
        if fingerprint is not None and fingerprint != request.fingerprint:
            return "the plan changed since this request was posted; approve the newer request in the thread."
        if run.plan_fingerprint and run.plan_fingerprint != request.fingerprint and request.kind == "switchover":
            return "the plan changed since this request was posted; a new approval request will follow."
        if decision == "rejected" and user == request.requested_by:
            return None  # the requester may always withdraw their own request
        if user == request.requested_by:
            return "you requested this run: a second person must approve it (two-person rule)."
        try:
            allowed = await self.approver_check(user, self._env(run.environment))
        except ApprovalRefused as refused:  # the check could not decide (Slack could not confirm a user group)
            return refused.message
        if not allowed:
            return "you are not an approver for this environment; ask one of the approvers mentioned above."
        return None

    async def withdraw(self, request_id: str, reason: str) -> bool:
        """`ApprovalDelivery`: a sink could not show approval request `request_id` to anyone (the bot lost the run's
        channel). The request is withdrawn so that nobody can approve what the approvers never saw, and the run stops
        at its approval gate, before the change it guards. False, nothing changed, when the request was no longer
        pending (decided, expired, superseded) or is unknown."""
        request = self.store.approvals.get(request_id)
        if request is None:
            return False
        with self.store.atomic():
            if not self.store.approvals.decide(request_id, user=BOT_ACTOR, decision="rejected"):
                return False
            self.store.approvals.merge_meta(request_id, {WITHDRAWN: reason})
            self.store.audit.append(
                actor=BOT_ACTOR,
                action="approval:withdrawn",
                run_id=request.run_id,
                detail={"request_id": request_id, "reason": reason},
            )
        return True
