"""Proxy discovery in an account of 500 RDS Proxies: AWS calls per run and DescribeDBProxyTargets calls, before the
shared proxy index (every look-up describes every proxy) and after it, with no run missing a proxy.

The sandbox AWS (its own process) gets 50 RDS for MySQL instances, each behind its own proxy, and 450 more proxies:
`bench-pd-01` sits behind three (its own, one more registered before the runs, and a third registered while the
first scan is in flight), the rest of the 500 have no target. What is measured is the look-up `Engine.start` makes
for a `create` run (`Engine.observe` with `fresh_after` = the moment the run was requested), 50 of them concurrent;
the runs are not driven further, since discovery is all of this issue's cost. 48 look-ups are requested at once;
then the third proxy of bench-pd-01 is registered, and 2 more look-ups for bench-pd-01 are requested: they must
find all three proxies. Every other look-up must find its own proxy (and bench-pd-01's first two).

The "before" phase switches the index off (`AwsGateway.use_proxy_index = False`) on `--before-runs` look-ups of the
same fleet (each costs a full describe of every proxy). AWS calls come from the sandbox timeline. The describe
budget is set to `--describe-rate` (default 1000/s) so that the sandbox, not the budget, sets the pace; with the
production default of 10/s one scan of 500 proxies takes about 100 s.

    python -m benchmarks.proxy_discovery [--before-runs 3] [--describe-rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REQUESTER,
    SandboxProcess,
    bench_engine,
    bench_settings,
    benchmark_command,
    print_rows,
    run_main,
    seconds,
)
from bot.planning.requests import RunRequest
from sandbox.clients import boto3_client
from sandbox.waiting import async_wait_until
from storage import open_store

NAME = "proxy_discovery"
PROXIES = 500
RUNS = 50
LATE_RUNS = 2
MULTI = "bench-pd-01"
SCAN_ACTIONS = ("DescribeDBProxies", "DescribeDBProxyTargetGroups", "DescribeDBProxyTargets")
TARGET_CALLS_PER_RUN = 40
TARGET_TARGETS_CALLS = 3 * PROXIES
PROXY_ROLE_ARN = "arn:aws:iam::123456789012:role/rds-proxy-secrets-reader"


def database_names() -> list[str]:
    return [f"bench-pd-{index:02d}" for index in range(1, RUNS + 1)]


def create_fleet(endpoint: str) -> dict[str, str]:
    """The databases and 500 proxies; returns the late proxy's name -> its database (registered later)."""
    rds = boto3_client(endpoint)
    secret_arn = boto3_client(endpoint, "secretsmanager").create_secret(
        Name="rds-proxy/bench-pd", SecretString='{"username": "app_admin", "password": "sandbox"}'
    )["ARN"]
    subnets = [s["SubnetId"] for s in boto3_client(endpoint, "ec2").describe_subnets()["Subnets"]][:2]
    already = len(rds.describe_db_proxies()["DBProxies"])  # the sandbox's own fleet counts towards the 500

    def proxy(name: str) -> None:
        rds.create_db_proxy(
            DBProxyName=name,
            EngineFamily="MYSQL",
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret_arn, "IAMAuth": "DISABLED"}],
            RoleArn=PROXY_ROLE_ARN,
            VpcSubnetIds=subnets,
        )

    for database in database_names():
        rds.create_db_instance(
            DBInstanceIdentifier=database,
            Engine="mysql",
            EngineVersion="8.0.36",
            DBInstanceClass="db.r6g.large",
            MasterUsername="app_admin",
            MasterUserPassword="sandbox-not-a-secret",
            AllocatedStorage=100,
        )
        proxy(f"{database}-proxy")
        rds.register_db_proxy_targets(DBProxyName=f"{database}-proxy", DBInstanceIdentifiers=[database])
    proxy(f"{MULTI}-second-proxy")
    rds.register_db_proxy_targets(DBProxyName=f"{MULTI}-second-proxy", DBInstanceIdentifiers=[MULTI])
    proxy(f"{MULTI}-late-proxy")
    for index in range(PROXIES - already - RUNS - 2):
        proxy(f"bench-pd-idle-{index:03d}-proxy")
    return {f"{MULTI}-late-proxy": MULTI}


def expected(database: str, late_registered: bool) -> set[str]:
    if database != MULTI:
        return {f"{database}-proxy"}
    return {f"{MULTI}-proxy", f"{MULTI}-second-proxy"} | ({f"{MULTI}-late-proxy"} if late_registered else set())


def calls_since(control: Any, seq: int) -> tuple[Counter[str], int]:
    entries = control.timeline(seq)
    found = Counter(e["action"] for e in entries if e["kind"] == "call")
    return found, max((e["seq"] for e in entries), default=seq)


def _targets_read(control: Any, seq: int, proxies: set[str]) -> bool:
    return any(
        e["kind"] == "call" and e["action"] == "DescribeDBProxyTargets" and e["params"].get("DBProxyName") in proxies
        for e in control.timeline(seq)
    )


def last_seq(control: Any) -> int:
    return calls_since(control, 0)[1]


def run_request(database: str) -> RunRequest:
    return RunRequest(kind="create", database=database, requester=REQUESTER, mode="workaround")  # type: ignore[arg-type]


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # AWS's proxy quota is adjustable through Service Quotas; moto's (100) is raised the same way for this account.
    os.environ["MOTO_RDS_PROXY_LIMIT"] = str(PROXIES + 10)
    with SandboxProcess() as sandbox:
        control = sandbox.control
        started = time.monotonic()
        late = create_fleet(sandbox.endpoint)
        fleet_seconds = time.monotonic() - started
        store = open_store(str(workdir / "bluegreen.db"))
        engine = bench_engine(sandbox.endpoint, bench_settings(workdir / "bluegreen.db"), store)
        gateway = engine.gateways.get(engine.settings.environment())
        gateway.budget_describes(args.describe_rate)
        try:
            # ----- before: no index, every look-up describes every proxy
            gateway.use_proxy_index = False
            seq = last_seq(control)
            started = time.monotonic()
            names = database_names()[: args.before_runs]
            before_seen = await asyncio.gather(*(engine.observe(run_request(d)) for d in names))
            before_seconds = time.monotonic() - started
            before_calls, _ = calls_since(control, seq)
            before_missed = [o.database.identifier for o in before_seen if not _complete(o, False)]

            # ----- after: the shared index
            gateway.use_proxy_index = True
            index = gateway.proxy_index
            seq = last_seq(control)
            started = time.monotonic()
            early = [
                asyncio.ensure_future(engine.observe(run_request(d), fresh_after=index.clock()))
                for d in database_names()[: RUNS - LATE_RUNS]
            ]
            # Register the late proxy once the first scan has read its (then empty) target group, so the race is
            # real: that scan cannot have seen it.
            late_read = await async_wait_until(
                lambda: asyncio.to_thread(_targets_read, control, seq, set(late)),
                60,
                interval=0.05,
                what="the first scan's read of the late proxy",
            )
            rds = boto3_client(sandbox.endpoint)
            for proxy, database in late.items():
                await asyncio.to_thread(
                    rds.register_db_proxy_targets, DBProxyName=proxy, DBInstanceIdentifiers=[database]
                )
            late_runs = [
                asyncio.ensure_future(engine.observe(run_request(MULTI), fresh_after=index.clock()))
                for _ in range(LATE_RUNS)
            ]
            early_seen = await asyncio.gather(*early)
            late_seen = await asyncio.gather(*late_runs)
            after_seconds = time.monotonic() - started
            after_calls, _ = calls_since(control, seq)
            # The early look-up of bench-pd-01 shares the first scan: without the late proxy, the registration
            # really landed while that scan was in flight (informational: a scan may also read it in time).
            race_real = late_read and not any(r.proxy in late for r in early_seen[0].registrations)
            missed = [o.database.identifier for o in early_seen if not _complete(o, False)]
            missed += [f"{o.database.identifier} (late)" for o in late_seen if not _complete(o, True)]
            scans = index.scans
        finally:
            await engine.aclose()
            await engine.gateways.aclose()
            store.close()

    after_calls["RegisterDBProxyTargets"] -= len(late)  # the benchmark's own registration
    return _figures(
        args,
        fleet_seconds=fleet_seconds,
        before=(before_calls, len(names), before_seconds, before_missed),
        after=(after_calls, RUNS, after_seconds, missed),
        scans=scans,
        race_real=race_real,
    )


def _complete(observed: Any, late_registered: bool) -> bool:
    found = {r.proxy for r in observed.registrations}
    return expected(observed.database.identifier, late_registered) <= found


def _figures(
    args: argparse.Namespace, *, fleet_seconds: float, before: tuple, after: tuple, scans: int, race_real: bool
) -> dict[str, Any]:
    def phase(calls: Counter[str], runs: int, elapsed: float, missed: list[str], shared: bool) -> dict[str, Any]:
        total = sum(calls.values())
        scan_calls = sum(calls[a] for a in SCAN_ACTIONS) if shared else 0
        return {
            "runs": runs,
            "seconds": round(elapsed, 3),
            "aws_calls_total": total,
            "scan_calls": scan_calls,
            "aws_calls_per_run_excluding_scans": round((total - scan_calls) / runs, 2),
            "aws_calls_per_run_including_scans": round(total / runs, 2),
            "describe_db_proxy_targets": calls["DescribeDBProxyTargets"],
            "describe_db_proxies": calls["DescribeDBProxies"],
            "missed": missed,
            "by_action": dict(sorted(calls.items())),
        }

    before_phase = phase(*before, shared=False)
    after_phase = phase(*after, shared=True)
    after_phase["scans"] = scans
    met = (
        after_phase["aws_calls_per_run_excluding_scans"] <= TARGET_CALLS_PER_RUN
        and after_phase["describe_db_proxy_targets"] <= TARGET_TARGETS_CALLS
        and not after_phase["missed"]
    )
    return {
        "proxies": PROXIES,
        "what": "concurrent create look-ups (Engine.observe with fresh_after, as Engine.start does); runs not driven",
        "describe_rate": args.describe_rate,
        "fleet_seconds": round(fleet_seconds, 2),
        "late_registration_raced_the_first_scan": race_real,
        "before": before_phase,
        "after": after_phase,
        "target": {
            "aws_calls_per_run_excluding_scans": TARGET_CALLS_PER_RUN,
            "describe_db_proxy_targets_total": TARGET_TARGETS_CALLS,
            "missed": 0,
            "met": met,
        },
    }


def report(result: dict[str, Any]) -> None:
    before, after = result["before"], result["after"]
    print_rows(
        f"proxy discovery, {result['proxies']} proxies ({result['what']})",
        [
            ("before: look-ups", f"{before['runs']} in {seconds(before['seconds'])}"),
            ("before: AWS calls per run", f"{before['aws_calls_per_run_including_scans']:g} (no shared scan)"),
            ("before: DescribeDBProxyTargets per run", f"{before['describe_db_proxy_targets'] / before['runs']:g}"),
            ("after: look-ups", f"{after['runs']} in {seconds(after['seconds'])}, {after['scans']} shared scans"),
            ("after: AWS calls per run, excl. scans", f"{after['aws_calls_per_run_excluding_scans']:g}"),
            ("after: AWS calls per run, incl. scans", f"{after['aws_calls_per_run_including_scans']:g}"),
            ("after: DescribeDBProxyTargets total", f"{after['describe_db_proxy_targets']} (target <= 1500)"),
            ("after: runs that missed a proxy", f"{len(after['missed'])} {after['missed'] or ''}".rstrip()),
            ("late registration raced the first scan", str(result["late_registration_raced_the_first_scan"])),
            ("target met", str(result["target"]["met"])),
        ],
    )


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--before-runs", type=int, default=3, help="look-ups without the index (default 3)")
    parser.add_argument("--describe-rate", type=float, default=1000.0, help="describe budget, calls/s (default 1000)")


main = benchmark_command(NAME, __doc__, flags, measure, report)

if __name__ == "__main__":
    run_main(main)
