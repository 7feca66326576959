"""Acknowledgement latency of slash commands and button clicks through the real HTTP server.

`python -m bot serve` runs in a subprocess against the sandbox AWS (its own process, speed 10 so the set-up is
quick) and the Slack stand-in (in this process), which signs every request as Slack does. Set-up, not timed: a
workaround `create orders-pg` through Slack, then `switchover orders-pg` (the workaround, as the deployment was
created), which posts a real approval request. Then 500
requests, 50 in flight at a time, in rotation: `/bluegreen help`, `/bluegreen status orders-pg`,
`/bluegreen plan orders-pg`, and a click on that request's Approve button by the requester (refused: two-person
rule), an outsider (refused: not an approver) or an approver (the first one wins and starts the switchover; later
ones are refused as already decided). Latency is measured by the sender, from sending the request to reading the
whole HTTP answer, so it includes the client's own scheduling delays. 10 warm-up requests are not counted.

    python -m benchmarks.ack_latency [--requests 500] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import (
    APPROVER,
    BOT_TOKEN,
    OPS_CHANNEL,
    OUTSIDER,
    REQUESTER,
    SandboxProcess,
    benchmark_command,
    millis,
    new_signing_secret,
    print_rows,
    run_main,
    serving_bot,
    summarise,
)
from handlers.ids import ApprovalActions
from handlers.messages.approvals import ApprovalButtonValue
from sandbox.slack import CommandResult, Message, SlackStandIn
from sandbox.waiting import async_wait_until
from storage import Store, open_store

NAME = "ack_latency"
DATABASE = "orders-pg"
WARM_UP = 10
TARGET_P99 = 0.100
SETUP_TIMEOUT = 60.0
CLICKERS = (REQUESTER, OUTSIDER, APPROVER)

Send = Callable[[], Awaitable[CommandResult]]


# ------------------------------------------------------------------------------------------ set-up through Slack


async def start_run(slack: SlackStandIn, store: Store, text: str) -> str:
    before = {run.id for run in store.runs.list(limit=500)}
    result = await slack.send_command(user_id=REQUESTER, text=text, channel_id=OPS_CHANNEL)
    if result.status != 200:
        raise RuntimeError(f"/bluegreen {text} answered HTTP {result.status}")

    def started() -> list[str]:
        return [run.id for run in store.runs.list(limit=500) if run.id not in before]

    try:
        return (await async_wait_until(started, SETUP_TIMEOUT, what=f"a run started by /bluegreen {text}"))[0]
    except TimeoutError:
        raise RuntimeError(f"set-up: /bluegreen {text} started no run; the bot answered {result.body[:300]}") from None


def approval_message(slack: SlackStandIn, store: Store, run_id: str) -> Message | None:
    run = store.runs.get(run_id)
    ts = ((run.meta or {}).get("slack") or {}).get("ts") if run else None
    for reply in slack.thread(OPS_CHANNEL, ts)[1:] if ts else []:
        if ApprovalActions.approve.value in json.dumps(reply.blocks):
            return reply
    return None


def approve_value(message: Message) -> str:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == ApprovalActions.approve.value:
                return element["value"]
    raise LookupError("no Approve button on the approval request")


async def pending_approval(slack: SlackStandIn, store: Store) -> Message:
    """A real approval request, pending, with its buttons: create a deployment, then ask for a switchover."""
    created = await start_run(slack, store, f"create {DATABASE} --mode workaround")
    await async_wait_until(
        lambda: (run := store.runs.get(created)) is not None and not run.is_active,
        SETUP_TIMEOUT,
        what="the create run",
    )
    run = store.runs.get(created)
    if run is None or run.status != "succeeded":
        raise RuntimeError(f"set-up: create {created} ended {run.status if run else 'missing'}")
    switchover = await start_run(slack, store, f"switchover {DATABASE}")
    return await async_wait_until(
        lambda: approval_message(slack, store, switchover), SETUP_TIMEOUT, what="the approval request"
    )


# ---------------------------------------------------------------------------------------------------- the load


class CpuMeters:
    """CPU seconds (user + system) used by processes from now on; pid 0 means this process."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._processes = {who: psutil.Process(pid or None) for who, pid in pids.items()}
        self._start = {who: self._cpu(process) for who, process in self._processes.items()}

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def used(self) -> dict[str, float]:
        return {who: round(self._cpu(p) - self._start[who], 3) for who, p in self._processes.items()}


def request_mix(slack: SlackStandIn, approval: Message) -> list[tuple[str, Callable[[], Send]]]:
    """The rotation of request kinds; each entry makes a fresh sender (a click needs the clicker's turn)."""
    clickers = itertools.cycle(CLICKERS)
    value = approve_value(approval)

    def command(text: str) -> Callable[[], Send]:
        return lambda: lambda: slack.send_command(user_id=REQUESTER, text=text, channel_id=OPS_CHANNEL)

    def click() -> Send:
        user = next(clickers)
        return lambda: slack.click(
            user_id=user,
            action_id=ApprovalActions.approve.value,
            value=value,
            channel_id=OPS_CHANNEL,
            message_ts=approval.ts,
            block_id="approval-buttons",
        )

    return [
        ("/bluegreen help", command("help")),
        (f"/bluegreen status {DATABASE}", command(f"status {DATABASE}")),
        (f"/bluegreen plan {DATABASE}", command(f"plan {DATABASE}")),
        ("Approve click", click),
    ]


async def fire(
    mix: list[tuple[str, Callable[[], Send]]], total: int, concurrency: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """`total` requests from `concurrency` workers; latencies and non-200 answers by kind."""
    schedule = [mix[i % len(mix)] for i in range(total)]
    senders = iter([(kind, make()) for kind, make in schedule])
    latencies: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)

    async def worker() -> None:
        for kind, send in senders:  # a shared iterator: each request is taken by exactly one worker
            result = await send()
            latencies[kind].append(result.elapsed)
            if result.status != 200:
                failures[kind] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return dict(latencies), dict(failures)


async def measure(total: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    secret = new_signing_secret()
    db_path = workdir / "bluegreen.db"
    with SandboxProcess(speed=10) as sandbox:
        async with SlackStandIn(signing_secret=secret, bot_token=BOT_TOKEN) as slack:
            env = {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": secret,
                "SLACK_API_URL": slack.base_url,
                "BLUEGREEN_DB": str(db_path),
                "BLUEGREEN_OPERATORS": f"{REQUESTER},{APPROVER}",
                "BLUEGREEN_APPROVERS": f"{APPROVER},U0CAROL",
                "BLUEGREEN_APPROVAL_TTL": "3600",
                "AWS_ENDPOINT_URL": sandbox.endpoint,
            }
            async with serving_bot(env, workdir / "bot.log") as bot:
                slack.app_url = bot.events_url
                store = open_store(str(db_path))
                try:
                    approval = await pending_approval(slack, store)
                    print("  set-up done: approval request pending; warming up", flush=True)
                    mix = request_mix(slack, approval)
                    await fire(mix, WARM_UP, concurrency=1)
                    meters = CpuMeters({"bot": bot.pid, "sandbox": sandbox.pid, "load generator + Slack stand-in": 0})
                    started = time.perf_counter()
                    latencies, failures = await fire(mix, total, concurrency)
                    elapsed = time.perf_counter() - started
                    cpu = meters.used()
                    request_id = ApprovalButtonValue.decode(approve_value(approval)).request_id
                    # Decisions run after the ack, queued behind the load's other work: give them time to land.
                    await async_wait_until(
                        lambda: (found := store.approvals.get(request_id)) is not None and found.status != "pending",
                        30,
                        what="the approver's click to be recorded",
                    )
                    decided = store.approvals.get(request_id)
                    outcome = f"{decided.status} by {decided.decided_by}" if decided else "missing"
                finally:
                    store.close()
    result = figures(latencies, failures, total, concurrency, outcome)
    result["load_seconds"] = round(elapsed, 3)
    result["cpu_seconds_during_load"] = cpu
    return result


def figures(
    latencies: dict[str, list[float]], failures: dict[str, int], total: int, concurrency: int, approval: str
) -> dict[str, Any]:
    everything = [value for values in latencies.values() for value in values]
    commands = [v for kind, values in latencies.items() if kind.startswith("/") for v in values]
    clicks = [v for kind, values in latencies.items() if not kind.startswith("/") for v in values]
    overall = summarise(everything)
    return {
        "requests": total,
        "concurrency": concurrency,
        "seconds": {
            "all": overall,
            "slash_commands": summarise(commands),
            "button_clicks": summarise(clicks),
            "by_kind": {kind: summarise(values) for kind, values in latencies.items()},
        },
        "non_200": failures,
        "approval_request_after_the_clicks": approval,
        "target": {"p99_below": TARGET_P99, "met": overall["p99"] < TARGET_P99 and not failures},
    }


def report(result: dict[str, Any]) -> None:
    def line(stats: dict[str, Any]) -> str:
        if not stats["n"]:
            return "-"
        return f"p50 {millis(stats['p50'])}  p99 {millis(stats['p99'])}  max {millis(stats['max'])}  (n={stats['n']})"

    rows = [(label, line(result["seconds"][key])) for key, label in (
        ("all", "all requests"), ("slash_commands", "slash commands"), ("button_clicks", "button clicks"),
    )]  # fmt: skip
    rows += [(f"  {kind}", line(stats)) for kind, stats in result["seconds"]["by_kind"].items()]
    rows += [
        ("non-200 answers", str(sum(result["non_200"].values()))),
        ("the approval request ended", result["approval_request_after_the_clicks"]),
        (
            "load duration",
            f"{result['load_seconds']:.2f} s ({result['requests'] / result['load_seconds']:.0f} requests/s)",
        ),
        *((f"CPU during load: {who}", f"{used:.2f} s") for who, used in result["cpu_seconds_during_load"].items()),
        ("target: p99 < 100 ms", "met" if result["target"]["met"] else "MISSED"),
    ]
    print_rows(f"acknowledgement latency, {result['requests']} requests at {result['concurrency']} concurrent", rows)


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=500, help="timed requests (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (default %(default)s)")


main = benchmark_command(
    NAME, __doc__, flags, lambda args, workdir: measure(args.requests, args.concurrency, workdir), report
)


if __name__ == "__main__":
    run_main(main)
