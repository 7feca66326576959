"""`/bluegreen rehearse`: the cost estimate the requester confirms (Start rehearsal / Cancel), its button payload, and
the answers that replace it. The estimate's text is the core's (`bot.planning.rehearsal_cost`), as the CLI prints it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, PlainTextObject

from bot.planning.rehearsal_cost import ESTIMATE_NOTE, RehearsalEstimate
from bot.planning.requests import MODES, Mode, RunRequest
from handlers.ids import RehearsalActions, RehearsalBlockIds
from handlers.messages.formatting import Message, context, escape, header, mention, section

if TYPE_CHECKING:
    from storage import RunRecord

# An estimate older than this is not started: the database, its proxies or the prices may have changed since.
CONFIRMATION_TTL = 10 * 60


@dataclass(frozen=True, slots=True)
class RehearsalButtonValue:
    """What Start rehearsal / Cancel carry: the request as confirmed, who asked, when, and a one-time token (one
    run at most per token: `Engine.start(confirmation=...)`)."""

    token: str
    database: str
    environment: str
    requester: str
    issued_at: int
    engine_version: str | None = None
    parameter_group: str | None = None
    mode: Mode = "auto"

    @classmethod
    def issue(cls, request: RunRequest, now: float | None = None) -> RehearsalButtonValue:
        return cls(
            token=secrets.token_hex(8),
            database=request.database,
            environment=request.environment,
            requester=request.requester,
            issued_at=int(time.time() if now is None else now),
            engine_version=request.engine_version,
            parameter_group=request.parameter_group,
            mode=request.mode,
        )

    def encode(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, separators=(",", ":"))

    @classmethod
    def decode(cls, value: str) -> RehearsalButtonValue:
        """Raises ValueError when the value is not one of ours."""
        try:
            data = json.loads(value)
        except (TypeError, json.JSONDecodeError):
            raise ValueError("rehearsal button value is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError("rehearsal button value is not an object")
        required = ("token", "database", "environment", "requester")
        if not all(isinstance(data.get(name), str) and data[name] for name in required):
            raise ValueError("rehearsal button value lacks token, database, environment or requester")
        if not isinstance(data.get("issued_at"), int) or data.get("mode", "auto") not in MODES:
            raise ValueError("rehearsal button value has no issue time or an unknown mode")
        optional = {name: data.get(name) for name in ("engine_version", "parameter_group")}
        if not all(item is None or isinstance(item, str) for item in optional.values()):
            raise ValueError("rehearsal button value has a malformed option")
        return cls(
            **{name: data[name] for name in required},
            issued_at=data["issued_at"],
            mode=data.get("mode", "auto"),
            **optional,
        )

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) - self.issued_at > CONFIRMATION_TTL

    def request(self, channel: str | None) -> RunRequest:
        """The rehearsal to start, as confirmed. BadRequest if a value no longer passes the request's rules."""
        return RunRequest(
            kind="rehearse",
            database=self.database,
            requester=self.requester,
            environment=self.environment,
            channel=channel,
            engine_version=self.engine_version,
            parameter_group=self.parameter_group,
            mode=self.mode,
        )


def rehearsal_confirmation(estimate: RehearsalEstimate, value: RehearsalButtonValue) -> Message:
    """The ephemeral estimate with Start rehearsal / Cancel, shown to the requester only."""
    database = escape(estimate.database)
    strategy = f", strategy {estimate.strategy}" if estimate.strategy else ""
    facts = "\n".join(
        [
            f"*Instances:* {escape(estimate.instances_text)}",
            f"*Storage:* {escape(estimate.storage_text)}",
            f"*Proxies created:* {escape(estimate.proxies_text)}",
            f"*Expected duration:* {escape(estimate.duration_text)}",
            f"*Instance time:* {escape(estimate.instance_time_text)}",
        ]
    )
    encoded = value.encode()
    buttons = ActionsBlock(
        block_id=RehearsalBlockIds.buttons.value,
        elements=[
            ButtonElement(
                text=PlainTextObject(text="Start rehearsal"),
                action_id=RehearsalActions.start.value,
                value=encoded,
                style="primary",
            ),
            ButtonElement(text=PlainTextObject(text="Cancel"), action_id=RehearsalActions.cancel.value, value=encoded),
        ],
    )
    blocks: list[Block] = [
        header(f"Rehearse {estimate.database} on a disposable clone?"),
        section(
            f"Restores `{database}` into a clone behind its own proxy, runs the whole blue/green cycle on it"
            f" ({escape(estimate.engine)}{strategy}), then deletes everything. Estimated cost:\n{facts}",
            block_id=RehearsalBlockIds.estimate.value,
        ),
        context(
            escape(ESTIMATE_NOTE),
            f"Only {mention(value.requester)} can start it, within {CONFIRMATION_TTL // 60} minutes. No second"
            " approval: production does not change.",
            block_id=RehearsalBlockIds.note.value,
        ),
        buttons,
    ]
    text = f"Rehearse {estimate.database}? " + " ".join(line.strip() for line in estimate.lines()[1:-1])
    return Message(text=text, blocks=blocks)


def rehearsal_started(run: RunRecord) -> Message:
    where = "the thread below" if run.channel else "`/bluegreen runs`"
    text = f"Started the rehearsal of {run.database} as run {run.id}; follow it in {where}."
    return Message(
        text=text,
        blocks=[
            section(
                f":rocket: Started the rehearsal of `{escape(run.database)}`: run `{run.id}`. Follow it in {where}."
            )
        ],
    )


def rehearsal_not_started(database: str) -> Message:
    text = f"Rehearsal of {database} not started; nothing was created or changed."
    return Message(text=text, blocks=[section(f":heavy_multiplication_x: {escape(text)}")])
