"""RDS events of DB instances, DB clusters, DB snapshots and proxies, readable with DescribeEvents.

Ids, categories and messages are AWS's (RDS User Guide, "Amazon RDS event categories and event messages": "DB
instance events", "DB cluster events", "DB snapshot events", "RDS Proxy events"). SourceType is AWS's enum value
(`db-instance`, `db-cluster`, `db-snapshot`, `db-proxy`), SourceIdentifier the resource's name. Each event is also on
the timeline as `rds-event:<source>` -> `RDS-EVENT-nnnn <message>`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from moto.core.utils import utcnow

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

# id -> (category, message template)
EVENTS: dict[str, tuple[str, str]] = {
    "RDS-EVENT-0001": ("backup", "Backing up DB instance."),
    "RDS-EVENT-0002": ("backup", "Finished DB instance backup."),
    "RDS-EVENT-0005": ("creation", "DB instance created."),
    "RDS-EVENT-0019": ("restoration", "Restored from DB instance {source} to {target}."),
    "RDS-EVENT-0031": (
        "failure",
        "DB instance put into {state} state. RDS recommends that you initiate a point-in-time-restore.",
    ),
    "RDS-EVENT-0043": ("restoration", "Restored from snapshot {snapshot}."),
    "RDS-EVENT-0278": ("failure", "The DB instance creation failed. {message}"),
    "RDS-EVENT-0170": ("creation", "DB cluster created."),
    "RDS-EVENT-0354": ("failure", "You can't create the DB cluster because of incompatible resources. {message}."),
    "RDS-EVENT-0203": ("creation", "RDS created DB proxy {name}."),
    "RDS-EVENT-0205": ("deletion", "RDS deleted DB proxy {name}."),
    "RDS-EVENT-0243": (
        "failure",
        "RDS failed to provision capacity for proxy {name} because there aren't enough IP addresses available in "
        "your subnets: {subnets}. To fix the issue, make sure that your subnets have the minimum number of unused "
        "IP addresses as recommended in the RDS Proxy documentation.",
    ),
}


@dataclass
class ResourceEvent:
    """Duck-types moto's rds Event for its DescribeEvents serialisation."""

    event_id: str
    source_identifier: str
    source_arn: str
    message: str
    event_categories: list[str]
    source_type: str
    date: dt.datetime = field(default_factory=utcnow)


def emit(
    backend: SandboxRDSBackend, source_type: str, source_id: str, arn: str, event_id: str, /, **values: str
) -> ResourceEvent:
    category, template = EVENTS[event_id]
    event = ResourceEvent(event_id, source_id, arn, template.format(**values), [category], source_type)
    backend.events.append(event)  # type: ignore[arg-type]
    backend.sandbox.transition(f"rds-event:{source_id}", f"{event_id} {event.message}")
    return event
