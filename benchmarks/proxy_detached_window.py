"""How long `orders-proxy` has no target during a workaround switchover, split into AWS's time and the bot's.

For each of N switchovers (default 7) on the sandbox, at its `python -m bot sandbox` default durations (switchover
3 s, registering 2 s): create a deployment with the bot (not timed; provisioning is shortened to save time), start a
workaround switchover, approve it as a second person through the engine, and read the sandbox timeline:

    window     = DeregisterDBProxyTargets call  ->  the target's transition to AVAILABLE
    AWS time   = deregister call -> DEREGISTERED  +  SWITCHOVER_IN_PROGRESS -> SWITCHOVER_COMPLETED
                 + RegisterDBProxyTargets call -> AVAILABLE
    overhead   = window - AWS time   (the bot's reaction time between AWS's phases)

The engine's own figure (`run.summary["windows"]`, which ends when the bot *sees* AVAILABLE) is reported next to it.
The baseline, in the same run and on the same sandbox durations, is the same runbook with boto3 polling every 30 s
as boto3's waiters do (real seconds, so it runs only `--baseline-runs` times, default 2).

    python -m benchmarks.proxy_detached_window [--runs 7] [--baseline-runs 2] [--baseline-poll 30]
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REQUESTER,
    SandboxProcess,
    approve_when_asked,
    benchmark_command,
    engine_on_sandbox,
    print_rows,
    run_main,
    seconds,
    switchover_flags,
)
from bot.planning.requests import RunRequest
from bot.workflow.engine import Engine
from sandbox.aws import Durations
from sandbox.aws.client import SandboxClient
from sandbox.clients import boto3_client

NAME = "proxy_detached_window"
DATABASE = "orders-pg"
PROXY = "orders-proxy"
TARGET_GROUP = "default"
# Only the untimed create is shortened; the switchover (3 s) and registering (2 s) keep the sandbox defaults.
UNTIMED_DURATIONS = {"provisioning_task": 0.2}
TARGET_OVERHEAD = 0.5
RUN_TIMEOUT = 300.0
WAITER_MAX_ATTEMPTS = 60  # boto3's RDS waiters: 30 s delay, 60 attempts


@dataclass(frozen=True)
class DetachedWindow:
    """One proxy's detached window as the sandbox recorded it; all figures in seconds."""

    proxy: str
    window: float
    deregister_call: float
    switchover: float
    registering: float

    @property
    def aws_seconds(self) -> float:
        return self.deregister_call + self.switchover + self.registering

    @property
    def overhead(self) -> float:
        return self.window - self.aws_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()},
            "aws_seconds": round(self.aws_seconds, 4),
            "overhead_seconds": round(self.overhead, 4),
        }


# ------------------------------------------------------------------------------------------ reading the timeline


def _first(entries: list[dict[str, Any]], after_seq: int, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    for entry in entries:
        if entry["seq"] > after_seq and match(entry):
            return entry
    raise LookupError("the sandbox timeline lacks an expected entry")


def _names(params: dict[str, Any], key: str) -> list[str]:
    value = params.get(key) or []
    return [value] if isinstance(value, str) else list(value)


def _targets_call(action: str, database: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: (
        e["kind"] == "call"
        and e["action"] == action
        and e.get("code") is None
        and database in _names(e["params"], "DBInstanceIdentifiers")
    )


def _transition(resource: str, state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["kind"] == "transition" and e["resource"] == resource and e["state"] == state


def detached_windows(timeline: list[dict[str, Any]], database: str = DATABASE) -> dict[str, DetachedWindow]:
    """Every window in `timeline` that opened with a deregistration of `database`, keyed by proxy."""
    windows: dict[str, DetachedWindow] = {}
    for deregister in filter(_targets_call("DeregisterDBProxyTargets", database), timeline):
        proxy = deregister["params"]["DBProxyName"]
        resource = f"proxy-target:{proxy}/{deregister['params'].get('TargetGroupName', TARGET_GROUP)}/{database}"
        gone = _first(timeline, deregister["seq"], _transition(resource, "DEREGISTERED"))
        started = _first(
            timeline, deregister["seq"], lambda e: e["kind"] == "transition" and e["state"] == "SWITCHOVER_IN_PROGRESS"
        )
        completed = _first(timeline, started["seq"], _transition(started["resource"], "SWITCHOVER_COMPLETED"))
        available = _first(timeline, completed["seq"], _transition(resource, "AVAILABLE"))
        registers = [
            e
            for e in timeline
            if completed["seq"] < e["seq"] < available["seq"]
            and _targets_call("RegisterDBProxyTargets", database)(e)
            and e["params"]["DBProxyName"] == proxy
        ]
        windows[proxy] = DetachedWindow(
            proxy=proxy,
            window=available["t"] - deregister["t"],
            deregister_call=gone["t"] - deregister["t"],
            switchover=completed["t"] - started["t"],
            registering=available["t"] - registers[-1]["t"],
        )
    return windows


# --------------------------------------------------------------------------------------------- the two drivers


async def prepare_deployment(engine: Engine, control: SandboxClient) -> None:
    """Fresh sandbox fleet, then a blue/green deployment of DATABASE created by the bot (the workaround)."""
    control.reset()
    control.config(durations=UNTIMED_DURATIONS)
    run = await engine.start(RunRequest(kind="create", database=DATABASE, requester=REQUESTER, mode="workaround"))
    final = await engine.wait(run.id, RUN_TIMEOUT)
    if final.status != "succeeded":
        raise RuntimeError(f"create {run.id} ended {final.status}: {final.error}")
    control.config(durations={"provisioning_task": Durations().provisioning_task})


def last_seq(control: SandboxClient) -> int:
    entries = control.timeline()
    return entries[-1]["seq"] if entries else 0


async def bot_switchover(engine: Engine) -> dict[str, Any]:
    """A workaround switchover, approved by a second person through the engine; returns the run's summary."""
    request = RunRequest(kind="switchover", database=DATABASE, requester=REQUESTER, mode="workaround")
    run = await engine.start(request)
    await approve_when_asked(engine, run.id)
    final = await engine.wait(run.id, RUN_TIMEOUT)
    if final.status != "succeeded":
        raise RuntimeError(f"switchover {run.id} ended {final.status}: {final.error}")
    return final.summary


def _poll_like_a_waiter(check: Callable[[], bool], interval: float, what: str) -> None:
    """boto3's waiter loop: call, and if not there yet sleep `interval` and call again."""
    for _ in range(WAITER_MAX_ATTEMPTS):
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"baseline: {what} not reached after {WAITER_MAX_ATTEMPTS} polls")


def baseline_switchover(endpoint: str, poll_interval: float) -> None:
    """The runbook's steps 5-7 as a plain boto3 script polling every `poll_interval` seconds."""
    rds = boto3_client(endpoint)
    deployment = next(
        d
        for d in rds.describe_blue_green_deployments()["BlueGreenDeployments"]
        if d["Source"].endswith(f":db:{DATABASE}") and d["Status"] == "AVAILABLE"
    )
    deployment_id = deployment["BlueGreenDeploymentIdentifier"]
    target = {"DBProxyName": PROXY, "TargetGroupName": TARGET_GROUP, "DBInstanceIdentifiers": [DATABASE]}
    rds.deregister_db_proxy_targets(**target)
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id, SwitchoverTimeout=300)

    def switched() -> bool:
        found = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=deployment_id)
        status = found["BlueGreenDeployments"][0]["Status"]
        if status == "SWITCHOVER_FAILED":
            raise RuntimeError("baseline: the switchover failed")
        return status == "SWITCHOVER_COMPLETED"

    _poll_like_a_waiter(switched, poll_interval, "SWITCHOVER_COMPLETED")
    rds.register_db_proxy_targets(**target)

    def available() -> bool:
        targets = rds.describe_db_proxy_targets(DBProxyName=PROXY, TargetGroupName=TARGET_GROUP)["Targets"]
        mine = [t for t in targets if t.get("RdsResourceId") == DATABASE]
        return bool(mine) and all(t["TargetHealth"]["State"] == "AVAILABLE" for t in mine)

    _poll_like_a_waiter(available, poll_interval, "target AVAILABLE")


# ------------------------------------------------------------------------------------------------- the benchmark


async def measure(runs: int, baseline_runs: int, baseline_poll: float, workdir: Path) -> dict[str, Any]:
    bot_rows: list[dict[str, Any]] = []
    baseline_rows: list[dict[str, Any]] = []
    with SandboxProcess() as sandbox:
        control = sandbox.control
        async with engine_on_sandbox(sandbox.endpoint, workdir / "bluegreen.db") as engine:
            for index in range(runs):
                await prepare_deployment(engine, control)
                since = last_seq(control)
                summary = await bot_switchover(engine)
                window = detached_windows(control.timeline(since))[PROXY]
                engine_window = next(iter(summary.get("windows", {}).values()), {})
                bot_rows.append(
                    {
                        **window.as_dict(),
                        "engine_seconds": engine_window.get("seconds"),
                        "engine_overhead_seconds": engine_window.get("overhead_seconds"),
                    }
                )
                print(f"  bot switchover {index + 1}/{runs}: window {window.window:.3f} s, "
                      f"overhead {window.overhead:.3f} s", flush=True)  # fmt: skip
            for index in range(baseline_runs):
                await prepare_deployment(engine, control)
                since = last_seq(control)
                await asyncio.to_thread(baseline_switchover, sandbox.endpoint, baseline_poll)
                window = detached_windows(control.timeline(since))[PROXY]
                baseline_rows.append(window.as_dict())
                print(f"  baseline switchover {index + 1}/{baseline_runs}: window {window.window:.3f} s", flush=True)
        durations = control.state()["durations"]
    return figures(bot_rows, baseline_rows, baseline_poll, durations)


def figures(
    bot_rows: list[dict[str, Any]], baseline_rows: list[dict[str, Any]], poll: float, durations: dict[str, float]
) -> dict[str, Any]:
    overheads = [row["overhead_seconds"] for row in bot_rows]
    bot_windows = [row["window"] for row in bot_rows]
    engine_overheads = [
        row["engine_overhead_seconds"] for row in bot_rows if row["engine_overhead_seconds"] is not None
    ]
    result: dict[str, Any] = {
        "sandbox_durations": {name: durations[name] for name in ("switchover", "registering")},
        "bot": {
            "switchovers": bot_rows,
            "window_median": round(statistics.median(bot_windows), 4),
            "aws_median": round(statistics.median(row["aws_seconds"] for row in bot_rows), 4),
            "overhead_median": round(statistics.median(overheads), 4),
            "overhead_max": round(max(overheads), 4),
            "engine_overhead_median": round(statistics.median(engine_overheads), 4) if engine_overheads else None,
        },
        "target": {"overhead_median_below": TARGET_OVERHEAD, "met": statistics.median(overheads) < TARGET_OVERHEAD},
    }
    if baseline_rows:
        baseline_windows = [row["window"] for row in baseline_rows]
        result["baseline"] = {
            "poll_interval": poll,
            "switchovers": baseline_rows,
            "window_median": round(statistics.median(baseline_windows), 4),
            "overhead_median": round(statistics.median(row["overhead_seconds"] for row in baseline_rows), 4),
        }
        result["ratio_baseline_to_bot_window"] = round(
            statistics.median(baseline_windows) / statistics.median(bot_windows), 2
        )
    return result


def report(result: dict[str, Any]) -> None:
    bot = result["bot"]
    rows = [
        ("bot switchovers", str(len(bot["switchovers"]))),
        ("bot window (median)", seconds(bot["window_median"])),
        ("AWS time (median)", seconds(bot["aws_median"])),
        ("bot overhead (median / max)", f"{seconds(bot['overhead_median'])} / {seconds(bot['overhead_max'])}"),
        ("engine-reported overhead (median)", seconds(bot["engine_overhead_median"])),
        ("target: median overhead < 0.5 s", "met" if result["target"]["met"] else "MISSED"),
    ]
    if "baseline" in result:
        baseline = result["baseline"]
        rows += [
            (f"baseline window ({baseline['poll_interval']:g} s polls, median)", seconds(baseline["window_median"])),
            ("baseline / bot window", f"{result['ratio_baseline_to_bot_window']:.1f}x"),
        ]
    print_rows("proxy-detached window (workaround switchover, orders-proxy)", rows)


main = benchmark_command(
    NAME,
    __doc__,
    switchover_flags(runs=7, baseline_runs=2),
    lambda args, workdir: measure(args.runs, args.baseline_runs, args.baseline_poll, workdir),
    report,
    announce=lambda args: f"proxy_detached_window: {args.runs} bot and {args.baseline_runs} baseline switchovers",
)


if __name__ == "__main__":
    run_main(main)
