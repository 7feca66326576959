"""Stopping for a restart (SIGTERM) without leaving a proxy detached.

Kubernetes and Heroku send SIGTERM before every restart or deploy. The first one stops new work; then:

- a run with no proxy detached stops at once, at its current wait: its durable state lets the next process carry
  it on;
- a run with a proxy detached (an open window in `bot.workflow.windows`) first completes its critical section,
  within the grace period (BLUEGREEN_SHUTDOWN_GRACE). Where the mutation the proxy was detached for has not been sent
  (the switchover, the creation), the database is registered again and the detach step reset, so the next process
  detaches again right before that mutation (an approval stays valid while the plan's fingerprint is unchanged).
  Where AWS has started it, the run awaits it and registers the target: steps that give a proxy its target back
  always run to their end.

A second SIGTERM, or the grace running out, stops every run where it is. Each run's thread (or console) is told
what was done through a `Notice`, and the audit log records it (`run:shutdown`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from bot.aws.models import Registration
from bot.planning.plan import StepSpec
from bot.workflow.events import Notice, StepChanged
from bot.workflow.windows import WindowLedger
from storage import StepRecord, Store

if TYPE_CHECKING:
    from bot.aws.gateway import AwsGateway
    from bot.config import Environment
    from bot.workflow.runner import Runner

log = logging.getLogger(__name__)

SERVE_HINT = "the run resumes when the bot is back"
CLI_HINT = "`python -m bot resume` (or the bot, if one is running) carries it on"
# Steps that give a proxy its target back: they always run to their end, shutting down or not.
RESTORING_STEPS = frozenset({"reattach", "verify_native_targets", "ensure_registered"})
# Steps whose deregistration may be in flight while they run.
DETACHING_STEPS = frozenset({"detach"})
TEARDOWN_STEP = "teardown_rehearsal"
REPORTS_BOUND = 5.0  # seconds a stopping run waits for its last step reports, so they precede the notice


@dataclass
class Shutdown:
    """One process's shutdown, requested by the SIGTERM handler and obeyed by the runner at every step boundary."""

    requested_at: float | None = None
    hint: str = SERVE_HINT
    told: set[str] = field(default_factory=set)  # runs whose thread has been told how they were left

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def request(self, hint: str | None = None) -> None:
        """Synchronous and allocation-light: a signal handler calls it, so the very next step boundary sees it."""
        if hint:
            self.hint = hint
        if self.requested_at is None:
            self.requested_at = time.time()


async def drain(runner: Runner, tasks: Mapping[str, asyncio.Task[Any]], grace: float) -> dict[str, list[str]]:
    """Stop this process's runs (`tasks`, by run id) for a restart: a run in its critical section completes it
    within `grace` seconds of the request, every other run stops at once. Returns the runs left with a proxy
    detached (the grace ran out, or `stop_now`), with those proxies; empty for a clean handover."""
    shutdown = runner.shutdown
    shutdown.request()
    assert shutdown.requested_at is not None
    store = runner.store
    running = {run_id: task for run_id, task in tasks.items() if not task.done()}
    store.audit.append(
        actor="bluegreen-bot",
        action="bot:shutdown",
        detail={"by": runner.owner, "grace": grace, "runs": sorted(running)},
        now=shutdown.requested_at,
    )
    finishing = {}
    for run_id, task in running.items():
        if in_critical_section(store, run_id) or _only_ending_left(store, run_id):
            finishing[run_id] = task
        else:
            tell(runner, run_id, stopped_text(runner, run_id))
            task.cancel()
    if finishing:
        await asyncio.wait(finishing.values(), timeout=max(0.0, shutdown.requested_at + grace - time.time()))
    for run_id, task in finishing.items():
        if not task.done():
            abandon(runner, run_id, f"the grace period ({grace:g} s) ran out")
            task.cancel()
    await asyncio.gather(*running.values(), return_exceptions=True)
    await runner.reports_posted(REPORTS_BOUND)
    left = {run_id: sorted(WindowLedger(store, run_id).open_windows()) for run_id in running}
    return {run_id: labels for run_id, labels in left.items() if labels}


def stop_now(runner: Runner, tasks: Mapping[str, asyncio.Task[Any]]) -> None:
    """A second SIGTERM: every run stops where it is; its recorded state lets the next process finish it."""
    runner.shutdown.request()
    for run_id, task in tasks.items():
        if not task.done():
            abandon(runner, run_id, "a second SIGTERM arrived")
            task.cancel()


def _only_ending_left(store: Store, run_id: str) -> bool:
    """Every step is finished: the run is recording its end, which takes no time and no AWS call."""
    return not any(s.status in ("waiting", "running") for s in store.steps.list(run_id))


def in_critical_section(store: Store, run_id: str) -> bool:
    """Whether stopping the run now could leave a proxy without its target: a window is open, or a detach step is
    under way (its deregistration may be in flight)."""
    if _windows_to_close(store, run_id):
        return True
    return any(s.status == "running" and s.name in DETACHING_STEPS for s in store.steps.list(run_id))


def _windows_to_close(store: Store, run_id: str) -> dict[str, dict]:
    """The run's open windows that a restart must not leave open. A rehearsal that has reached its teardown has none:
    the proxy without a target is the rehearsal's own, and the teardown deletes it."""
    run = store.runs.get(run_id)
    if run is not None and run.kind == "rehearse":
        current = next((s for s in store.steps.list(run_id) if s.status in ("waiting", "running")), None)
        if current is not None and current.name == TEARDOWN_STEP:
            return {}
    return WindowLedger(store, run_id).open_windows()


async def stop_here(runner: Runner, run_id: str, step: StepRecord, gateway: AwsGateway, env: Environment) -> bool:
    """Asked by the runner before each step once a shutdown is requested. False: run `step` first (it gives a proxy
    its target back, or awaits a switchover AWS has started). True: stop driving the run here, its state recorded
    for the next process (after registering the database again where the mutation it was detached for is unsent)."""
    open_windows = _windows_to_close(runner.store, run_id)
    if not open_windows:
        await runner.reports_posted(REPORTS_BOUND)
        tell(runner, run_id, stopped_text(runner, run_id))
        return True
    if step.name in RESTORING_STEPS or (step.name == "switchover" and step.state.get("requested_at")):
        return False
    await _register_again(runner, run_id, step, list(open_windows), gateway, env)
    return True


async def _register_again(
    runner: Runner, run_id: str, before: StepRecord, labels: list[str], gateway: AwsGateway, env: Environment
) -> None:
    from bot.workflow.runner import add_steps  # the runner imports this module

    store = runner.store
    run = store.runs.get(run_id)
    assert run is not None
    spec = StepSpec(
        "reattach", f"Before stopping: register {run.database} with {', '.join(labels)} again", {"only_open": True}
    )
    redo = _steps_to_redo(store.steps.list(run_id), before)
    # Reset first, in one transaction with the new step: if the process dies during the registration, the next one
    # still deregisters (or finds it deregistered, keeping the window) right before the unsent mutation.
    with store.atomic():
        for record in redo:
            store.steps.reset(run_id, record.idx, detail="redone after the bot registered the target again at shutdown")
        (registering,) = add_steps(store, run_id, [spec])
    for record in redo:
        runner.publish(run_id, lambda s, idx=record.idx: StepChanged(s, idx))
    try:
        await runner._execute(run_id, registering, gateway, env)
    except Exception as exc:
        log.exception("run %s: registering %s again at shutdown failed", run_id, run.database)
        store.steps.finish(run_id, registering.idx, "failed", detail=str(exc))
        runner.publish(run_id, lambda s: StepChanged(s, registering.idx))
        tell(
            runner,
            run_id,
            f"could not register {run.database} with {_join(labels)} again ({exc}); the next process carries the run"
            f" on from its recorded state; {runner.shutdown.hint}.",
            broadcast=True,
        )
        return
    await runner.reports_posted(REPORTS_BOUND)
    approval = " (the approval stays valid while AWS is unchanged)" if run.meta.get("approved_fingerprint") else ""
    tell(
        runner,
        run_id,
        f"registered {run.database} with {_join(labels)} again before “{before.title}”; {runner.shutdown.hint},"
        f" deregistering it again right before that step{approval}.",
    )


def _steps_to_redo(steps: Sequence[StepRecord], before: StepRecord) -> list[StepRecord]:
    """What the next process redoes once the target is registered again: the deregistration, right before the
    mutation it is for, and the maintenance-window gate before it (the window may have closed meanwhile)."""
    detaches = [s for s in steps if s.name == "detach" and s.idx <= before.idx]
    if not detaches:
        return []
    detach = detaches[-1]
    gate = next((s for s in steps if s.idx == detach.idx - 1 and s.name == "maintenance_window"), None)
    return [s for s in (gate, detach) if s is not None and s.status != "waiting"]


def stopped_text(runner: Runner, run_id: str) -> str:
    """What the thread is told about a run stopped with no proxy detached."""
    run = runner.store.runs.get(run_id)
    assert run is not None
    steps = runner.store.steps.list(run_id)
    since = runner.shutdown.requested_at or 0.0
    finished = [
        s.title
        for s in steps
        if s.status == "done" and s.name in RESTORING_STEPS | {"switchover"} and (s.ended_at or 0.0) >= since
    ]
    if finished:
        proxies = _labels(run.meta)
        target = f", so {_join(proxies)} {'has' if len(proxies) == 1 else 'have'} {run.database} as target again"
        return (
            f"finished {_join([f'“{t}”' for t in finished])} first{target if proxies else ''}; {runner.shutdown.hint}."
        )
    current = next((s for s in steps if s.status in ("waiting", "running")), None)
    where = f" at “{current.title}”" if current else ""
    return f"the run stops{where} with no proxy detached; {runner.shutdown.hint}."


def abandon(runner: Runner, run_id: str, reason: str) -> None:
    """Tell the thread that the run is stopped before its critical section completed (grace over, second SIGTERM)."""
    open_windows = WindowLedger(runner.store, run_id).open_windows()
    if not open_windows:
        tell(runner, run_id, stopped_text(runner, run_id))
        return
    run = runner.store.runs.get(run_id)
    assert run is not None
    tell(
        runner,
        run_id,
        f"{reason} while {_join(list(open_windows))} had no target; the run stays recorded and the next process to"
        f" start carries it on, giving the proxy its target back ({run.database}).",
        broadcast=True,
    )


def tell(runner: Runner, run_id: str, text: str, *, broadcast: bool = False) -> None:
    """One notice per run and shutdown, in the thread and the audit log."""
    if run_id in runner.shutdown.told:
        return
    runner.shutdown.told.add(run_id)
    runner.store.audit.append(
        actor="bluegreen-bot", action="run:shutdown", run_id=run_id, detail={"note": text, "by": runner.owner}
    )
    runner.publish(run_id, lambda s: Notice(s, f"Shutting down: {text}", broadcast))


def _labels(meta: dict[str, Any]) -> list[str]:
    return [Registration.from_dict(r).label for r in meta.get("registrations", [])]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ----- the signal ---------------------------------------------------------------------------------------------------


class Stoppable(Protocol):
    def request_shutdown(self, hint: str | None = None) -> None: ...
    async def shutdown(self, grace: float) -> dict[str, list[str]]: ...
    def stop_now(self) -> None: ...


class SigtermHandler:
    """SIGTERM for a process that drives runs (the CLI, `serve`). The first signal requests the shutdown inside the
    handler itself, so that the very next step boundary sees it, and starts `engine.shutdown(grace)` on the loop;
    `outcome` then holds its result. A second signal stops every run where it is (`engine.stop_now`)."""

    def __init__(
        self, engine: Stoppable, grace: float, *, hint: str, signals: Sequence[int] = (signal.SIGTERM,)
    ) -> None:
        self._engine = engine
        self._grace = grace
        self._hint = hint
        self._signals = tuple(signals)
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received = 0
        self.received_at: float | None = None  # the first signal, time.time()
        self.started = asyncio.Event()
        self.outcome: asyncio.Future[dict[str, list[str]]] | None = None

    def install(self) -> None:
        """Call from the running loop (main thread); `uninstall` restores what was there."""
        self._loop = asyncio.get_running_loop()
        for signum in self._signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes of whatever the loop was doing: set a flag, schedule the rest.
        assert self._loop is not None
        self.received += 1
        if self.received == 1:
            self.received_at = time.time()
            self._engine.request_shutdown(self._hint)
            self._loop.call_soon_threadsafe(self._begin)
        else:
            self._loop.call_soon_threadsafe(self._engine.stop_now)

    def _begin(self) -> None:
        log.warning("SIGTERM: stopping new work; runs with a proxy detached finish first (grace %.0f s)", self._grace)
        self.outcome = asyncio.ensure_future(self._engine.shutdown(self._grace))
        self.started.set()
