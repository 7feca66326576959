"""What the runner tells the log stream (`bot/logs.py`) about a run: its start, each step's start and end, a failure
and the end. `in_run` (on `Runner.drive`) and `in_step` set the log context, so these records and every other one
emitted meanwhile (AWS and Slack calls, in tasks started there too) carry the run's id, its environment and the step.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import BlueGreenError
from bot.logs import log_context
from storage import RunRecord

Drive = Callable[..., Awaitable[bool]]  # Runner.drive

log = logging.getLogger("bot.workflow.runner")  # the runner's own records, under its name


def in_run(drive: Drive) -> Drive:
    """Decorates `Runner.drive(self, run_id, ...)`: every record while it runs carries the run's id and environment."""

    @functools.wraps(drive)
    async def driving(runner: Any, run_id: str, **options: Any) -> bool:
        run = runner.store.runs.get(run_id)
        with log_context(run_id=run_id, environment=run.environment if run else None, step=None):
            return await drive(runner, run_id, **options)

    return driving


def in_step(name: str) -> contextlib.AbstractContextManager[None]:
    return log_context(step=name)


def started(run: RunRecord, resumed: bool) -> None:
    log.info("run %s: %s %s %s", run.id, "resumed" if resumed else "started", run.kind, run.database)


def step_started(run_id: str, step: str) -> None:
    log.info("run %s: step %s started", run_id, step)


def step_done(run_id: str, step: str, *, replanned: bool) -> None:
    log.info("run %s: step %s %s", run_id, step, "replanned" if replanned else "done")


def step_failed(run_id: str, step: str, exc: BaseException, message: str) -> None:
    """A failure the bot knows (a `BlueGreenError`) is a warning; anything else is a bug, logged with its traceback."""
    if isinstance(exc, BlueGreenError):
        log.warning("run %s: step %s ended: %s", run_id, step, message)
    else:
        log.error("run %s: step %s failed unexpectedly", run_id, step, exc_info=exc)


def finished(run_id: str, status: str, error: str | None) -> None:
    log.info("run %s: %s%s", run_id, status, f": {error}" if error else "")
