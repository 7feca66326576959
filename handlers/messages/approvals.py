"""The approval request posted in a run's thread, its Approve/Reject button payload, and the decided message.

Approve carries a confirmation dialog (Slack shows it before the click is sent) stating exactly what approving
changes: the database, the proxies that will be detached and the expected detached window for a switchover, or the
database that will be deleted. Reject is neutral: withdrawing is always safe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject, PlainTextObject

from bot.aws.models import Registration
from handlers.ids import ApprovalActions, ApprovalBlockIds
from handlers.messages.formatting import Message, clock, context, escape, mention, section
from handlers.messages.gates import gates_section
from handlers.messages.status import rehearsal_section

if TYPE_CHECKING:
    from storage import RunRecord

# Slack's limits for a confirmation dialog (characters).
CONFIRM_TITLE_LIMIT = 100
CONFIRM_TEXT_LIMIT = 300
CONFIRM_BUTTON_LIMIT = 30
# Of the dialog text: proxy labels beyond this are counted, not listed; a longer window estimate is summarised.
_PROXIES_BUDGET = 100
_WINDOW_BUDGET = 120


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


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def old_database(run: RunRecord) -> str:
    """The database a `cleanup --delete-old` deletes: the switched-over deployment's source (blue, now `-old1`)."""
    recorded = run.meta.get("old_blue")
    if isinstance(recorded, str) and recorded:
        return recorded
    arn = run.meta.get("blue_arn")
    if isinstance(arn, str) and ":" in arn:
        return arn.rsplit(":", 1)[-1]
    return f"the old blue database of {run.database}"


def detached_proxies(run: RunRecord) -> tuple[list[str], str | None]:
    """(proxies a switchover of this run deregisters, why none when there are none)."""
    labels = [Registration.from_dict(item).label for item in run.meta.get("registrations") or []]
    if not labels:
        return [], "no proxy in front of this database"
    if run.strategy != "workaround":
        return [], "native strategy, AWS keeps the proxy attached"
    return labels, None


def _proxies_line(labels: list[str], why_none: str | None) -> str:
    if not labels:
        return f"Proxies detached: none ({why_none})."
    shown = ", ".join(labels)
    if len(shown) > _PROXIES_BUDGET:
        kept: list[str] = []
        for label in labels:
            if len(", ".join([*kept, label])) > _PROXIES_BUDGET - 15:
                break
            kept.append(label)
        kept = kept or [_cut(labels[0], _PROXIES_BUDGET - 15)]
        shown = f"{', '.join(kept)} and {len(labels) - len(kept)} more"
    return f"Proxies detached: {shown}."


def _window_line(run: RunRecord, labels: list[str]) -> str:
    if not labels:
        after = "; clients reconnect once the switchover completes" if run.strategy == "native" else ""
        return f"Expected detached window: none{after}."
    estimate = str(run.meta.get("detached_estimate") or "")
    if ": " in estimate:
        estimate = estimate.split(": ", 1)[1]  # drop the proxy labels, listed above
    estimate = estimate.split(";", 1)[0].strip()
    if not estimate or len(estimate) > _WINDOW_BUDGET:
        estimate = "the switchover (seconds to a minute) plus the registration"
    return f"Expected detached window: {estimate}."


def approve_confirmation(kind: str, run: RunRecord) -> ConfirmObject:
    """The dialog Slack shows before an Approve click is sent: what approving will change. Within Slack's limits."""
    if kind == "delete_old":
        old = old_database(run)
        title = f"Delete {old}?"
        lines = [
            f"Database deleted: {old} (the old blue, before the switchover), with a final snapshot.",
            f"Production {run.database} is not touched. Proxies detached: none.",
        ]
        confirm = "Approve deletion"
    else:
        labels, why_none = detached_proxies(run)
        title = f"Switch over {run.database}?"
        lines = [f"Database: {run.database}.", _proxies_line(labels, why_none), _window_line(run, labels)]
        if run.params.get("fix_drift"):  # before the window line, which is the one cut to fit
            lines.insert(2, "Afterwards (--fix-drift): old blue's deletion protection and tags on the new primary.")
        confirm = "Approve switchover"
    text = "\n".join(lines)
    if len(text) > CONFIRM_TEXT_LIMIT:  # only the window can be this long: it goes last and is cut
        text = _cut(text, CONFIRM_TEXT_LIMIT)
    return ConfirmObject(
        title=_cut(title, CONFIRM_TITLE_LIMIT),
        text=PlainTextObject(text=text),
        confirm=_cut(confirm, CONFIRM_BUTTON_LIMIT),
        deny="Cancel",
    )


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
    confirm: ConfirmObject,
    links: str | None = None,
    gates: Sequence[Mapping[str, Any]] = (),
    rehearsal: Sequence[str] = (),
) -> Message:
    """The approval request: who may approve, what will happen, what it was checked against (the readiness `gates`
    as a table, the latest `rehearsal` of the database and version), two buttons. Approve opens `confirm` first
    (`approve_confirmation`); `links` is a line of AWS console links (`console_links`)."""
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
    readiness = gates_section("Readiness (checked again right before anything is detached):", gates,
                              block_id=ApprovalBlockIds.gates)  # fmt: skip
    if readiness:
        blocks.append(readiness)
    if rehearsal:
        blocks.append(rehearsal_section(rehearsal, block_id=ApprovalBlockIds.rehearsal))
    if links:
        blocks.append(context(links))
    blocks += [
        context(f"Expires at {clock(expires_at)} · the requester cannot approve · request `{request_id}`"),
        ActionsBlock(
            block_id=ApprovalBlockIds.buttons,
            elements=[
                ButtonElement(
                    text="Approve", action_id=ApprovalActions.approve, value=value, style="primary", confirm=confirm
                ),
                ButtonElement(text="Reject", action_id=ApprovalActions.reject, value=value),
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
    "voided": (":no_entry_sign:", "Voided by the bot"),
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
    reason: str | None = None,
) -> Message:
    """Replaces the approval request once decided: the buttons give way to who decided and when (and why, for a
    request the bot voided because the deployment failed)."""
    icon, word = DECISION_WORDING.get(decision, (":grey_question:", decision.title()))
    by = f" by {mention(user)}" if user and decision in {"approved", "rejected"} else ""
    outcome = f"{icon} *{word}*{by} at {clock(at)}"
    if reason:
        outcome += f": {escape(reason)}. It can no longer be approved."
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
    why = f" ({reason})" if reason else ""
    return Message(text=f"{word}{plain_by} at {clock(at)}: {what} of run {run_id}{why}", blocks=blocks)
