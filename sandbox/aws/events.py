"""RDS events of blue/green deployments, readable with DescribeEvents (SourceType `blue-green-deployment`).

Ids, categories and messages are AWS's (RDS User Guide, "Amazon RDS event categories and event messages", section
"Blue/green deployment events"; the Aurora twin for the cluster ids). DescribeEvents returns no event id (the API's
Event has SourceIdentifier, SourceType, Message, EventCategories, Date, SourceArn), so readers match on the message;
the id is on the sandbox timeline as `rds-event:<deployment id>` -> `RDS-EVENT-nnnn <message>`.
SourceIdentifier is the deployment's id (bgd-...), SourceArn `arn:aws:rds:<region>:<account>:deployment:<id>`.

DescribeEvents also honours what moto ignores: Duration (minutes, default 60), StartTime, EndTime, EventCategories.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow
from moto.rds.exceptions import InvalidParameterCombination
from moto.rds.models import DBCluster

from sandbox.aws.proxy_targets import identifier_of

if TYPE_CHECKING:
    from sandbox.aws.blue_green import SandboxBlueGreenDeployment
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

SOURCE_TYPE = "blue-green-deployment"
DEFAULT_DURATION_MINUTES = 60
# (category, message template); templates use {blue}, {green}, {old}, {reason}, {message}.
EVENTS: dict[str, tuple[str, str]] = {
    "RDS-EVENT-0244": (
        "creation",
        "Blue/green deployment tasks completed. You can make more modifications to the green environment "
        "databases or switch over the deployment.",
    ),
    "RDS-EVENT-0245": ("failure", "Creation of blue/green deployment failed because {reason}."),
    "RDS-EVENT-0246": ("deletion", "Blue/green deployment deleted."),
    "RDS-EVENT-0247": ("notification", "Switchover from {blue} to {green} started."),
    "RDS-EVENT-0248": ("notification", "Switchover completed on blue/green deployment."),
    "RDS-EVENT-0249": ("failure", "Switchover canceled on blue/green deployment."),
    "RDS-EVENT-0250": ("notification", "Switchover from primary/read replica {blue} to {green} started."),
    "RDS-EVENT-0251": (
        "notification",
        "Switchover from primary/read replica {blue} to {green} completed. Renamed {blue} to {old} and {green} "
        "to {blue}.",
    ),
    "RDS-EVENT-0252": (
        "failure",
        "Switchover from primary/read replica {blue} to {green} was canceled due to {reason}.",
    ),
    "RDS-EVENT-0259": ("notification", "Switchover from DB cluster {blue} to {green} started."),
    "RDS-EVENT-0260": (
        "notification",
        "Switchover from DB cluster {blue} to {green} completed. Renamed {blue} to {old} and {green} to {blue}.",
    ),
    "RDS-EVENT-0261": ("failure", "Switchover from DB cluster {blue} to {green} was canceled due to {reason}."),
    "RDS-EVENT-0307": (
        "notification",
        "Sequence sync for switchover of {blue} to {green} has initiated. Switchover when using sequences may lead "
        "to extended downtime.",
    ),
    "RDS-EVENT-0308": ("notification", "Sequence sync for switchover of {blue} to {green} has completed."),
    "RDS-EVENT-0311": (
        "notification",
        "Sequence sync for switchover of DB cluster {blue} to {green} has initiated. Switchover when using "
        "sequences may lead to extended downtime.",
    ),
    "RDS-EVENT-0312": ("notification", "Sequence sync for switchover of DB cluster {blue} to {green} has completed."),
    "RDS-EVENT-0405": ("notification", "Your storage volumes are being initialized."),
    "RDS-EVENT-0406": ("notification", "Your storage volumes have been initialized."),
    "RDS-EVENT-0409": ("notification", "{message}"),  # AWS documents the message as free text
}


@dataclass
class DeploymentEvent:
    """Duck-types moto's rds Event for its DescribeEvents serialisation."""

    event_id: str
    source_identifier: str
    source_arn: str
    message: str
    event_categories: list[str]
    source_type: str = SOURCE_TYPE
    date: dt.datetime = field(default_factory=utcnow)


def deployment_arn(backend: SandboxRDSBackend, deployment_id: str) -> str:
    return f"arn:aws:rds:{backend.region_name}:{backend.account_id}:deployment:{deployment_id}"


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC).replace(tzinfo=None)


def _naive(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


class EventsMixin:
    """RDS events for deployments; mixed into SandboxRDSBackend."""

    def emit_deployment_event(
        self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, event_id: str, **values: str
    ) -> DeploymentEvent:
        category, template = EVENTS[event_id]
        deployment_id = deployment.blue_green_deployment_identifier
        event = DeploymentEvent(
            event_id,
            deployment_id,
            deployment_arn(self, deployment_id),
            template.format(**values),
            [category],
        )
        self.events.append(event)  # type: ignore[arg-type]
        self.sandbox.transition(f"rds-event:{deployment_id}", f"{event_id} {event.message}")
        return event

    def emit_switchover_events(
        self: SandboxRDSBackend,
        deployment: SandboxBlueGreenDeployment,
        phase: str,
        reason: str = "",
        names: list[tuple[str, str]] | None = None,
    ) -> None:
        """`phase` started | completed | canceled: the deployment's event, one per member (Aurora: the cluster)
        and, under logical replication, the sequence sync. `names`: (blue, green) names before the renames."""
        pairs = deployment.pairs[:1] if isinstance(deployment.pairs[0].blue, DBCluster) else deployment.pairs
        before = names or [(identifier_of(p.blue), identifier_of(p.green)) for p in deployment.pairs]
        cluster = isinstance(deployment.pairs[0].blue, DBCluster)
        member_ids = {
            "started": "RDS-EVENT-0259" if cluster else "RDS-EVENT-0250",
            "completed": "RDS-EVENT-0260" if cluster else "RDS-EVENT-0251",
            "canceled": "RDS-EVENT-0261" if cluster else "RDS-EVENT-0252",
        }
        sequence_ids = {"started": "RDS-EVENT-0311", "completed": "RDS-EVENT-0312"} if cluster else {
            "started": "RDS-EVENT-0307",
            "completed": "RDS-EVENT-0308",
        }  # fmt: skip
        logical = deployment.replication.method == "logical"
        blue, green = before[0]
        if phase == "started":
            self.emit_deployment_event(deployment, "RDS-EVENT-0247", blue=blue, green=green)
        if logical and phase in sequence_ids:
            self.emit_deployment_event(deployment, sequence_ids[phase], blue=blue, green=green)
        for pair, (blue_name, green_name) in zip(pairs, before, strict=False):
            cause = reason.removeprefix("Switchover failed: ").rstrip(".")
            values = {"blue": blue_name, "green": green_name, "old": identifier_of(pair.blue), "reason": cause}
            self.emit_deployment_event(deployment, member_ids[phase], **values)
        if phase == "completed":
            self.emit_deployment_event(deployment, "RDS-EVENT-0248")
        if phase == "canceled":
            self.emit_deployment_event(deployment, "RDS-EVENT-0249")

    def describe_events(
        self: SandboxRDSBackend,
        source_identifier: str | None = None,
        source_type: str | None = None,
        start_time: Any = None,
        end_time: Any = None,
        duration: Any = None,
        event_categories: list[str] | None = None,
        **_: Any,
    ) -> list[Any]:
        if source_identifier is not None and source_type is None:
            raise InvalidParameterCombination("Cannot specify source identifier without source type")
        end = _as_datetime(end_time) or _naive(utcnow())
        start = _as_datetime(start_time)
        if start is None:
            minutes = int(duration) if duration is not None else DEFAULT_DURATION_MINUTES
            start = end - dt.timedelta(minutes=minutes)
        found = []
        for event in self.events:
            if source_type is not None and event.source_type != source_type:
                continue
            if source_identifier is not None and event.source_identifier != source_identifier:
                continue
            if event_categories and not set(event_categories) & set(event.event_categories):
                continue
            if not start <= _naive(event.date) <= end:
                continue
            found.append(event)
        return found
