"""Drift after a switchover: old blue and the new primary compared, setting by setting. Pure: two snapshots of
settings in, a report out.

AWS copies blue's settings to green when the deployment is created; what changes on blue afterwards, and what AWS
does not copy (associated IAM roles), is not on the new primary after the switchover. Each row is a `GateResult`:
PASS where both match, FAIL for a difference with the command that gives the new primary old blue's value, UNKNOWN
where a difference may be intended (a new parameter group family after a major upgrade) or a value could not be
read. The new resource id (DbiResourceId; Aurora: DbClusterResourceId) is called out apart: IAM database
authentication policies and tools keyed on it must follow, and no command of ours can do that.

`--fix-drift` (or the environment's `fix_drift`) applies `fixes_for`: deletion protection and tags only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.aws.commands import aws_command
from bot.aws.models import major_version
from bot.aws.settings_changes import DatabaseSettings, add_tags_params, deletion_protection_params
from bot.gates.model import FAIL, PASS, UNKNOWN, GateResult

# What --fix-drift adds to a switchover, as the approval request states it.
FIX_DRIFT_ACTION = (
    "then, because of --fix-drift, give the new primary old blue's deletion protection and the tags it lacks"
)
ORDER = (
    "deletion protection",
    "tags",
    "IAM roles",
    "parameter group",
    "backup retention",
    "enhanced monitoring",
    "Performance Insights",
    "CA certificate",
)


@dataclass(frozen=True, slots=True)
class DriftFixes:
    """What --fix-drift changes on the new primary: deletion protection on, and these tags added."""

    deletion_protection: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.deletion_protection and not self.tags

    def to_dict(self) -> dict[str, Any]:
        return {"deletion_protection": self.deletion_protection, "tags": dict(self.tags)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftFixes:
        return cls(bool(data.get("deletion_protection")), {str(k): str(v) for k, v in data.get("tags", {}).items()})


@dataclass(frozen=True, slots=True)
class DriftReport:
    old: str  # old blue's identifier (`<name>-old1`)
    new: str  # the new primary's identifier (the production name)
    rows: tuple[GateResult, ...]
    old_resource_id: str | None = None
    new_resource_id: str | None = None
    resource_id_note: str | None = None  # set when the resource id changed
    notes: tuple[str, ...] = ()  # what else to know (old blue's own deletion protection)

    @property
    def differences(self) -> list[GateResult]:
        return [row for row in self.rows if row.status != PASS]

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "rows": [row.to_dict() for row in self.rows],
            "old_resource_id": self.old_resource_id,
            "new_resource_id": self.new_resource_id,
            "resource_id_note": self.resource_id_note,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        return cls(
            str(data["old"]),
            str(data["new"]),
            tuple(GateResult.from_dict(row) for row in data.get("rows", [])),
            data.get("old_resource_id"),
            data.get("new_resource_id"),
            data.get("resource_id_note"),
            tuple(data.get("notes", ())),
        )

    def lines(self) -> list[str]:
        """The report as plain lines: each difference with its fix, the resource id, then what matched."""
        lines = []
        for row in self.differences:
            line = f"{row.name}: {row.reason}"
            if row.fix:
                line += f"; fix: `{row.fix}`"
            lines.append(line)
        if self.resource_id_note:
            lines.append(self.resource_id_note)
        lines.extend(self.notes)
        matched = [row.name for row in self.rows if row.status == PASS]
        if matched:
            lines.append("same on both: " + ", ".join(matched))
        return lines

    def text(self) -> str:
        """The thread notice."""
        count = len(self.differences)
        if count:
            head = (
                f"Drift after the switchover: {self.new} (the new primary) differs from old blue {self.old} on"
                f" {count} setting{'s' if count != 1 else ''}:"
            )
        else:
            head = f"Drift after the switchover: none; {self.new} (the new primary) matches old blue {self.old}."
        return "\n".join([head, *(f"• {line}" for line in self.lines())])


def _on(value: bool | None) -> str:
    return "on" if value else "off"


def _modify(new: DatabaseSettings, *, instance_level: bool = False, **params: Any) -> str:
    """`aws rds modify-db-instance|modify-db-cluster` for the new primary (instance-level: its writer)."""
    if new.kind == "cluster" and not instance_level:
        return aws_command("ModifyDBCluster", {"DBClusterIdentifier": new.identifier, **params})
    return aws_command("ModifyDBInstance", {"DBInstanceIdentifier": new.instance or new.identifier, **params})


def _deletion_protection(old: DatabaseSettings, new: DatabaseSettings) -> GateResult:
    name = "deletion protection"
    if old.deletion_protection and not new.deletion_protection:
        action, params = deletion_protection_params(new.identifier, new.kind, True)
        return GateResult(name, FAIL, f"on on old blue {old.identifier}, off on {new.identifier}",
                          aws_command(action, params))  # fmt: skip
    if new.deletion_protection and not old.deletion_protection:
        return GateResult(name, PASS, f"on on {new.identifier} (off on old blue)")
    return GateResult(name, PASS, f"{_on(new.deletion_protection)} on both")


def missing_tags(old: DatabaseSettings, new: DatabaseSettings) -> dict[str, str]:
    """Old blue's tags the new primary lacks or holds with another value."""
    return {key: value for key, value in old.tags.items() if new.tags.get(key) != value}


def _tags(old: DatabaseSettings, new: DatabaseSettings) -> GateResult:
    missing = missing_tags(old, new)
    if not missing:
        return GateResult("tags", PASS, f"{len(old.tags)} tag{'s' if len(old.tags) != 1 else ''} of old blue present")
    described = ", ".join(
        f"{key}={value}" + (f" (is {new.tags[key]})" if key in new.tags else "")
        for key, value in sorted(missing.items())
    )
    return GateResult("tags", FAIL, f"{new.identifier} lacks old blue's {described}",
                      aws_command("AddTagsToResource", add_tags_params(new.arn, missing)))  # fmt: skip


def _roles(old: DatabaseSettings, new: DatabaseSettings) -> GateResult:
    missing = [role for role in old.roles if role not in new.roles]
    if not missing:
        return GateResult("IAM roles", PASS, f"{len(old.roles)} associated role(s) of old blue present")
    commands = []
    for role in missing:
        if new.kind == "cluster":
            params: dict[str, Any] = {"DBClusterIdentifier": new.identifier, "RoleArn": role.arn}
            commands.append(aws_command("AddRoleToDBCluster", {**params, "FeatureName": role.feature}))
        else:
            params = {"DBInstanceIdentifier": new.identifier, "RoleArn": role.arn, "FeatureName": role.feature}
            commands.append(aws_command("AddRoleToDBInstance", params))
    shown = ", ".join(f"{role.arn} ({role.feature or 'no feature'})" for role in missing)
    return GateResult("IAM roles", FAIL, f"AWS does not carry associated roles over: {new.identifier} lacks {shown}",
                      " && ".join(commands))  # fmt: skip


def _parameter_group(old: DatabaseSettings, new: DatabaseSettings) -> GateResult:
    name = "parameter group"
    if old.parameter_group == new.parameter_group:
        return GateResult(name, PASS, f"{new.parameter_group or 'none'} on both")
    reason = f"{old.parameter_group} on old blue, {new.parameter_group} on {new.identifier}"
    if major_version(old.engine, old.engine_version) != major_version(new.engine, new.engine_version):
        # A major upgrade needs a group of the new family: a different name is expected, its contents may not be.
        action = "DescribeDBClusterParameters" if new.kind == "cluster" else "DescribeDBParameters"
        key = "DBClusterParameterGroupName" if new.kind == "cluster" else "DBParameterGroupName"
        return GateResult(name, UNKNOWN, f"{reason} (a major upgrade needs a group of the new family): check that it"
                          " keeps old blue's custom parameters",
                          aws_command(action, {key: old.parameter_group, "Source": "user"}))  # fmt: skip
    key = "DBClusterParameterGroupName" if new.kind == "cluster" else "DBParameterGroupName"
    return GateResult(name, FAIL, f"{reason} (static parameters take effect after a reboot)",
                      _modify(new, **{key: old.parameter_group, "ApplyImmediately": True}))  # fmt: skip


def _backup_retention(old: DatabaseSettings, new: DatabaseSettings) -> GateResult:
    name = "backup retention"
    if old.backup_retention == new.backup_retention:
        return GateResult(name, PASS, f"{new.backup_retention} days on both")
    reason = f"{old.backup_retention} days on old blue, {new.backup_retention} on {new.identifier}"
    fix = _modify(new, BackupRetentionPeriod=old.backup_retention, ApplyImmediately=True)
    return GateResult(name, FAIL, reason, fix)


def _instance_unread(name: str, old: DatabaseSettings, new: DatabaseSettings) -> GateResult | None:
    if old.instance is None or new.instance is None:
        which = old.identifier if old.instance is None else new.identifier
        return GateResult(name, UNKNOWN, f"{which} has no writer instance to read it from")
    return None


def _monitoring(old: DatabaseSettings, new: DatabaseSettings) -> GateResult:
    name = "enhanced monitoring"
    unread = _instance_unread(name, old, new)
    if unread:
        return unread

    def shown(s: DatabaseSettings) -> str:
        return f"every {s.monitoring_interval} s as {s.monitoring_role}" if s.monitoring_interval else "off"

    same_role = not old.monitoring_interval or old.monitoring_role == new.monitoring_role
    if old.monitoring_interval == new.monitoring_interval and same_role:
        return GateResult(name, PASS, f"{shown(new)} on both")
    fix = _modify(new, instance_level=True, MonitoringInterval=old.monitoring_interval,
                  MonitoringRoleArn=old.monitoring_role if old.monitoring_interval else None,
                  ApplyImmediately=True)  # fmt: skip
    return GateResult(name, FAIL, f"{shown(old)} on old blue, {shown(new)} on {new.instance}", fix)


def _performance_insights(old: DatabaseSettings, new: DatabaseSettings) -> GateResult:
    name = "Performance Insights"
    unread = _instance_unread(name, old, new)
    if unread:
        return unread

    def shown(s: DatabaseSettings) -> str:
        if not s.performance_insights:
            return "off"
        return f"on, {s.performance_insights_retention} days" if s.performance_insights_retention else "on"

    if shown(old) == shown(new):
        if old.performance_insights and old.performance_insights_kms_key != new.performance_insights_kms_key:
            return GateResult(name, UNKNOWN, f"on both, but encrypted with {new.performance_insights_kms_key} on"
                              f" {new.instance} ({old.performance_insights_kms_key} on old blue); AWS does not"
                              " change a Performance Insights key once set")  # fmt: skip
        return GateResult(name, PASS, f"{shown(new)} on both")
    params: dict[str, Any] = {"EnablePerformanceInsights": bool(old.performance_insights)}
    if old.performance_insights:
        params["PerformanceInsightsRetentionPeriod"] = old.performance_insights_retention
    fix = _modify(new, instance_level=True, **params, ApplyImmediately=True)
    return GateResult(name, FAIL, f"{shown(old)} on old blue, {shown(new)} on {new.instance}", fix)


def _ca_certificate(old: DatabaseSettings, new: DatabaseSettings) -> GateResult:
    name = "CA certificate"
    unread = _instance_unread(name, old, new)
    if unread:
        return unread
    if old.ca_certificate == new.ca_certificate:
        return GateResult(name, PASS, f"{new.ca_certificate} on both")
    return GateResult(name, FAIL, f"{old.ca_certificate} on old blue, {new.ca_certificate} on {new.instance}"
                      " (changing it may restart the instance; clients must trust the CA)",
                      _modify(new, instance_level=True, CACertificateIdentifier=old.ca_certificate,
                              ApplyImmediately=True))  # fmt: skip


def iam_auth_resource(arn: str, resource_id: str) -> str:
    """The `rds-db:connect` resource of a database's users: arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE-ID/*."""
    parts = arn.split(":")
    partition, region, account = (parts[1], parts[3], parts[4]) if len(parts) > 4 else ("aws", "REGION", "ACCOUNT")
    return f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/*"


def _resource_id_note(old: DatabaseSettings, new: DatabaseSettings) -> str | None:
    if not new.resource_id or old.resource_id == new.resource_id:
        return None
    label = "DbClusterResourceId" if new.kind == "cluster" else "DbiResourceId"
    return (
        f"{label} changed: {old.resource_id} (old blue {old.identifier}) -> {new.resource_id} ({new.identifier})."
        f" IAM database authentication policies must name `{iam_auth_resource(new.arn, new.resource_id)}`"
        f" instead of {old.resource_id}, and tools keyed on the resource id (Performance Insights, AWS Backup"
        " selections, monitoring) must follow"
    )


def compare(old: DatabaseSettings, new: DatabaseSettings) -> DriftReport:
    """Old blue against the new primary, one row per setting in `ORDER`."""
    rows = (
        _deletion_protection(old, new),
        _tags(old, new),
        _roles(old, new),
        _parameter_group(old, new),
        _backup_retention(old, new),
        _monitoring(old, new),
        _performance_insights(old, new),
        _ca_certificate(old, new),
    )
    notes = []
    if old.deletion_protection:
        action, params = deletion_protection_params(old.identifier, old.kind, False)
        notes.append(f"old blue {old.identifier} keeps its deletion protection, and AWS refuses to delete a protected"
                     f" database: before `cleanup --delete-old`, run `{aws_command(action, params)}`")  # fmt: skip
    return DriftReport(
        old.identifier, new.identifier, rows, old.resource_id, new.resource_id, _resource_id_note(old, new),
        tuple(notes),
    )  # fmt: skip


def fixes_for(old: DatabaseSettings, new: DatabaseSettings) -> DriftFixes:
    """What --fix-drift would change on the new primary now: deletion protection if old blue had it, and old blue's
    tags it lacks."""
    return DriftFixes(old.deletion_protection and not new.deletion_protection, missing_tags(old, new))
