"""What a gate says: its name, pass / fail / unknown, a one-line reason, and the fix (a command where there is
one). Results travel in run meta and plan facts as plain dicts (`to_dict` / `from_dict`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.errors import BadRequest

PASS = "pass"
FAIL = "fail"
UNKNOWN = "unknown"  # the gate could not decide (AWS did not answer, no data): shown, never treated as a pass


@dataclass(frozen=True, slots=True)
class GateResult:
    name: str
    status: str  # PASS | FAIL | UNKNOWN
    reason: str
    fix: str | None = None
    pending: bool = False  # a failure that should clear by itself with time (storage optimisation, lag)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason, "fix": self.fix,
                "pending": self.pending}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(str(data["name"]), str(data["status"]), str(data["reason"]), data.get("fix"),
                   bool(data.get("pending", False)))  # fmt: skip


def failed(results: Iterable[GateResult]) -> list[GateResult]:
    return [r for r in results if r.status == FAIL]


def gate_rows(results: Iterable[GateResult]) -> list[str]:
    """One plain-text line per gate, for the console and logs (Slack renders its own table)."""
    icons = {PASS: "ok  ", FAIL: "FAIL", UNKNOWN: "??  "}
    lines = []
    for result in results:
        line = f"{icons.get(result.status, result.status)} {result.name}: {result.reason}"
        if result.fix and result.status != PASS:
            line += f" (fix: {result.fix})"
        lines.append(line)
    return lines


class GatesFailed(BadRequest):
    """One or more gates failed: nothing was changed (the CLI exits 2, Slack refuses, as for any
    BadRequest). Carries every result, so the caller can show the table."""

    def __init__(self, message: str, results: list[GateResult], *, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.results = results
