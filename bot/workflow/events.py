"""What the runner tells the world. Sinks (Slack thread, console) render these and decide nothing.

Every event carries a snapshot of the run and its steps, so a sink can render the whole checklist without
reading storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from storage import RunRecord, StepRecord


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    run: RunRecord
    steps: list[StepRecord]


@dataclass(frozen=True, slots=True)
class AwsCall:
    """One AWS mutation, as shown in the thread and kept in the audit log."""

    action: str
    command: str  # the equivalent `aws rds ...` command line
    request_id: str | None
    outcome: str  # "ok", or the AWS error code
    at: float


@dataclass(frozen=True, slots=True)
class RunStarted:
    snapshot: RunSnapshot
    resumed: bool = False  # True when a process picks the run up again after a restart


@dataclass(frozen=True, slots=True)
class StepChanged:
    """A step changed status (running, done, failed, skipped...). The checklist is re-rendered."""

    snapshot: RunSnapshot
    step_idx: int


@dataclass(frozen=True, slots=True)
class StepReport:
    """The details of one finished step: posted as a thread reply."""

    snapshot: RunSnapshot
    step_idx: int
    lines: list[str]
    aws_calls: list[AwsCall] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something an operator should read now (fallback to the workaround, waiting for a window, compensation)."""

    snapshot: RunSnapshot
    text: str
    broadcast: bool = False


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    snapshot: RunSnapshot
    request_id: str
    kind: str  # "switchover" | "delete_old"
    fingerprint: str
    requester: str
    approvers: list[str]
    expires_at: float
    action: str  # what will happen, one sentence
    facts: dict[str, str]  # what the plan was checked against


@dataclass(frozen=True, slots=True)
class ApprovalDecided:
    snapshot: RunSnapshot
    request_id: str
    decision: str  # "approved" | "rejected" | "expired" | "superseded"
    user: str | None
    at: float


@dataclass(frozen=True, slots=True)
class RunFinished:
    snapshot: RunSnapshot
    status: str
    error: str | None
    windows: dict[str, dict[str, float]]  # proxy label -> {"seconds", "overhead_seconds"}


Event = RunStarted | StepChanged | StepReport | Notice | ApprovalRequested | ApprovalDecided | RunFinished


class Sink(Protocol):
    async def emit(self, event: Event) -> None: ...
