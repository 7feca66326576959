"""A rehearsal's report: what it measured on the clone, kept with the run (run meta `rehearsal`) and posted in its
thread as text. Built at the end of the teardown from what the steps recorded:

- restore and proxy: run meta `measured` (`WaitCloneAvailable`, `CreateCloneProxies`);
- green AVAILABLE: from the create call to the deployment seen AVAILABLE; each provisioning task from the moments
  the bot saw its status change (run meta `deployment_tasks`, written by `WaitDeploymentAvailable`), so a task's
  duration is as precise as the polling;
- the gates: run meta `prerequisites` and `readiness`, as a production run records them;
- the switchover step's duration, and each proxy-detached window with the bot's overhead (`bot.workflow.windows`),
  told apart by whether it opened before or after the rehearsal's switchover began;
- the outcome: passed, or the failure (run meta `ending`) with the step it stopped at and AWS's reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.gates.model import FAIL, PASS, UNKNOWN
from storage import RunRecord, StepRecord

FINISHED_TASK = frozenset({"COMPLETED", "FAILED"})
# The steps that begin the rehearsal's switchover: a window opened from then on is the switchover's.
SWITCHOVER_PHASE = ("rehearsal_readiness", "rehearse_switchover", "switchover")
ERROR_BUDGET = 300  # characters of the failure kept in a one-line summary


def span(seconds: float | None) -> str:
    """12.3 s, 41 s, 14 min 2 s, 2 h 5 min."""
    if seconds is None:
        return "?"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _last_done(steps: Sequence[StepRecord], name: str) -> StepRecord | None:
    done = [s for s in steps if s.name == name and s.status == "done" and s.started_at and s.ended_at]
    return done[-1] if done else None


def task_durations(history: dict[str, list[list[Any]]], created_at: float | None = None) -> list[dict[str, Any]]:
    """Each task: its last status and how long it ran as the bot saw it (`WaitDeploymentAvailable` records each
    change as [status, seen at, the look before]): from the first look that saw it IN_PROGRESS, or, if no look did,
    from the last look that saw it PENDING, to the first look that saw it COMPLETED or FAILED. A task already
    finished at the first look gets `at_most` instead: from the create call (`created_at`) to that look."""
    tasks = []
    for name, transitions in history.items():
        started = next((change[1] for change in transitions if change[0] == "IN_PROGRESS"), None)
        finished = next((change for change in transitions if change[0] in FINISHED_TASK), None)
        task: dict[str, Any] = {"name": name, "status": transitions[-1][0], "seconds": None}
        if finished is not None and finished is transitions[0]:
            if created_at is not None:
                task["at_most"] = round(finished[1] - created_at, 1)
        elif finished is not None:
            started = started if started is not None else finished[2]  # it ran between two looks
            task["seconds"] = round(finished[1] - started, 1) if started is not None else None
        tasks.append(task)
    return tasks


def _windows(run: RunRecord, steps: Sequence[StepRecord]) -> list[dict[str, Any]]:
    began = [s.started_at for s in steps if s.name in SWITCHOVER_PHASE and s.started_at]
    switchover_from = min(began) if began else None
    windows = []
    for label, total in (run.summary or {}).get("windows", {}).items():
        each = total.get("each") or ([total] if "seconds" in total else [])
        for window in each:
            opened = window.get("detached_at") or total.get("detached_at") or 0.0
            phase = "switchover" if switchover_from is not None and opened >= switchover_from else "create"
            windows.append(
                {
                    "proxy": label,
                    "phase": phase,
                    "seconds": window.get("seconds"),
                    "aws_seconds": window.get("aws_seconds"),
                    "overhead_seconds": window.get("overhead_seconds"),
                }
            )
        if "seconds" not in total and total.get("detached_at"):  # still open: the teardown deletes the proxy
            windows.append({"proxy": label, "phase": "unclosed", "seconds": None, "overhead_seconds": None})
    return windows


def _outcome(run: RunRecord, steps: Sequence[StepRecord]) -> dict[str, Any]:
    ending = run.meta.get("ending") or {}
    if not ending.get("error") and ending.get("status", "succeeded") == "succeeded":
        return {"outcome": "passed", "error": None, "failed_step": None}
    stopped = [s for s in steps if s.status in {"failed", "cancelled"} and s.name != "teardown_rehearsal"]
    return {
        "outcome": "cancelled" if ending.get("status") == "cancelled" else "failed",
        "error": ending.get("error"),
        "failed_step": stopped[-1].name if stopped else None,
    }


def build(run: RunRecord, steps: Sequence[StepRecord], *, clone: str, now: float) -> dict[str, Any]:
    """The report as data: what was asked, the figures, the gates, the outcome."""
    measured = dict(run.meta.get("measured") or {})
    figures: dict[str, Any] = {
        key: measured.get(key) for key in ("restore_seconds", "proxy_seconds") if measured.get(key) is not None
    }
    create, ready = _last_done(steps, "create_deployment"), _last_done(steps, "wait_deployment_available")
    if create and ready:
        figures["green_seconds"] = round(ready.ended_at - create.started_at, 1)  # type: ignore[operator]
    switchover = _last_done(steps, "switchover")
    if switchover:
        figures["switchover_seconds"] = round(switchover.ended_at - switchover.started_at, 1)  # type: ignore[operator]
    figures["tasks"] = task_durations(run.meta.get("deployment_tasks") or {}, create.started_at if create else None)
    figures["windows"] = _windows(run, steps)
    return {
        "run_id": run.id,
        "database": run.database,
        "clone": clone,
        "environment": run.environment,
        "engine_version": run.params.get("engine_version"),
        "parameter_group": run.params.get("parameter_group"),
        "mode": run.params.get("mode") or "auto",
        "strategy": run.strategy,
        "figures": figures,
        "gates": {
            "prerequisites": list(run.meta.get("prerequisites") or []),
            "readiness": list(run.meta.get("readiness") or []),
        },
        **_outcome(run, steps),
        "finished_at": now,
    }


def gates_line(name: str, gates: Iterable[dict[str, Any]]) -> str | None:
    """`prerequisites: 7 passed, 1 failed; failed target parameter group: ...`; None when they did not run."""
    gates = list(gates)
    if not gates:
        return None
    words = {PASS: "passed", FAIL: "failed", UNKNOWN: "unknown"}
    counts = {status: sum(1 for g in gates if g.get("status") == status) for status in words}
    line = f"{name}: " + ", ".join(f"{n} {words[status]}" for status, n in counts.items() if n)
    for status in (FAIL, UNKNOWN):
        line += "".join(f"; {words[status]} {g['name']}: {g.get('reason')}" for g in gates if g.get("status") == status)
    return line


def window_line(window: dict[str, Any]) -> str:
    if window["seconds"] is None:
        return f"{window['proxy']}: detached when the rehearsal stopped (its proxy was deleted with it)"
    return (
        f"{window['proxy']} without a target ({window['phase']}): {window['seconds']:.2f} s"
        f" (bot overhead at most {window.get('overhead_seconds') or 0:.2f} s)"
    )


def task_line(task: dict[str, Any]) -> str:
    if task["status"] not in FINISHED_TASK:
        return f"{task['name']}: still {task['status']}"
    if task["seconds"] is not None:
        return f"{task['name']}: {task['status']} in {span(task['seconds'])}"
    if task.get("at_most") is not None:
        return f"{task['name']}: {task['status']} within {span(task['at_most'])} of the create call (by the first look)"
    return f"{task['name']}: {task['status']}"


def text(report: dict[str, Any]) -> str:
    """The report as the thread and the terminal show it: a title, then one figure a line."""
    figures, outcome = report["figures"], report["outcome"]
    asked = ", ".join(
        part
        for part in (
            f"to {report['engine_version']}" if report.get("engine_version") else "no engine version change",
            f"parameter group {report['parameter_group']}" if report.get("parameter_group") else None,
            f"strategy {report['strategy']}" if report.get("strategy") else None,
        )
        if part
    )
    lines = [f"Rehearsal of {report['database']} on a disposable clone: {outcome} ({asked})"]
    labels = {"restore_seconds": "restore to available", "proxy_seconds": "proxy available"}
    lines += [f"• {label}: {span(figures[key])}" for key, label in labels.items() if key in figures]
    if "green_seconds" in figures:
        lines.append(f"• green AVAILABLE: {span(figures['green_seconds'])} after the create call")
    elif figures["tasks"]:
        lines.append("• green did not become AVAILABLE")
    lines += [f"    - {task_line(task)}" for task in figures["tasks"]]
    for name in ("prerequisites", "readiness"):
        line = gates_line(name, report["gates"][name])
        if line:
            lines.append(f"• {line}")
    if "switchover_seconds" in figures:
        lines.append(f"• switchover: {span(figures['switchover_seconds'])}")
    lines += [f"• {window_line(window)}" for window in figures["windows"]]
    if outcome != "passed":
        where = f" at {report['failed_step']}" if report.get("failed_step") else ""
        lines.append(f"• {outcome}{where}: {report.get('error') or 'no reason recorded'}")
    lines.append(f"• torn down: nothing tagged bluegreen-bot:rehearsal={report['run_id']} remains")
    return "\n".join(lines)
