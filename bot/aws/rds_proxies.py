"""RDS Proxy calls: proxies, target groups and targets, where a database is registered, its registration, and the
proxy's CloudWatch metrics.

Proxy discovery goes through the environment's shared index (`bot/aws/proxy_index.py`): one paginated scan serves
every concurrent look-up, so a look-up's cost does not grow with the number of proxies in the account. RDS describe
calls wait on the environment's budget (`bot/aws/describe_budget.py`, set with `budget_describes`) when it has one.

A mixin of `bot.aws.gateway.AwsGateway` (the only code that calls AWS): methods here use its `_call`, `_mutate` and
`_pages`, and follow its contract (AwsError on failure, None for not-found). `_start_discovery` runs in its __init__.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot import errors
from bot.aws.cloudwatch import latest_metric_params, latest_values
from bot.aws.commands import target_params
from bot.aws.describe_budget import DescribeBudget
from bot.aws.models import Database, Proxy, ProxyTarget, Registration
from bot.aws.proxy_index import ProxyIndex
from bot.aws.responses import health_of, parse_proxy, parse_target, registered_as

if TYPE_CHECKING:
    from bot.aws.gateway import Mutation

# Scans of the index start at most once per this many describe calls' worth of the budget: 1 s at the default
# 10 calls a second, so that scans of a small account cannot crowd the budget out however often runs start.
SCAN_SPACING_CALLS = 10.0


class RdsProxies:
    _call: Callable[..., Awaitable[dict[str, Any]]]
    _mutate: Callable[..., Awaitable[Any]]
    _pages: Callable[..., AsyncIterator[dict[str, Any]]]

    proxy_index: ProxyIndex
    # False: describe every proxy per look-up (the path before the index, kept for the benchmark's before figures).
    use_proxy_index: bool = True
    describe_budget: DescribeBudget | None = None  # None: describe calls are not held to a rate

    def _start_discovery(self) -> None:
        self.proxy_index = ProxyIndex(self._scan_proxies)

    def budget_describes(self, rate: float, *, burst: float | None = None) -> DescribeBudget:
        """Hold RDS describe calls to `rate` a second (critical ones excepted), and space the index's scans to it."""
        self.describe_budget = DescribeBudget(rate, burst=burst)
        self.proxy_index.min_interval = SCAN_SPACING_CALLS / rate
        return self.describe_budget

    async def _take_describe_token(self, action: str, service: str) -> None:
        """Called by `_call` before every call: RDS describes wait for the budget."""
        if self.describe_budget is not None and service == "rds" and action.startswith("Describe"):
            await self.describe_budget.acquire()

    async def ping(self) -> None:
        """One cheap describe (one page of proxies, never cached): raises AwsError when AWS does not answer."""
        await self._call("DescribeDBProxies", MaxRecords=20)

    async def proxies(self) -> list[Proxy]:
        """Every RDS Proxy in the account and region (all pages)."""
        return [parse_proxy(p) async for p in self._pages("DescribeDBProxies", "DBProxies")]

    async def proxy(self, name: str) -> Proxy | None:
        """The named proxy, or None if there is none (one call, whatever the number of proxies in the account)."""
        try:
            response = await self._call("DescribeDBProxies", name, DBProxyName=name)
        except errors.NotFound:
            return None
        found = response.get("DBProxies", [])
        return parse_proxy(found[0]) if found else None

    async def target_groups(self, proxy: str) -> list[str]:
        """The names of the proxy's target groups; NotFound if the proxy does not exist."""
        return [
            group["TargetGroupName"]
            async for group in self._pages("DescribeDBProxyTargetGroups", "TargetGroups", proxy, DBProxyName=proxy)
        ]

    async def targets(self, proxy: str, target_group: str = "default") -> list[ProxyTarget]:
        """Every target entry of the target group, health included; NotFound if the proxy or group does not exist."""
        return [
            parse_target(proxy, target_group, t)
            async for t in self._pages(
                "DescribeDBProxyTargets", "Targets", proxy, DBProxyName=proxy, TargetGroupName=target_group
            )
        ]

    async def _scan_proxies(self) -> dict[str, dict[str, list[ProxyTarget]]]:
        """Every proxy -> target group -> targets in the account (the index's scan); a proxy deleted mid-scan is left
        out."""

        async def of_proxy(proxy: Proxy) -> tuple[str, dict[str, list[ProxyTarget]] | None]:
            try:
                return proxy.name, {g: await self.targets(proxy.name, g) for g in await self.target_groups(proxy.name)}
            except errors.NotFound:
                return proxy.name, None

        found = await asyncio.gather(*(of_proxy(p) for p in await self.proxies()))
        return {name: groups for name, groups in found if groups is not None}

    async def proxy_view(
        self, database: Database, *, fresh_after: float | None = None
    ) -> tuple[list[Registration], list[ProxyTarget]]:
        """Where the database is registered, and its own target entries there. Through the index: from a scan that
        started at or after `fresh_after` (the index clock, `self.proxy_index.clock`), or a recent one without it."""
        if self.use_proxy_index:
            snapshot = await self.proxy_index.snapshot(fresh_after)
            registrations = snapshot.registrations(database)
            if fresh_after is not None:  # the scan started after the request: its health is current enough
                return registrations, snapshot.health(database, registrations)
        else:
            registrations = await self.registrations(database)
        targets: list[ProxyTarget] = []
        for registration in registrations:
            targets += health_of(database, await self.targets(registration.proxy, registration.target_group))
        return registrations, targets

    async def registrations(self, database: Database, *, fresh_after: float | None = None) -> list[Registration]:
        """Every proxy target group the database is registered with (one database may sit behind several); through
        the index unless `use_proxy_index` is off (see `proxy_view` for `fresh_after`)."""
        if self.use_proxy_index:
            return (await self.proxy_index.snapshot(fresh_after)).registrations(database)

        async def of_proxy(proxy: Proxy) -> list[Registration]:
            found = []
            for group in await self.target_groups(proxy.name):
                if any(registered_as(database, t) for t in await self.targets(proxy.name, group)):
                    found.append(Registration(proxy.name, group))
            return found

        per_proxy = await asyncio.gather(*(of_proxy(p) for p in await self.proxies()))
        return [registration for found in per_proxy for registration in found]

    async def register(self, registration: Registration, database: Database) -> Mutation:
        """Register the instance or cluster with the target group; AlreadyRegistered if it already is."""
        self.proxy_index.invalidate()
        return await self._mutate(
            "RegisterDBProxyTargets",
            f"{database.identifier} on {registration.label}",
            **target_params(registration, database.identifier, database.kind),
        )

    async def deregister(self, registration: Registration, database: Database) -> Mutation:
        """Deregister the instance or cluster from the target group; NotRegistered if it is not registered."""
        self.proxy_index.invalidate()
        return await self._mutate(
            "DeregisterDBProxyTargets",
            f"{database.identifier} on {registration.label}",
            **target_params(registration, database.identifier, database.kind),
        )

    async def proxy_metrics(self, proxy: str, *, minutes: int = 5) -> dict[str, float | None] | None:
        """Latest ClientConnections / DatabaseConnections / AvailabilityPercentage, or None when CloudWatch is out
        of reach or not permitted (the caller reports the check as unavailable). Never raises for AWS."""
        names = ("ClientConnections", "DatabaseConnections", "AvailabilityPercentage")
        series = [(name, "ProxyName", proxy) for name in names]
        try:
            response = await self._call(
                "GetMetricData", proxy, service="cloudwatch", **latest_metric_params(series, minutes=minutes)
            )
        except errors.AwsError:
            return None
        return dict(zip(names, latest_values(response, len(series)), strict=True))
