"""What a rehearsal's clone will be sized like: blue's instance classes and storage, read before anything starts so
the requester can confirm the cost. A mixin of `bot.aws.gateway.AwsGateway` (None for not-found, AwsError on
failure).

Shapes (RDS API reference): DBInstance has DBInstanceClass, AllocatedStorage (GiB), StorageType and MultiAZ; DBCluster
has DBClusterMembers (DBInstanceIdentifier, IsClusterWriter), StorageType and AllocatedStorage, which for Aurora is
not a fixed size (the cluster volume grows and shrinks with use; older API versions always returned 1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot import errors
from bot.aws.models import Database, DatabaseKind


@dataclass(frozen=True, slots=True)
class MemberSize:
    """One DB instance a clone will have: blue's identifier for it, its class, and whether it writes."""

    identifier: str
    instance_class: str
    writer: bool = True


@dataclass(frozen=True, slots=True)
class DatabaseSize:
    """Blue as a clone of it will be sized: its instances (one for an instance, an Aurora cluster's members writer
    first) and its storage."""

    identifier: str
    kind: DatabaseKind
    members: tuple[MemberSize, ...]
    allocated_storage: int | None  # GiB; an Aurora cluster's is what it uses now, if AWS says more than 1
    storage_type: str | None
    multi_az: bool = False


class RehearsalSizing:
    _call: Callable[..., Awaitable[dict[str, Any]]]

    async def _described_one(self, action: str, key: str, identifier: str, **params: Any) -> dict[str, Any] | None:
        try:
            response = await self._call(action, identifier, **params)
        except errors.NotFound:
            return None
        found = response.get(key) or []
        return found[0] if found else None

    async def database_size(self, database: Database) -> DatabaseSize | None:
        """Blue's classes and storage, or None if it no longer exists."""
        if database.kind == "cluster":
            return await self._cluster_size(database.identifier)
        data = await self._described_one(
            "DescribeDBInstances", "DBInstances", database.identifier, DBInstanceIdentifier=database.identifier
        )
        if data is None:
            return None
        return DatabaseSize(
            identifier=database.identifier,
            kind="instance",
            members=(MemberSize(database.identifier, str(data.get("DBInstanceClass") or "unknown class")),),
            allocated_storage=_gib(data.get("AllocatedStorage")),
            storage_type=data.get("StorageType"),
            multi_az=bool(data.get("MultiAZ")),
        )

    async def _cluster_size(self, identifier: str) -> DatabaseSize | None:
        data = await self._described_one("DescribeDBClusters", "DBClusters", identifier, DBClusterIdentifier=identifier)
        if data is None:
            return None
        ordered = sorted(data.get("DBClusterMembers") or [], key=lambda m: not m.get("IsClusterWriter"))
        members: list[MemberSize] = []
        for member in ordered:
            name = member["DBInstanceIdentifier"]
            described = await self._described_one("DescribeDBInstances", "DBInstances", name, DBInstanceIdentifier=name)
            if described is not None:
                instance_class = str(described.get("DBInstanceClass") or "unknown class")
                members.append(MemberSize(name, instance_class, bool(member.get("IsClusterWriter"))))
        storage = _gib(data.get("AllocatedStorage"))
        return DatabaseSize(
            identifier=identifier,
            kind="cluster",
            members=tuple(members),
            allocated_storage=storage if storage and storage > 1 else None,
            storage_type=data.get("StorageType"),
            multi_az=bool(data.get("MultiAZ")),
        )


def _gib(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
