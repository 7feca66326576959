"""50 concurrent runs on 50 databases in one bot process: CPU time, peak RSS, Slack and AWS calls per run, and
whether any Slack method went over its published rate limit in any 60 s window.

The sandbox AWS (its own process, default durations) gets 50 extra RDS for PostgreSQL instances, each behind its
own RDS Proxy, created through boto3. The bot is a separate process (`--drive`, started by this script) holding one
engine with the real Slack thread sink, which posts to the Slack stand-in in this process; it starts 50 workaround
`create` runs at once and waits for all of them and for every Slack message to be sent. It reports its own CPU time
(`resource.getrusage`) and peak RSS (`VmHWM`); Slack calls come from the stand-in's record, AWS calls from the sandbox
timeline. Runs are requested from `--channels` channels (default 1: one ops channel for all 50 runs).

Published limits checked (per method, per workspace unless noted; docs.slack.dev, "Rate limits"):
chat.postMessage about 1 per second per channel (short bursts tolerated; checked as at most 60 in any 60 s window
per channel), chat.update Tier 3 (50 per minute), chat.postEphemeral / views.open / views.publish Tier 4
(100 per minute), usergroups.users.list Tier 2 (20 per minute). Other methods are listed as not checked.

    python -m benchmarks.memory_50_runs [--runs 50] [--channels 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
from slack_sdk.web.async_client import AsyncWebClient

from benchmarks.common import (
    BOT_TOKEN,
    REPO_ROOT,
    REQUESTER,
    SandboxProcess,
    bench_engine,
    bench_settings,
    benchmark_command,
    clean_environment,
    new_signing_secret,
    print_rows,
    run_main,
    seconds,
)
from bot.planning.requests import RunRequest
from handlers.pacing import PacedWebClient
from handlers.thread.sink import SlackThreadSink
from sandbox.clients import boto3_client
from sandbox.waiting import wait_until
from storage import open_store

if TYPE_CHECKING:
    from sandbox.slack import RecordedCall

NAME = "memory_50_runs"
TARGET_PEAK_RSS_MB = 200
RUN_TIMEOUT = 600.0
PROXY_ROLE_ARN = "arn:aws:iam::123456789012:role/rds-proxy-secrets-reader"
WINDOW = 60.0


@dataclass(frozen=True)
class RateLimit:
    per_minute: int
    per_channel: bool = False


RATE_LIMITS = {
    "chat.postMessage": RateLimit(60, per_channel=True),
    "chat.update": RateLimit(50),
    "chat.postEphemeral": RateLimit(100),
    "views.open": RateLimit(100),
    "views.publish": RateLimit(100),
    "usergroups.users.list": RateLimit(20),
}


def database_names(count: int) -> list[str]:
    return [f"bench-db-{index:02d}" for index in range(1, count + 1)]


def proxy_name(database: str) -> str:
    return database.replace("-db-", "-proxy-")


# ------------------------------------------------------------------------------------- the fleet, through boto3


def create_fleet(endpoint: str, databases: list[str]) -> None:
    """One RDS for PostgreSQL instance behind its own RDS Proxy per name; waits until every target is AVAILABLE."""
    rds = boto3_client(endpoint)
    secret_arn = boto3_client(endpoint, "secretsmanager").create_secret(
        Name="rds-proxy/bench", SecretString=json.dumps({"username": "app_admin", "password": "sandbox"})
    )["ARN"]
    subnets = [s["SubnetId"] for s in boto3_client(endpoint, "ec2").describe_subnets()["Subnets"]][:2]
    for database in databases:
        rds.create_db_instance(
            DBInstanceIdentifier=database,
            Engine="postgres",
            EngineVersion="15.7",
            DBInstanceClass="db.r6g.large",
            MasterUsername="app_admin",
            MasterUserPassword="sandbox-not-a-secret",
            AllocatedStorage=100,
        )
        rds.create_db_proxy(
            DBProxyName=proxy_name(database),
            EngineFamily="POSTGRESQL",
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret_arn, "IAMAuth": "DISABLED"}],
            RoleArn=PROXY_ROLE_ARN,
            VpcSubnetIds=subnets,
            RequireTLS=True,
        )
        rds.register_db_proxy_targets(
            DBProxyName=proxy_name(database), TargetGroupName="default", DBInstanceIdentifiers=[database]
        )

    def all_available() -> bool:
        for database in databases:
            targets = rds.describe_db_proxy_targets(DBProxyName=proxy_name(database))["Targets"]
            if not targets or any(t["TargetHealth"]["State"] != "AVAILABLE" for t in targets):
                return False
        return True

    wait_until(all_available, 60, interval=0.5, what="every new proxy target AVAILABLE")


# ------------------------------------------------------------------------------- the bot process (`--drive`)


def cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss, which survives exec and so starts at the parent's peak, it is this program's own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def drive(endpoint: str, slack_url: str, workdir: Path, databases: list[str], channels: int) -> dict[str, Any]:
    cpu_before, rss_before = cpu_seconds(), peak_rss_mb()
    started = time.monotonic()
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack_url, timeout=10)
    store = open_store(str(workdir / "bluegreen.db"))
    sink = SlackThreadSink(PacedWebClient(client), store)  # as handlers.app.bot_runtime builds it
    engine = bench_engine(endpoint, bench_settings(workdir / "bluegreen.db"), store, [sink])
    try:
        requests = [
            RunRequest(
                kind="create",
                database=database,
                requester=REQUESTER,
                mode="workaround",
                channel=f"C0OPS{index % channels:02d}",
            )
            for index, database in enumerate(databases)
        ]
        runs = await asyncio.gather(*(engine.start(request) for request in requests))
        finals = await asyncio.gather(*(engine.wait(run.id, RUN_TIMEOUT) for run in runs))
        await sink.drain()
    finally:
        await engine.aclose()
        await sink.aclose()
        await engine.gateways.aclose()
        store.close()
    cpu_after, rss_peak = cpu_seconds(), peak_rss_mb()
    return {
        "wall_seconds": round(time.monotonic() - started, 3),
        "cpu_seconds": round(cpu_after - cpu_before, 3),
        "rss_mb_before_runs": round(rss_before, 1),
        "peak_rss_mb": round(rss_peak, 1),
        "statuses": dict(Counter(final.status for final in finals)),
        "sandbox_code_loaded": "moto" in sys.modules,  # must be False: the bot process carries no sandbox
    }


def run_bot_process(endpoint: str, slack_url: str, workdir: Path, databases: list[str], channels: int) -> dict:
    command = [
        sys.executable, "-m", "benchmarks.memory_50_runs", "--drive",
        "--endpoint", endpoint, "--slack-url", slack_url, "--workdir", str(workdir),
        "--runs", str(len(databases)), "--channels", str(channels),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=clean_environment(), capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    if done.returncode != 0:
        (workdir / "bot.log").write_text(done.stderr)
        raise RuntimeError(f"the bot process failed ({done.returncode}); last lines:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ rate limits


def busiest_window(times: list[float]) -> int:
    """The most calls inside any WINDOW-second interval."""
    ordered = sorted(times)
    return max((bisect_right(ordered, t + WINDOW - 1e-9) - i for i, t in enumerate(ordered)), default=0)


def rate_limit_report(calls: list[RecordedCall]) -> dict[str, Any]:
    by_key: dict[tuple[str, str], list[float]] = defaultdict(list)
    unchecked: Counter[str] = Counter()
    for call in calls:
        limit = RATE_LIMITS.get(call.method)
        if limit is None:
            unchecked[call.method] += 1
            continue
        scope = str(call.params.get("channel", "?")) if limit.per_channel else "workspace"
        by_key[(call.method, scope)].append(call.t)
    checked = []
    for (method, scope), times in sorted(by_key.items()):
        busiest = busiest_window(times)
        limit = RATE_LIMITS[method].per_minute
        checked.append(
            {"method": method, "scope": scope, "busiest_60s": busiest, "limit": limit, "over": busiest > limit}
        )
    return {
        "checked": checked,
        "violations": [c for c in checked if c["over"]],
        "not_checked": dict(unchecked),
    }


# ------------------------------------------------------------------------------------------------- the benchmark


def measure(runs: int, channels: int, workdir: Path) -> dict[str, Any]:
    from sandbox.slack import SlackStandInThread  # not at the top: the `--drive` process must not load moto

    databases = database_names(runs)
    standin = SlackStandInThread(signing_secret=new_signing_secret(), bot_token=BOT_TOKEN)
    with SandboxProcess() as sandbox, standin as slack:
        print(f"  creating {runs} databases and proxies in the sandbox", flush=True)
        create_fleet(sandbox.endpoint, databases)
        since = sandbox.control.timeline()[-1]["seq"]
        print(f"  starting {runs} concurrent workaround create runs in one bot process", flush=True)
        sandbox_cpu = psutil.Process(sandbox.pid).cpu_times()
        bot = run_bot_process(sandbox.endpoint, slack.base_url, workdir, databases, channels)
        sandbox_cpu_after = psutil.Process(sandbox.pid).cpu_times()
        aws_calls = [e for e in sandbox.control.timeline(since) if e["kind"] == "call"]
        slack_calls = slack.calls()
    slack_by_method = Counter(call.method for call in slack_calls)
    limits = rate_limit_report(slack_calls)
    return {
        "runs": runs,
        "channels": channels,
        "bot": bot,
        "sandbox_cpu_seconds": round(
            sandbox_cpu_after.user + sandbox_cpu_after.system - sandbox_cpu.user - sandbox_cpu.system, 3
        ),
        "slack_calls_per_run": round(len(slack_calls) / runs, 2),
        "slack_calls_by_method": dict(slack_by_method),
        "slack_non_ok": sum(not call.ok for call in slack_calls),
        "aws_calls_per_run": round(len(aws_calls) / runs, 2),
        "aws_calls_by_action": dict(Counter(e["action"] for e in aws_calls)),
        "rate_limits": limits,
        "target": {
            "peak_rss_mb_below": TARGET_PEAK_RSS_MB,
            "met": bot["peak_rss_mb"] < TARGET_PEAK_RSS_MB and not limits["violations"],
        },
    }


def report(result: dict[str, Any]) -> None:
    bot = result["bot"]
    violations = result["rate_limits"]["violations"]
    rows = [
        ("runs / channels", f"{result['runs']} / {result['channels']}"),
        ("run outcomes", ", ".join(f"{k} {v}" for k, v in bot["statuses"].items())),
        ("wall time (all runs)", seconds(bot["wall_seconds"], 1)),
        ("CPU time of the bot", seconds(bot["cpu_seconds"], 2)),
        ("CPU time of the sandbox AWS", seconds(result["sandbox_cpu_seconds"], 2)),
        ("peak RSS (before runs)", f"{bot['peak_rss_mb']:.1f} MB ({bot['rss_mb_before_runs']:.1f} MB)"),
        ("Slack calls per run", f"{result['slack_calls_per_run']:g}"),
        ("AWS calls per run", f"{result['aws_calls_per_run']:g}"),
        ("rate-limit violations", str(len(violations))),
        *((f"  {v['method']} ({v['scope']})", f"{v['busiest_60s']} in 60 s, limit {v['limit']}") for v in violations),
        ("target: < 200 MB, 0 violations", "met" if result["target"]["met"] else "MISSED"),
    ]
    print_rows(f"{result['runs']} concurrent runs in one process", rows)


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=50, help="concurrent runs, one database each (default 50)")
    parser.add_argument("--channels", type=int, default=1, help="channels the runs are requested from (default 1)")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)  # the bot process itself
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--slack-url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)


async def drive_instead(args: argparse.Namespace) -> int | None:
    """With `--drive`, this process is the bot process: it drives the runs and prints its figures as JSON."""
    if not args.drive:
        return None
    result = await drive(args.endpoint, args.slack_url, args.workdir, database_names(args.runs), args.channels)
    print(json.dumps(result))
    return 0


main = benchmark_command(
    NAME,
    __doc__,
    flags,
    lambda args, workdir: asyncio.to_thread(measure, args.runs, args.channels, workdir),
    report,
    announce=lambda args: f"memory_50_runs: {args.runs} concurrent runs",
    divert=drive_instead,
)


if __name__ == "__main__":
    run_main(main)
