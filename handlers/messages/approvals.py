"""The approval request posted in a run's thread, its Approve/Reject button payload, and the decided message."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from handlers.ids import ApprovalActions, ApprovalBlockIds
from handlers.messages.formatting import Message, clock, context, escape, mention, section


@dataclass(frozen=True, slots=True)
class ApprovalButtonValue:
    """The typed payload carried in an Approve/Reject button's `value`."""

    request_id: str
    run_id: str
    fingerprint: str

    def encode(self) -> str:
        return json.dumps(
            {"request_id": self.request_id, "run_id": self.run_id, "fingerprint": self.fingerprint},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, value: str) -> ApprovalButtonValue:
        """Raises ValueError when the value is not one of ours."""
        try:
            data = json.loads(value)
        except (TypeError, json.JSONDecodeError):
            raise ValueError("approval button value is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError("approval button value is not an object")
        fields = {name: data.get(name) for name in ("request_id", "run_id", "fingerprint")}
        if not all(isinstance(item, str) and item for item in fields.values()):
            raise ValueError("approval button value lacks request_id, run_id or fingerprint")
        return cls(**fields)  # type: ignore[arg-type]


def approval_request(
    *,
    request_id: str,
    run_id: str,
    kind: str,
    fingerprint: str,
    requester: str,
    approvers: Sequence[str],
    expires_at: float,
    action: str,
    facts: Mapping[str, str],
) -> Message:
    """The approval request: who may approve, what will happen, what it was checked against, two buttons."""
    what = "switchover" if kind == "switchover" else "deletion of the old databases"
    who = ", ".join(mention(item) for item in approvers) or "any approver"
    value = ApprovalButtonValue(request_id=request_id, run_id=run_id, fingerprint=fingerprint).encode()
    fact_lines = "\n".join(f"• *{escape(name)}*: {escape(str(item))}" for name, item in facts.items())
    blocks: list[Block] = [
        section(
            f":raised_hand: {who}: approval needed for the *{what}* requested by {mention(requester)}.\n"
            f"*What will happen:* {escape(action)}",
            block_id=ApprovalBlockIds.summary,
        ),
    ]
    if fact_lines:
        blocks.append(section(f"*Checked against:*\n{fact_lines}", block_id=ApprovalBlockIds.facts))
    blocks += [
        context(f"Expires at {clock(expires_at)} · the requester cannot approve · request `{request_id}`"),
        ActionsBlock(
            block_id=ApprovalBlockIds.buttons,
            elements=[
                ButtonElement(text="Approve", action_id=ApprovalActions.approve, value=value, style="primary"),
                ButtonElement(text="Reject", action_id=ApprovalActions.reject, value=value, style="danger"),
            ],
        ),
    ]
    text = f"Approval needed for the {what} of run {run_id}: {action}"
    return Message(text=text, blocks=blocks)


DECISION_WORDING = {
    "approved": (":white_check_mark:", "Approved"),
    "rejected": (":no_entry:", "Rejected"),
    "expired": (":hourglass:", "Expired"),
    "superseded": (":recycle:", "Superseded by a newer request"),
}


def approval_decided(
    *,
    request_id: str,
    run_id: str,
    kind: str,
    action: str,
    decision: str,
    user: str | None,
    at: float,
) -> Message:
    """Replaces the approval request once decided: the buttons give way to who decided and when."""
    icon, word = DECISION_WORDING.get(decision, (":grey_question:", decision.title()))
    by = f" by {mention(user)}" if user and decision in {"approved", "rejected"} else ""
    outcome = f"{icon} *{word}*{by} at {clock(at)}"
    what = "switchover" if kind == "switchover" else "deletion of the old databases"
    blocks: list[Block] = [
        section(
            f"Approval for the *{what}* of run `{run_id}`.\n*What it covered:* {escape(action)}",
            block_id=ApprovalBlockIds.summary,
        ),
        section(outcome, block_id=ApprovalBlockIds.decision),
        context(f"request `{request_id}`"),
    ]
    plain_by = f" by <@{user}>" if by else ""
    return Message(text=f"{word}{plain_by} at {clock(at)}: {what} of run {run_id}", blocks=blocks)
