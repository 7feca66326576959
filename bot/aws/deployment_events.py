"""RDS events (DescribeEvents) for a blue/green deployment and its members.

A mixin of `bot.aws.gateway.AwsGateway` (the only code that calls AWS): methods here use its `_call`,
`_describe`, `_mutate` and `_pages`. Unlike the rest of the gateway, events are best-effort: a failed read returns
None and never fails a run.

DescribeEvents takes `SourceType` (`blue-green-deployment`, `db-instance`, `db-cluster`, ...), `SourceIdentifier`
(which needs `SourceType`; a deployment's is its `bgd-...` identifier), `StartTime` and `Marker`/`MaxRecords`
(20-100); each event has SourceIdentifier, SourceType, Message, EventCategories, Date and SourceArn
(botocore's RDS model). Without StartTime AWS returns only the last hour.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from bot import errors

DEPLOYMENT_SOURCE_TYPE = "blue-green-deployment"
PAGE_SIZE = 100  # DescribeEvents' MaxRecords maximum


@dataclass(frozen=True, slots=True)
class RdsEvent:
    """One RDS event, as DescribeEvents lists it."""

    source: str  # SourceIdentifier: the deployment's bgd-... id, an instance or a cluster identifier
    source_type: str
    message: str
    at: float  # Date, as a UNIX timestamp
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable across reads, for de-duplication (DescribeEvents has no event id)."""
        text = f"{self.source_type}|{self.source}|{self.at:.3f}|{self.message}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_event(data: dict[str, Any]) -> RdsEvent:
    date = data.get("Date")
    at = date.timestamp() if isinstance(date, dt.datetime) else 0.0
    return RdsEvent(
        source=str(data.get("SourceIdentifier", "")),
        source_type=str(data.get("SourceType", "")),
        message=str(data.get("Message", "")),
        at=at,
        categories=tuple(data.get("EventCategories") or ()),
    )


class DeploymentEvents:
    _call: Callable[..., Awaitable[dict[str, Any]]]
    _mutate: Callable[..., Awaitable[Any]]
    _pages: Callable[..., AsyncIterator[dict[str, Any]]]

    async def deployment_events(
        self,
        deployment_id: str,
        *,
        since: float,
        instances: Collection[str] = (),
        clusters: Collection[str] = (),
    ) -> list[RdsEvent] | None:
        """Events since `since` (a UNIX timestamp) of the deployment and of the member instances and clusters
        named, oldest first, every page. None when AWS did not answer or refused (events are best-effort: the
        caller carries on without them). Never raises for AWS."""
        start = dt.datetime.fromtimestamp(since, dt.UTC)
        wanted: list[tuple[str, Collection[str] | None, dict[str, Any]]] = [
            (DEPLOYMENT_SOURCE_TYPE, None, {"SourceIdentifier": deployment_id})
        ]
        # Members by type, filtered here: one call per type however many members there are.
        if instances:
            wanted.append(("db-instance", set(instances), {}))
        if clusters:
            wanted.append(("db-cluster", set(clusters), {}))
        found: list[RdsEvent] = []
        try:
            for source_type, names, params in wanted:
                async for item in self._pages(
                    "DescribeEvents",
                    "Events",
                    deployment_id,
                    SourceType=source_type,
                    StartTime=start,
                    MaxRecords=PAGE_SIZE,
                    **params,
                ):
                    event = parse_event(item)
                    if event.at >= since and (names is None or event.source in names):
                        found.append(event)
        except errors.AwsError:
            return None
        return sorted(found, key=lambda e: (e.at, e.source, e.message))
