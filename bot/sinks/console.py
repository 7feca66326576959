"""Live progress in a terminal: the CLI's view of a run."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from bot.gates.model import GateResult, gate_rows
from bot.workflow.events import (
    ApprovalDecided,
    ApprovalRequested,
    DetachedAlert,
    Event,
    Notice,
    RunFinished,
    RunStarted,
    StepChanged,
    StepReport,
)

MARKS = {"waiting": " ", "running": ">", "done": "+", "failed": "x", "skipped": "-", "cancelled": "-"}


def _duration(started: float | None, ended: float | None) -> str:
    if not started:
        return ""
    return f" ({(ended or time.time()) - started:.1f} s)"


class ConsoleSink:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    async def emit(self, event: Event) -> None:
        run = event.snapshot.run
        prefix = f"[{run.id}]"
        match event:
            case RunStarted(resumed=resumed):
                verb = "resumed" if resumed else "started"
                self._print(f"{prefix} {run.kind} {run.database} {verb} (strategy: {run.strategy or 'n/a'})")
                for step in event.snapshot.steps:
                    self._print(f"{prefix}   [{MARKS.get(step.status, '?')}] {step.title}")
            case StepChanged(step_idx=idx):
                step = event.snapshot.steps[idx]
                if step.status != "waiting":
                    self._print(
                        f"{prefix} [{MARKS.get(step.status, '?')}] {step.title}: {step.status}"
                        f"{_duration(step.started_at, step.ended_at) if step.status != 'running' else ''}"
                    )
            case StepReport(step_idx=idx, lines=lines, aws_calls=calls):
                step = event.snapshot.steps[idx]
                for line in lines:
                    self._print(f"{prefix}     {step.name}: {line}")
                for call in calls:
                    self._print(f"{prefix}     $ {call.command}  [{call.outcome}, request {call.request_id or '-'}]")
            case Notice(text=text):
                self._print(f"{prefix} ! {text}")
            case ApprovalRequested():
                self._print(
                    f"{prefix} approval needed ({event.kind}): {event.action}. Approvers: "
                    f"{', '.join(event.approvers) or '(none configured)'}. Expires "
                    f"{time.strftime('%H:%M:%S', time.localtime(event.expires_at))}.\n"
                    f"{prefix}   python -m bot approve {event.request_id} --as <approver-id>"
                )
                for row in gate_rows(GateResult.from_dict(gate) for gate in event.gates):
                    self._print(f"{prefix}   readiness: {row}")
                for line in event.rehearsal:
                    self._print(f"{prefix}   rehearsal: {line}")
            case DetachedAlert(number=number, proxies=proxies):
                for proxy in proxies:
                    self._print(
                        f"{prefix} ALERT {number}: {proxy.label} has had no target for"
                        f" {time.time() - proxy.detached_at:.0f} s; the bot keeps registering {proxy.database}"
                        f" ({proxy.attempts} attempts; latest: {proxy.last_error or '-'})\n"
                        f"{prefix}   by hand: {proxy.command}\n"
                        f"{prefix}   fixed it yourself? python -m bot cancel {run.id} --abandon-proxy"
                    )
            case ApprovalDecided(decision=decision, user=user, reason=reason):
                self._print(
                    f"{prefix} approval {decision}"
                    + (f" by {user}" if user else "")
                    + (f": {reason}" if reason else "")
                )
            case RunFinished(status=status, error=error, windows=windows):
                self._print(f"{prefix} finished: {status}" + (f": {error}" if error else ""))
                for label, window in windows.items():
                    if "seconds" in window:
                        self._print(
                            f"{prefix}   {label}: no available target for {window['seconds']:.2f} s;"
                            f" AWS at least {window.get('aws_seconds', 0):.2f} s,"
                            f" bot overhead at most {window.get('overhead_seconds', 0):.2f} s"
                        )
