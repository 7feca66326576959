"""Safety gates as a Slack table: one line per gate with its result, reason and fix. Used by the approval request
(readiness), the `plan` reply and the refusal of a `create` whose prerequisites failed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from slack_sdk.models.blocks import SectionBlock

from bot.gates.model import FAIL, PASS, GateResult
from handlers.messages.formatting import escape, section

ICONS = {PASS: ":white_check_mark:", FAIL: ":x:"}
UNKNOWN_ICON, PENDING_ICON = ":grey_question:", ":hourglass_flowing_sand:"


def _result(gate: GateResult | Mapping[str, Any]) -> GateResult:
    return gate if isinstance(gate, GateResult) else GateResult.from_dict(dict(gate))


def gate_line(gate: GateResult) -> str:
    icon = PENDING_ICON if gate.status == FAIL and gate.pending else ICONS.get(gate.status, UNKNOWN_ICON)
    line = f"{icon} *{escape(gate.name)}* ({gate.status}): {escape(gate.reason)}"
    if gate.fix and gate.status != PASS:
        line += f"\n      _fix:_ {escape(gate.fix)}"
    return line


def gate_table(gates: Iterable[GateResult | Mapping[str, Any]]) -> str:
    """mrkdwn, one gate a line (two with its fix); empty when there are no gates."""
    return "\n".join(gate_line(_result(gate)) for gate in gates)


def gates_section(
    title: str, gates: Iterable[GateResult | Mapping[str, Any]], *, block_id: str | None = None
) -> SectionBlock | None:
    """A section headed `title` with the table, or None when there are no gates."""
    table = gate_table(gates)
    return section(f"*{title}*\n{table}", block_id=block_id) if table else None
