"""Typed views of the AWS resources the bot works with. Built by the gateway, read everywhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DatabaseKind = Literal["instance", "cluster"]

# Engines for which AWS documents RDS Proxy support in Blue/Green Deployments (April 2026).
NATIVE_PROXY_ENGINES = frozenset({"postgres", "mysql", "mariadb", "aurora-postgresql", "aurora-mysql"})


@dataclass(frozen=True, slots=True)
class Database:
    identifier: str
    kind: DatabaseKind
    arn: str
    engine: str
    engine_version: str
    status: str
    members: tuple[str, ...] = ()  # Aurora: member instance identifiers, writer first
    writer: str | None = None
    global_cluster: str | None = None
    cluster: str | None = None  # an instance that belongs to an Aurora cluster

    @property
    def is_aurora(self) -> bool:
        return self.kind == "cluster"

    @property
    def major_version(self) -> str:
        return major_version(self.engine, self.engine_version)


def major_version(engine: str, version: str) -> str:
    """PostgreSQL 10+ majors are one number (15.7 -> 15); MySQL/MariaDB majors are two (8.0.36 -> 8.0)."""
    parts = version.split(".")
    if "postgres" in engine and parts and parts[0].isdigit() and int(parts[0]) >= 10:
        return parts[0]
    return ".".join(parts[:2])


@dataclass(frozen=True, slots=True)
class Registration:
    """One place a database is registered: a proxy's target group."""

    proxy: str
    target_group: str = "default"

    @property
    def label(self) -> str:
        return self.proxy if self.target_group == "default" else f"{self.proxy}/{self.target_group}"

    def to_dict(self) -> dict[str, str]:
        return {"proxy": self.proxy, "target_group": self.target_group}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Registration:
        return cls(proxy=data["proxy"], target_group=data.get("target_group", "default"))


@dataclass(frozen=True, slots=True)
class ProxyTarget:
    proxy: str
    target_group: str
    rds_resource_id: str | None
    type: str
    role: str | None
    state: str
    reason: str | None = None
    description: str | None = None
    tracked_cluster: str | None = None
    endpoint: str | None = None
    port: int | None = None

    @property
    def available(self) -> bool:
        return self.state == "AVAILABLE"


@dataclass(frozen=True, slots=True)
class Proxy:
    name: str
    engine_family: str
    endpoint: str | None
    status: str


@dataclass(frozen=True, slots=True)
class DeploymentTask:
    name: str
    status: str


@dataclass(frozen=True, slots=True)
class SwitchoverMember:
    source: str
    target: str
    status: str


@dataclass(frozen=True, slots=True)
class Deployment:
    identifier: str
    name: str
    source_arn: str
    target_arn: str | None
    status: str
    status_details: str | None = None
    tasks: tuple[DeploymentTask, ...] = ()
    members: tuple[SwitchoverMember, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def switched_over(self) -> bool:
        return self.status == "SWITCHOVER_COMPLETED"


def identifier_from_arn(arn: str) -> str:
    """arn:aws:rds:us-east-1:123:db:orders-pg -> orders-pg (also :cluster:)."""
    return arn.rsplit(":", 1)[-1]
