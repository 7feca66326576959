"""Proxy discovery in an account of 500 RDS Proxies, with 50 concurrent runs driven to completion: AWS calls per run
excluding the shared proxy scans, DescribeDBProxyTargets calls, scans, and runs that missed a proxy; before the shared
proxy index (every look-up describes every proxy) and after it, in the same invocation.

The sandbox AWS (its own process, short durations) gets 50 RDS for MySQL instances, `bench-pd-01` to `-50`, each
behind its own proxy, `--before-runs` more for the before figures (`bench-pb-NN`, likewise), and idle proxies up to
500 in all. `bench-pd-01` sits behind three proxies: its own, a second registered before the runs, and a third
registered while the runs are in flight. One engine in this process starts workaround `create` runs through
`Engine.start` and its runner drives them to completion (no approval: `create` has none):

- before: the index off (`AwsGateway.use_proxy_index = False`), `--before-runs` runs at once on the bench-pb databases;
- after: the index on; the runs of bench-pd-02..50 are requested at once; once the first scan has read the third
  proxy's (then empty) target group, the benchmark registers bench-pd-01 with it and requests bench-pd-01's run,
  which that scan, in flight, cannot serve.

AWS calls come from the sandbox timeline. The scans' calls are counted apart: every DescribeDBProxyTargetGroups (runs
never read target groups), as many DescribeDBProxyTargets per proxy as its target groups were read, and one listing
of DescribeDBProxies pages per scan. Every other call is a run's when its parameters name that run's resources (the
database, its proxies, its green, its deployment's name or id), else it is unclaimed (Filters, CloudWatch and events
parameters are not in the timeline; engine versions, parameter groups, the proxy listing the connectivity probe
reads): the per-run figures add the unclaimed calls shared evenly. A run missed a proxy when the proxies it recorded
(`run.meta["registrations"]`) lack one that registers its database, read with boto3 after the runs.

The sandbox answers a listing of 500 proxies in one DescribeDBProxies page where AWS pages at 100 (MaxRecords'
default and maximum): figures "at AWS paging" count every listing at AWS's page count, and the per-run target (the
mean, excluding the scans) is judged on them. The provisioning wait polls on `bot/workflow/polling.py`'s SLOW policy;
with the short durations here it makes few polls, so its cost for a 20-minute provisioning is estimated from the policy.

The describe budget is `--describe-rate` (default 10/s, the production default `aws_describe_rate`) for the after
runs, so the scans and the runs share it as in production: a scan of 500 proxies takes about 100 s, and the whole
benchmark about 10 minutes (about 3 at 1000/s, with nearly the same call counts). The before runs use 1000/s: the
budget spaces calls without changing their number, and at 10/s each before look-up takes about 100 s.

    python -m benchmarks.proxy_discovery [--before-runs 3] [--describe-rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from statistics import median
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
from bot.workflow import polling
from bot.workflow.engine import Engine
from bot.workflow.watch import WATCH_INTERVAL
from sandbox.clients import boto3_client
from sandbox.waiting import async_wait_until, wait_until
from storage import RunRecord, open_store

NAME = "proxy_discovery"
PROXIES = 500
RUNS = 50
MULTI = "bench-pd-01"
SECOND_PROXY, LATE_PROXY = f"{MULTI}-second-proxy", f"{MULTI}-late-proxy"
PRODUCTION_DESCRIBE_RATE = 10.0  # bot/config.py's default aws_describe_rate
BEFORE_DESCRIBE_RATE = 1000.0
AWS_PROXIES_PAGE = 100  # DescribeDBProxies' MaxRecords default (and maximum)
DURATIONS = {"provisioning_task": 1.0, "registering": 1.0, "deleting": 1.0}  # simulated seconds, speed 1
RUN_TIMEOUT = 900.0
PROVISIONING_AT_AWS = 20 * 60.0  # an assumed real provisioning time, for the SLOW polling estimate only
RUN_RESOURCE = re.compile(r"bench-p[bd]-\d{2}")
TARGET_CALLS_PER_RUN = 40
TARGET_TARGETS_CALLS = 3 * PROXIES
PROXY_ROLE_ARN = "arn:aws:iam::123456789012:role/rds-proxy-secrets-reader"


def after_databases() -> list[str]:
    return [f"bench-pd-{index:02d}" for index in range(1, RUNS + 1)]


def before_databases(count: int) -> list[str]:
    return [f"bench-pb-{index:02d}" for index in range(1, count + 1)]


def own_proxy(database: str) -> str:
    return f"{database}-proxy"


# ------------------------------------------------------------------------------------- the fleet, through boto3


def create_fleet(endpoint: str, databases: list[str]) -> None:
    """Each database behind its own proxy, MULTI behind a second one, the late proxy without a target yet, and idle
    proxies up to PROXIES; waits until every target is AVAILABLE."""
    rds = boto3_client(endpoint)
    secret_arn = boto3_client(endpoint, "secretsmanager").create_secret(
        Name="rds-proxy/bench-pd", SecretString='{"username": "app_admin", "password": "sandbox"}'
    )["ARN"]
    subnets = [s["SubnetId"] for s in boto3_client(endpoint, "ec2").describe_subnets()["Subnets"]][:2]
    already = sum(map(len, list_proxies(rds)))  # the sandbox's own fleet counts towards the 500
    idle = PROXIES - already - len(databases) - 2
    if idle < 0:
        raise ValueError(f"{len(databases)} databases need more than {PROXIES} proxies; lower --before-runs")

    def proxy(name: str) -> None:
        rds.create_db_proxy(
            DBProxyName=name,
            EngineFamily="MYSQL",
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": secret_arn, "IAMAuth": "DISABLED"}],
            RoleArn=PROXY_ROLE_ARN,
            VpcSubnetIds=subnets,
        )

    for database in databases:
        rds.create_db_instance(
            DBInstanceIdentifier=database,
            Engine="mysql",
            EngineVersion="8.0.36",
            DBInstanceClass="db.r6g.large",
            MasterUsername="app_admin",
            MasterUserPassword="sandbox-not-a-secret",
            AllocatedStorage=100,
        )
        proxy(own_proxy(database))
        rds.register_db_proxy_targets(DBProxyName=own_proxy(database), DBInstanceIdentifiers=[database])
    proxy(SECOND_PROXY)
    rds.register_db_proxy_targets(DBProxyName=SECOND_PROXY, DBInstanceIdentifiers=[MULTI])
    proxy(LATE_PROXY)
    for index in range(idle):
        proxy(f"bench-pd-idle-{index:03d}-proxy")

    def all_available() -> bool:
        for name in [*map(own_proxy, databases), SECOND_PROXY]:
            targets = rds.describe_db_proxy_targets(DBProxyName=name)["Targets"]
            if not targets or any(t["TargetHealth"]["State"] != "AVAILABLE" for t in targets):
                return False
        return True

    wait_until(all_available, 120, interval=0.5, what="every proxy target of the fleet AVAILABLE")


def list_proxies(rds: Any) -> list[list[str]]:
    """The account's proxy names, page by page, read as the gateway reads them (no MaxRecords)."""
    return [
        [p["DBProxyName"] for p in page["DBProxies"]] for page in rds.get_paginator("describe_db_proxies").paginate()
    ]


def registered_behind(endpoint: str) -> dict[str, set[str]]:
    """Database -> every proxy that registers it now (every proxy, every target group), read with boto3."""
    rds = boto3_client(endpoint)
    behind: dict[str, set[str]] = defaultdict(set)
    for proxy in (name for page in list_proxies(rds) for name in page):
        groups = rds.describe_db_proxy_target_groups(DBProxyName=proxy)["TargetGroups"]
        for group in groups:
            for page in rds.get_paginator("describe_db_proxy_targets").paginate(
                DBProxyName=proxy, TargetGroupName=group["TargetGroupName"]
            ):
                for target in page["Targets"]:
                    if target.get("Type") == "RDS_INSTANCE" and target.get("RdsResourceId"):
                        behind[target["RdsResourceId"]].add(proxy)
    return behind


# ------------------------------------------------------------------------------------------------- driving runs


def run_request(database: str) -> RunRequest:
    return RunRequest(kind="create", database=database, requester=REQUESTER, mode="workaround")  # type: ignore[arg-type]


async def start_all(engine: Engine, databases: list[str]) -> list[RunRecord]:
    started = await asyncio.gather(*(engine.start(run_request(d)) for d in databases), return_exceptions=True)
    refused = [f"{d}: {r}" for d, r in zip(databases, started, strict=True) if isinstance(r, BaseException)]
    if refused:
        raise RuntimeError("Engine.start refused runs:\n  " + "\n  ".join(refused))
    return [r for r in started if isinstance(r, RunRecord)]


async def finish_all(engine: Engine, runs: list[RunRecord]) -> list[RunRecord]:
    return list(await asyncio.gather(*(engine.wait(run.id, RUN_TIMEOUT) for run in runs)))


class TimelineWatch:
    """Reads the sandbox timeline from where it last stopped, so that waiting on it stays cheap as it grows."""

    def __init__(self, control: Any, since: int) -> None:
        self._control = control
        self.seq = since

    def saw_targets_read(self, proxy: str) -> bool:
        entries = self._control.timeline(self.seq)
        if entries:
            self.seq = entries[-1]["seq"]
        return any(
            e["kind"] == "call" and e["action"] == "DescribeDBProxyTargets" and e["params"].get("DBProxyName") == proxy
            for e in entries
        )


def last_seq(control: Any) -> int:
    entries = control.timeline()
    return entries[-1]["seq"] if entries else 0


def entries_between(control: Any, since: int, until: int) -> list[dict[str, Any]]:
    """The timeline's calls and transitions in (since, until]."""
    return [e for e in control.timeline(since) if e["seq"] <= until]


def without_late_registration(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Less the benchmark's own registration with the late proxy: the first one (the run's come after its request)."""
    own = next(
        e["seq"]
        for e in entries
        if e["kind"] == "call"
        and e["action"] == "RegisterDBProxyTargets"
        and e["params"].get("DBProxyName") == LATE_PROXY
    )
    return [e for e in entries if e["seq"] != own]


async def before_phase(engine: Engine, control: Any, databases: list[str]) -> dict[str, Any]:
    gateway = engine.gateways.get(engine.settings.environment())
    gateway.use_proxy_index = False
    gateway.budget_describes(BEFORE_DESCRIBE_RATE)
    since = last_seq(control)
    started = time.monotonic()
    finals = await finish_all(engine, await start_all(engine, databases))
    return {
        "since": since,
        "until": last_seq(control),
        "seconds": time.monotonic() - started,
        "finals": finals,
    }


async def after_phase(engine: Engine, control: Any, endpoint: str, rate: float) -> dict[str, Any]:
    gateway = engine.gateways.get(engine.settings.environment())
    gateway.use_proxy_index = True
    gateway.budget_describes(rate)
    index = gateway.proxy_index
    since = last_seq(control)
    scans_before = index.scans
    started = time.monotonic()
    early = asyncio.ensure_future(start_all(engine, after_databases()[1:]))
    # Register the late proxy once the first scan has read its (then empty) target group, so that this scan, still
    # in flight, cannot have seen it; then request the run of the database behind it.
    watch = TimelineWatch(control, since)
    await async_wait_until(
        lambda: asyncio.to_thread(watch.saw_targets_read, LATE_PROXY),
        600,
        interval=0.2,
        what="the first scan's read of the late proxy's target group",
    )
    rds = boto3_client(endpoint)
    await asyncio.to_thread(rds.register_db_proxy_targets, DBProxyName=LATE_PROXY, DBInstanceIdentifiers=[MULTI])
    registered_seq = await asyncio.to_thread(last_seq, control)
    scans_at_late_request = index.scans - scans_before
    late = asyncio.ensure_future(start_all(engine, [MULTI]))
    runs = [*(await late), *(await early)]
    finals = await finish_all(engine, runs)
    return {
        "since": since,
        "until": last_seq(control),
        "seconds": time.monotonic() - started,
        "finals": finals,
        "scans": index.scans - scans_before,
        "scans_at_late_request": scans_at_late_request,
        "late_registered_seq": registered_seq,
    }


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # AWS's proxy quota is adjustable through Service Quotas; moto's (100) is raised the same way for this account.
    os.environ["MOTO_RDS_PROXY_LIMIT"] = str(PROXIES + 10)
    with SandboxProcess() as sandbox:
        control = sandbox.control
        control.config(durations=DURATIONS)
        started = time.monotonic()
        print(f"  creating {RUNS + args.before_runs} databases and {PROXIES} proxies in the sandbox", flush=True)
        await asyncio.to_thread(
            create_fleet, sandbox.endpoint, [*after_databases(), *before_databases(args.before_runs)]
        )
        listing = await asyncio.to_thread(list_proxies, boto3_client(sandbox.endpoint))
        pages, proxies = len(listing), sum(map(len, listing))
        fleet_seconds = time.monotonic() - started
        store = open_store(str(workdir / "bluegreen.db"))
        engine = bench_engine(sandbox.endpoint, bench_settings(workdir / "bluegreen.db"), store)
        try:
            print(f"  before: {args.before_runs} runs, index off, budget {BEFORE_DESCRIBE_RATE:g}/s", flush=True)
            before = await before_phase(engine, control, before_databases(args.before_runs))
            print(f"  after: {RUNS} runs, index on, budget {args.describe_rate:g}/s", flush=True)
            after = await after_phase(engine, control, sandbox.endpoint, args.describe_rate)
            finals = {run.id: store.runs.get(run.id) for phase in (before, after) for run in phase["finals"]}
        finally:
            await engine.aclose()
            await engine.gateways.aclose()
            store.close()
        for phase in (before, after):
            phase["entries"] = await asyncio.to_thread(entries_between, control, phase["since"], phase["until"])
            phase["finals"] = [finals[run.id] for run in phase["finals"]]
        after["entries"] = without_late_registration(after["entries"])
        behind = await asyncio.to_thread(registered_behind, sandbox.endpoint)
    return figures(
        args, fleet_seconds=fleet_seconds, pages=pages, proxies=proxies, before=before, after=after, behind=behind
    )


# ------------------------------------------------------------------------------------------------ attribution


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def claimant(entry: dict[str, Any], by_deployment: dict[str, str]) -> str | None:
    """The one database whose run this call is about, by the resource names in its parameters; None if none or
    several."""
    names: set[str] = set()
    for value in _strings(entry["params"]):
        if value in by_deployment:
            names.add(by_deployment[value])
        names.update(RUN_RESOURCE.findall(value))
    return names.pop() if len(names) == 1 else None


def split_scans(calls: list[dict[str, Any]], listings: int, pages: int) -> tuple[Counter[str], list[dict[str, Any]]]:
    """The scans' calls (by action) and the rest. A scan reads every proxy's target groups (the only reader of
    target groups) and each group's targets, and lists the proxies once (`pages` pages)."""
    groups_read = Counter(e["params"].get("DBProxyName") for e in calls if e["action"] == "DescribeDBProxyTargetGroups")
    targets_left = dict(groups_read)  # one group per proxy in this fleet: one targets read per group read
    pages_left = listings * pages
    scan: Counter[str] = Counter()
    rest = []
    for entry in calls:
        action, proxy = entry["action"], entry["params"].get("DBProxyName")
        if action == "DescribeDBProxyTargetGroups":
            scan[action] += 1
        elif action == "DescribeDBProxyTargets" and targets_left.get(proxy, 0) > 0:
            targets_left[proxy] -= 1
            scan[action] += 1
        elif action == "DescribeDBProxies" and proxy is None and pages_left > 0:
            pages_left -= 1
            scan[action] += 1
        else:
            rest.append(entry)
    return scan, rest


def attribute(
    calls: list[dict[str, Any]], runs: list[RunRecord]
) -> tuple[dict[str, Counter[str]], Counter[str], Counter[str]]:
    """Per database, the calls its run can claim (by action); the unclaimed calls; the calls claimed by a database
    that had no run (by action)."""
    databases = {run.database for run in runs}
    by_deployment = {run.meta["deployment_id"]: run.database for run in runs if run.meta.get("deployment_id")}
    claimed: dict[str, Counter[str]] = {database: Counter() for database in databases}
    unclaimed: Counter[str] = Counter()
    strays: Counter[str] = Counter()
    for entry in calls:
        owner = claimant(entry, by_deployment)
        if owner in claimed:
            claimed[owner][entry["action"]] += 1
        elif owner is None:
            unclaimed[entry["action"]] += 1
        else:
            strays[entry["action"]] += 1
    return claimed, unclaimed, strays


def missed_proxies(runs: list[RunRecord], behind: dict[str, set[str]]) -> dict[str, list[str]]:
    """Database -> the proxies registering it that its run did not record."""
    missed = {}
    for run in runs:
        recorded = {r["proxy"] for r in run.meta.get("registrations", [])}
        lacking = sorted(behind.get(run.database, set()) - recorded)
        if lacking:
            missed[run.database] = lacking
    return missed


def slow_estimate(seconds_: float) -> dict[str, float]:
    """The SLOW wait's probes over a provisioning of `seconds_`, and the event reads among them (each probe reads the
    deployment; a probe `WATCH_INTERVAL` after the last event read also reads events: two DescribeEvents for an
    instance, the deployment's and the instances')."""
    elapsed, polls, reads, last_read = 0.0, 1, 1, 0.0
    for interval in polling.SLOW.intervals():
        if elapsed + interval > seconds_:
            break
        elapsed += interval
        polls += 1
        if elapsed - last_read >= WATCH_INTERVAL:
            reads, last_read = reads + 1, elapsed
    return {"seconds": seconds_, "polls": polls, "event_reads": reads, "calls": polls + 2 * reads}


# ------------------------------------------------------------------------------------------------------ figures


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": round(median(values), 2), "max": round(max(values), 2), "min": round(min(values), 2)}


def _about_proxy(entry: dict[str, Any], proxy: str) -> bool:
    if entry["kind"] == "call":
        return entry["params"].get("DBProxyName") == proxy
    return str(entry.get("resource", "")).startswith(f"proxy-target:{proxy}/")


def window_polls(entries: list[dict[str, Any]], runs: list[RunRecord]) -> list[int]:
    """Per run and proxy it registered again: its DescribeDBProxyTargets reads of that proxy from the registration
    to the first read after the target turned AVAILABLE (the 0.2 s polling of the detached window)."""
    counts = []
    for run in runs:
        for proxy in {r["proxy"] for r in run.meta.get("registrations", [])}:
            of_proxy = [e for e in entries if _about_proxy(e, proxy)]
            registered = [
                e["seq"]
                for e in of_proxy
                if e["kind"] == "call"
                and e["action"] == "RegisterDBProxyTargets"
                and run.database in set(_strings(e["params"]))
            ]
            if not registered:
                continue
            available = next(
                (
                    e["seq"]
                    for e in of_proxy
                    if e["kind"] == "transition"
                    and e["seq"] > registered[-1]
                    and e["resource"].endswith(f"/{run.database}")
                    and e["state"] == "AVAILABLE"
                ),
                None,
            )
            reads = [
                e["seq"]
                for e in of_proxy
                if e["kind"] == "call" and e["action"] == "DescribeDBProxyTargets" and e["seq"] > registered[-1]
            ]
            if available is not None:
                counts.append(sum(seq < available for seq in reads) + any(seq > available for seq in reads))
    return counts


def phase_figures(
    phase: dict[str, Any], listings: int, pages: int, aws_pages: int, behind: dict[str, set[str]]
) -> dict[str, Any]:
    entries, runs = phase["entries"], phase["finals"]
    calls = [e for e in entries if e["kind"] == "call"]
    scan, rest = split_scans(calls, listings, pages)
    claimed, unclaimed, strays = attribute(rest, runs)
    n = len(runs)
    share = sum(unclaimed.values()) / n
    per_run = {database: sum(c.values()) for database, c in sorted(claimed.items())}
    heaviest = max(per_run, key=lambda database: per_run[database])
    by_action: Counter[str] = Counter(unclaimed)
    for counts in claimed.values():
        by_action.update(counts)
    # AWS answers a listing of the account's proxies in pages of 100 (MaxRecords' default); the sandbox in `pages`.
    proxies_pages = sum(e["action"] == "DescribeDBProxies" for e in calls)
    paging_extra = (proxies_pages - scan["DescribeDBProxies"]) / pages * (aws_pages - pages)
    scan_paging_extra = scan["DescribeDBProxies"] / pages * (aws_pages - pages)
    targets = sum(e["action"] == "DescribeDBProxyTargets" for e in calls)
    polls = window_polls(entries, runs)
    return {
        "runs": n,
        "seconds": round(phase["seconds"], 1),
        "statuses": dict(Counter(run.status for run in runs)),
        "aws_calls_total": len(calls),
        "scans": listings,
        "scan_calls": dict(scan),
        "aws_calls_per_run_excluding_scans": {
            "mean": round(len(rest) / n, 2),
            **_stats([v + share for v in per_run.values()]),
            "max_run": heaviest,
            "max_run_proxies": len(behind.get(heaviest, ())),
            "mean_at_aws_paging": round((len(rest) + paging_extra) / n, 2),
        },
        "aws_calls_per_run_including_scans": round(len(calls) / n, 2),
        "aws_calls_per_run_including_scans_at_aws_paging": round(
            (len(calls) + paging_extra + scan_paging_extra) / n, 2
        ),
        "per_run_by_action_mean": {a: round(v / n, 2) for a, v in by_action.most_common()},
        "claimed_per_run": _stats(list(per_run.values())),
        "claimed_per_run_by_database": per_run,
        "unclaimed_total": sum(unclaimed.values()),
        "unclaimed_per_run": round(share, 2),
        "unclaimed_by_action": dict(unclaimed.most_common()),
        "claimed_by_a_database_without_run": dict(strays),
        "describe_db_proxy_targets": {
            "total": targets,
            "scans": scan["DescribeDBProxyTargets"],
            "window_polling": sum(polls),
            "other_run_reads": targets - scan["DescribeDBProxyTargets"] - sum(polls),
        },
        "window_polls_per_registration": _stats([float(p) for p in polls]) if polls else {},
        "describe_db_proxies_pages": {
            "total": proxies_pages,
            "scans": scan["DescribeDBProxies"],
            "other_listings": proxies_pages - scan["DescribeDBProxies"],
            "total_at_aws_paging": round(proxies_pages + paging_extra + scan_paging_extra),
        },
        "deployment_reads_by_id_per_run": _stats([c["DescribeBlueGreenDeployments"] for c in claimed.values()]),
        "describe_events_per_run": round(unclaimed["DescribeEvents"] / n, 2),
        "missed": missed_proxies(runs, behind),
        "by_action": dict(Counter(e["action"] for e in calls).most_common()),
    }


def figures(
    args: argparse.Namespace,
    *,
    fleet_seconds: float,
    pages: int,
    proxies: int,
    before: dict[str, Any],
    after: dict[str, Any],
    behind: dict[str, set[str]],
) -> dict[str, Any]:
    aws_pages = math.ceil(proxies / AWS_PROXIES_PAGE)
    before_figures = phase_figures(before, len(before["finals"]), pages, aws_pages, behind)  # a listing per look-up
    after_figures = phase_figures(after, after["scans"], pages, aws_pages, behind)
    late_run = next(run for run in after["finals"] if run.database == MULTI)
    # The first scan read every idle proxy before any other read of it: the last of those first reads is its end.
    first_reads: dict[str, int] = {}
    for entry in after["entries"]:
        proxy = entry.get("params", {}).get("DBProxyName", "")
        if entry["kind"] == "call" and entry["action"] == "DescribeDBProxyTargets" and "-idle-" in proxy:
            first_reads.setdefault(proxy, entry["seq"])
    per_run = after_figures["aws_calls_per_run_excluding_scans"]
    slow_calls = after_figures["deployment_reads_by_id_per_run"]["median"] + after_figures["describe_events_per_run"]
    targets = after_figures["describe_db_proxy_targets"]["total"]
    met = (
        per_run["mean_at_aws_paging"] <= TARGET_CALLS_PER_RUN
        and targets <= TARGET_TARGETS_CALLS
        and not after_figures["missed"]
        and after_figures["statuses"] == {"succeeded": RUNS}
    )
    return {
        "proxies": proxies,
        "what": "workaround create runs through Engine.start and the runner, driven to completion",
        "describe_rate": args.describe_rate,
        "describe_rate_why": (
            "the production default (aws_describe_rate): scans and runs share the budget as in production"
            if args.describe_rate == PRODUCTION_DESCRIBE_RATE
            else f"not the production default ({PRODUCTION_DESCRIBE_RATE:g}/s): scans are faster than in production;"
            " the call counts are what is measured"
        ),
        "before_describe_rate": BEFORE_DESCRIBE_RATE,
        "before_describe_rate_why": "the budget spaces calls without changing their number; at 10/s each before"
        " look-up of 500 proxies would take about 100 s",
        "sandbox_durations": DURATIONS,
        "fleet_seconds": round(fleet_seconds, 1),
        "describe_db_proxies_pages_per_listing": {"sandbox": pages, "aws": aws_pages},
        "multi_proxy_database": {
            "database": MULTI,
            "behind": sorted(behind.get(MULTI, set())),
            "recorded": sorted(r["proxy"] for r in late_run.meta.get("registrations", [])),
            "late_proxy": LATE_PROXY,
            "registered_while_first_scan_in_flight": max(first_reads.values(), default=0)
            > after["late_registered_seq"],
            "scans_started_when_requested": after["scans_at_late_request"],
        },
        "before": before_figures,
        "after": after_figures,
        "ratio_before_to_after_per_run": round(
            before_figures["aws_calls_per_run_including_scans_at_aws_paging"] / per_run["mean_at_aws_paging"], 1
        ),
        "slow_polling": {
            "measured_calls_per_run": round(slow_calls, 1),
            "measured_share_of_per_run": round(slow_calls / per_run["mean"], 2),
            "at_aws_provisioning_estimate": slow_estimate(PROVISIONING_AT_AWS),
        },
        "target": {
            "aws_calls_per_run_excluding_scans_mean_at_aws_paging": TARGET_CALLS_PER_RUN,
            "describe_db_proxy_targets_total": TARGET_TARGETS_CALLS,
            "missed": 0,
            "met": met,
        },
    }


def report(result: dict[str, Any]) -> None:
    before, after, multi = result["before"], result["after"], result["multi_proxy_database"]
    per_run = after["aws_calls_per_run_excluding_scans"]
    targets = after["describe_db_proxy_targets"]
    slow = result["slow_polling"]
    estimate = slow["at_aws_provisioning_estimate"]
    pages = result["describe_db_proxies_pages_per_listing"]
    top = ", ".join(f"{a} {v:g}" for a, v in list(after["per_run_by_action_mean"].items())[:6])
    print_rows(
        f"proxy discovery, {result['proxies']} proxies ({result['what']})",
        [
            ("describe budget, after runs", f"{result['describe_rate']:g}/s, {result['describe_rate_why']}"),
            (
                "describe budget, before runs",
                f"{result['before_describe_rate']:g}/s: {result['before_describe_rate_why']}",
            ),
            (
                "sandbox durations (simulated s)",
                ", ".join(f"{k} {v:g}" for k, v in result["sandbox_durations"].items()),
            ),
            (
                "DescribeDBProxies pages per listing",
                f"sandbox {pages['sandbox']}, AWS {pages['aws']} (figures 'at AWS paging' use AWS's)",
            ),
            ("before: runs", f"{before['runs']} in {seconds(before['seconds'], 1)}, {before['statuses']}"),
            (
                "before: AWS calls per run",
                f"{before['aws_calls_per_run_including_scans']:g} (at AWS paging"
                f" {before['aws_calls_per_run_including_scans_at_aws_paging']:g}; no shared scan)",
            ),
            (
                "before: DescribeDBProxyTargets per run",
                f"{before['describe_db_proxy_targets']['total'] / before['runs']:g}",
            ),
            ("after: runs", f"{after['runs']} in {seconds(after['seconds'], 1)}, {after['statuses']}"),
            ("after: shared scans", f"{after['scans']}: {after['scan_calls']}"),
            (
                "after: AWS calls per run, excl. scans",
                f"mean {per_run['mean']:g} (at AWS paging {per_run['mean_at_aws_paging']:g}),"
                f" median {per_run['median']:g}, max {per_run['max']:g}"
                f" ({per_run['max_run']}, {per_run['max_run_proxies']} proxies)",
            ),
            (
                "  of which claimed by resource name",
                f"median {after['claimed_per_run']['median']:g}, max {after['claimed_per_run']['max']:g};"
                f" unclaimed {after['unclaimed_total']} ({after['unclaimed_per_run']:g} a run)",
            ),
            ("  by action (mean a run)", top),
            ("after: AWS calls per run, incl. scans", f"{after['aws_calls_per_run_including_scans']:g}"),
            (
                "after: DescribeDBProxyTargets total",
                f"{targets['total']} (target <= {result['target']['describe_db_proxy_targets_total']}): scans"
                f" {targets['scans']}, window polling {targets['window_polling']}, other {targets['other_run_reads']}",
            ),
            ("after: DescribeDBProxies pages", str(after["describe_db_proxies_pages"])),
            ("ratio before/after, calls per run", f"{result['ratio_before_to_after_per_run']:g}x (at AWS paging)"),
            ("after: runs that missed a proxy", f"{len(after['missed'])} {after['missed'] or ''}".rstrip()),
            (f"{multi['database']}: behind / recorded", f"{multi['behind']} / {multi['recorded']}"),
            ("late registration during the first scan", str(multi["registered_while_first_scan_in_flight"])),
            (
                "SLOW polling (provisioning wait)",
                f"{slow['measured_calls_per_run']:g} calls a run here"
                f" ({slow['measured_share_of_per_run']:.0%} of the mean); about {estimate['calls']} for a"
                f" {estimate['seconds'] / 60:.0f}-minute provisioning (estimate)",
            ),
            ("target met", str(result["target"]["met"])),
        ],
    )


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--before-runs", type=int, default=3, help="runs without the index (default 3)")
    parser.add_argument(
        "--describe-rate",
        type=float,
        default=PRODUCTION_DESCRIBE_RATE,
        help="describe budget for the after runs, calls/s (default %(default)g, the production default)",
    )


main = benchmark_command(NAME, __doc__, flags, measure, report)

if __name__ == "__main__":
    run_main(main)
