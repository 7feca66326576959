"""Proxy discovery through the shared index, and the describe budget, against the sandbox AWS over HTTP: concurrent
look-ups share one scan, a run never misses a proxy registered before it was requested, critical describes go
first."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.aws.describe_budget import DescribeBudget, critical
from bot.aws.gateway import AwsGateway
from bot.aws.proxy_index import ProxyIndex
from bot.aws.rds_proxies import SCAN_SPACING_CALLS
from bot.config_types import ConfigError
from bot.errors import AccessDenied
from sandbox.waiting import async_wait_until
from tests.engine_fixtures import calls, request

FLEET_PROXIES = 4  # orders-proxy, billing-proxy, billing-reporting-proxy, ledger-proxy


def counts(sandbox) -> dict[str, int]:
    return {
        action: len(calls(sandbox, action))
        for action in ("DescribeDBProxies", "DescribeDBProxyTargetGroups", "DescribeDBProxyTargets")
    }


def gateway_of(engine) -> AwsGateway:
    return engine.gateways.get(engine.settings.environment())


def add_proxy(aws_client, rds, name: str, database: str) -> None:
    subnets = [s["SubnetId"] for s in aws_client("ec2").describe_subnets()["Subnets"]][:2]
    rds.create_db_proxy(
        DBProxyName=name,
        EngineFamily="MYSQL",
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"}],
        RoleArn="arn:aws:iam::123456789012:role/proxy",
        VpcSubnetIds=subnets,
    )
    rds.register_db_proxy_targets(DBProxyName=name, TargetGroupName="default", DBInstanceIdentifiers=[database])


async def test_concurrent_lookups_share_one_scan(engine, sandbox):
    gateway = gateway_of(engine)
    requested_at = gateway.proxy_index.clock()
    databases = ["orders-pg", "billing-mysql", "ledger-aurora"] * 5
    runs = [engine.observe(request("create", d), fresh_after=requested_at) for d in databases]
    looks = [engine.status(d) for d in ("orders-pg", "billing-mysql")]

    observed = await asyncio.gather(*runs, *looks)

    # One scan for 17 look-ups: one listing, one target-group read and one targets read per proxy; plus the two
    # `status` look-ups' fresh health reads of their own registrations (orders 1, billing 2).
    assert counts(sandbox) == {
        "DescribeDBProxies": 1,
        "DescribeDBProxyTargetGroups": FLEET_PROXIES,
        "DescribeDBProxyTargets": FLEET_PROXIES + 3,
    }
    assert gateway.proxy_index.scans == 1
    billing = observed[1]
    assert sorted(r.proxy for r in billing.registrations) == ["billing-proxy", "billing-reporting-proxy"]
    assert {t.rds_resource_id for t in billing.targets} == {"billing-mysql"}
    assert [r.proxy for r in observed[0].registrations] == ["orders-proxy"]


async def test_a_proxy_registered_just_before_a_run_is_requested_is_found(engine, sandbox, aws_client, rds):
    gateway = gateway_of(engine)
    before = counts(sandbox)["DescribeDBProxies"]
    # A look-up's scan is in flight (it has listed the proxies) when the new proxy is created and registered.
    status = asyncio.ensure_future(engine.status("billing-mysql"))
    await async_wait_until(lambda: counts(sandbox)["DescribeDBProxies"] > before, 10, what="the first scan listing")
    add_proxy(aws_client, rds, "billing-late-proxy", "billing-mysql")

    run = await engine.start(request("create", "billing-mysql", mode="workaround"))

    proxies = {r["proxy"] for r in run.meta["registrations"]}
    assert proxies == {"billing-proxy", "billing-reporting-proxy", "billing-late-proxy"}
    # The race was real: the scan in flight when the run was requested did not see the new proxy.
    assert "billing-late-proxy" not in {r.proxy for r in (await status).registrations}
    assert gateway.proxy_index.scans == 2
    await engine.cancel(run.id, "U0ALICE")


async def test_a_recent_scan_serves_plain_lookups_but_never_a_run(engine, sandbox, aws_client, rds):
    await engine.status("orders-pg")
    add_proxy(aws_client, rds, "orders-late-proxy", "orders-pg")
    # `status` may answer from a scan a few seconds old (max_age); a run may not.
    stale = await engine.status("orders-pg")
    assert [r.proxy for r in stale.registrations] == ["orders-proxy"]
    requested_at = gateway_of(engine).proxy_index.clock()
    fresh = await engine.observe(request("create", "orders-pg"), fresh_after=requested_at)
    assert sorted(r.proxy for r in fresh.registrations) == ["orders-late-proxy", "orders-proxy"]
    assert counts(sandbox)["DescribeDBProxies"] == 2


async def test_a_failed_scan_fails_every_waiting_lookup_and_is_not_kept(engine, sandbox):
    gateway = gateway_of(engine)
    database = await gateway.database("orders-pg")
    assert database is not None
    sandbox.control.inject_fault("DescribeDBProxies", "AccessDenied", count=1, status=403)
    requested_at = gateway.proxy_index.clock()
    results = await asyncio.gather(
        *(gateway.registrations(database, fresh_after=requested_at) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, AccessDenied) for r in results), results
    again = await gateway.registrations(database, fresh_after=requested_at)
    assert [r.proxy for r in again] == ["orders-proxy"]
    assert gateway.proxy_index.scans == 2


async def test_lookups_requested_during_an_older_scan_share_the_next_one():
    releases: list[asyncio.Event] = []

    async def scan() -> dict:
        releases.append(asyncio.Event())
        await releases[-1].wait()
        return {"p": {}}

    index = ProxyIndex(scan, min_interval=0.0)
    first = asyncio.ensure_future(index.snapshot(fresh_after=index.clock()))
    await async_wait_until(lambda: len(releases) == 1, 5, what="the first scan")
    later = [asyncio.ensure_future(index.snapshot(fresh_after=index.clock())) for _ in range(5)]
    plain = asyncio.ensure_future(index.snapshot())  # no run: the scan in flight is recent enough
    releases[0].set()
    served_first = await first
    assert await plain is served_first
    await async_wait_until(lambda: len(releases) == 2, 5, what="the second scan")
    assert not any(task.done() for task in later)  # none was served by the scan that started before it
    releases[1].set()
    second = await asyncio.gather(*later)
    assert all(s is second[0] for s in second) and second[0].started > served_first.started
    assert index.scans == 2


async def test_critical_describes_never_wait_behind_the_queue(sandbox):
    async with AwsGateway(region="us-east-1", endpoint_url=sandbox.endpoint) as gateway:
        budget = gateway.budget_describes(2.0, burst=1)
        assert gateway.proxy_index.min_interval == SCAN_SPACING_CALLS / 2.0  # scans spaced to the budget too
        queued = [asyncio.ensure_future(gateway.proxies()) for _ in range(4)]  # 1 now, then one every 0.5 s
        await async_wait_until(lambda: budget.queued, 5, what="non-critical describes queued on the budget")

        started = time.monotonic()
        with critical():
            await gateway.targets("orders-proxy")
        critical_seconds = time.monotonic() - started
        waiting_when_done = sum(not task.done() for task in queued)
        released_before = budget.granted_calls
        await asyncio.gather(*queued)

    assert budget.critical_calls == 1
    assert waiting_when_done >= 2  # it overtook the queue rather than waiting its turn (~1.5 s)
    timeline = [e for e in sandbox.control.timeline() if e["kind"] == "call"]
    order = [e["action"] for e in timeline if e["action"] in {"DescribeDBProxies", "DescribeDBProxyTargets"}]
    # Only the scans the budget had already let through went before it (a released scan's task is not done yet).
    assert order.index("DescribeDBProxyTargets") <= released_before, order
    assert released_before <= 2, released_before
    assert critical_seconds < 1.0


async def test_the_budget_holds_non_critical_describes_to_the_rate():
    budget = DescribeBudget(20.0, burst=1)
    started = time.monotonic()
    await asyncio.gather(*(budget.acquire() for _ in range(6)))
    assert time.monotonic() - started >= 5 / 20.0 * 0.95
    assert budget.waited_calls == 5


def test_aws_describe_rate_is_a_strict_per_environment_key(tmp_path):
    from bot.config import load_settings

    base = {"BLUEGREEN_DB": str(tmp_path / "b.db"), "AWS_REGION": "us-east-1"}
    people = '[environments.prod]\noperators = ["U0ALICE"]\napprovers = ["U0BOB"]\n'

    def settings_with(value: str | None, variables: dict[str, str] | None = None):
        path = tmp_path / "bluegreen.toml"
        path.write_text(people + (f"aws_describe_rate = {value}\n" if value is not None else ""))
        return load_settings({**base, **(variables or {}), "BLUEGREEN_CONFIG": str(path)})

    assert settings_with(None).environment("prod").aws_describe_rate == 10.0  # the default for deployments
    assert settings_with("25").environment("prod").aws_describe_rate == 25.0
    # The variable sets every environment's default; the file's key wins.
    fast = {"BLUEGREEN_AWS_DESCRIBE_RATE": "500"}
    assert settings_with(None, fast).environment("prod").aws_describe_rate == 500.0
    assert settings_with("25", fast).environment("prod").aws_describe_rate == 25.0
    for bad in ('"fast"', "0", "true", "5000"):
        with pytest.raises(ConfigError, match="aws_describe_rate"):
            settings_with(bad)
