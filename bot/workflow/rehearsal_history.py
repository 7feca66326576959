"""The latest rehearsal of a database for an engine version, as `plan` and a switchover's approval request show it:
one to three lines with its age ("rehearsed 3 h ago (r-1a2b3c4d, for 16.4): green in 14 min, switchover 41 s, proxy
without a target 5.20 s (bot 0.17 s); passed").

A rehearsal counts for a version only if it asked for that version (`--engine-version`); without one it counts for
a deployment that keeps the version. The latest rehearsal of another version is mentioned as such, never as this
version's.
"""

from __future__ import annotations

import time
from typing import Any

from bot.config import Environment
from bot.planning.plan import Observed
from bot.planning.requests import RunRequest
from bot.workflow.rehearsal_report import ERROR_BUDGET, span
from storage import RunRecord, Store

PLANNED_KINDS = frozenset({"create", "upgrade", "switchover", "rehearse"})  # the plans a rehearsal informs


def digest(run: RunRecord) -> dict[str, Any]:
    """What a summary line needs of a finished rehearsal: its report's figures, or (no report: the teardown did not
    finish) the run's own outcome."""
    report = run.meta.get("rehearsal") or {}
    figures = report.get("figures") or {}
    switchover_windows = [w for w in figures.get("windows", []) if w.get("phase") == "switchover" and w["seconds"]]
    widest = max(switchover_windows, key=lambda w: w["seconds"], default=None)
    if report:
        outcome, error = report["outcome"], report.get("error")
    else:
        outcome = "passed" if run.status == "succeeded" else run.status
        error = run.error or ("the teardown did not finish" if run.status == "succeeded" else None)
        outcome = "failed" if error and outcome == "passed" else outcome
    return {
        "run_id": run.id,
        "engine_version": run.params.get("engine_version"),
        "finished_at": run.finished_at,
        "outcome": outcome,
        "error": error,
        "green_seconds": figures.get("green_seconds"),
        "switchover_seconds": figures.get("switchover_seconds"),
        "window_seconds": widest["seconds"] if widest else None,
        "window_overhead_seconds": widest.get("overhead_seconds") if widest else None,
    }


def latest(store: Store, *, environment: str, database: str, version: str | None) -> dict[str, Any]:
    """{"version": the version asked about, "match": the latest finished rehearsal for it, "other": when there is
    none, the latest for another version}; each a `digest` or None."""
    match = store.runs.latest_finished(
        kind="rehearse", database=database, environment=environment, params={"engine_version": version}
    )
    other = None
    if match is None:
        other = store.runs.latest_finished(kind="rehearse", database=database, environment=environment)
    return {
        "version": version,
        "match": digest(match) if match else None,
        "other": digest(other) if other else None,
    }


def age(seconds: float) -> str:
    """3 h, 14 min, 2 d: how long ago, roughly."""
    if seconds < 60:
        return f"{max(0, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def _for(version: str | None) -> str:
    return f"for {version}" if version else "for the same engine version"


def summary(found: dict[str, Any], now: float) -> str:
    """One line: age, figures, outcome."""
    figures = []
    if found.get("green_seconds") is not None:
        figures.append(f"green in {span(found['green_seconds'])}")
    if found.get("switchover_seconds") is not None:
        figures.append(f"switchover {span(found['switchover_seconds'])}")
    if found.get("window_seconds") is not None:
        figures.append(
            f"proxy without a target {found['window_seconds']:.2f} s"
            f" (bot {found.get('window_overhead_seconds') or 0:.2f} s)"
        )
    when = age(now - found["finished_at"]) if found.get("finished_at") else "some time"
    line = f"rehearsed {when} ago ({found['run_id']}, {_for(found.get('engine_version'))})"
    if figures:
        line += ": " + ", ".join(figures)
    outcome = found.get("outcome") or "unknown"
    if outcome == "passed":
        return f"{line}; passed"
    error = str(found.get("error") or "no reason recorded")
    if len(error) > ERROR_BUDGET:
        error = error[: ERROR_BUDGET - 1] + "…"
    return f"{line}; {outcome}: {error}"


def rehearse_command(database: str, version: str | None) -> str:
    return f"rehearse {database}" + (f" --engine-version {version}" if version else "")


def lines(found: dict[str, Any], *, database: str, now: float, allowed: bool) -> list[str]:
    """One to three lines for a `latest` answer. With no rehearsal at all: "not rehearsed" and the command, only
    where the environment allows rehearsals (`allowed`); nothing otherwise."""
    version = found.get("version")
    if found.get("match"):
        return [summary(found["match"], now)]
    command = f"`{rehearse_command(database, version)}`"
    if found.get("other"):
        shown = [
            f"not rehearsed {_for(version)}",
            f"the latest rehearsal was for another version: {summary(found['other'], now)}",
        ]
        return [*shown, f"rehearse this one: {command}"] if allowed else shown
    return [f"not rehearsed {_for(version)}: {command} runs the whole cycle on a disposable clone"] if allowed else []


def target_version(request: RunRequest, observed: Observed) -> str | None:
    """The engine version the planned run leads to: the one asked for, or (a switchover) green's when it differs."""
    if request.engine_version:
        return request.engine_version
    green = observed.green
    if request.kind == "switchover" and green and green.engine_version != observed.database.engine_version:
        return green.engine_version
    return None


def for_plan(store: Store, env: Environment, request: RunRequest, observed: Observed) -> tuple[str, ...]:
    """The lines `plan` shows; none for plans a rehearsal says nothing about (cleanup, rollback)."""
    if request.kind not in PLANNED_KINDS:
        return ()
    database = observed.database.identifier
    found = latest(store, environment=env.name, database=database, version=target_version(request, observed))
    return tuple(lines(found, database=database, now=time.time(), allowed=env.rehearsals))
