"""DescribePendingMaintenanceActions (moto has none): actions the control surface adds to an instance or cluster.

Shapes from the API reference (ResourcePendingMaintenanceActions, PendingMaintenanceAction): each resource is named
by its ARN in ResourceIdentifier; the request takes ResourceIdentifier (an ARN) or Filters `db-instance-id` /
`db-cluster-id` (identifiers or ARNs). An action stays with its database: it follows a switchover's renames.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto.core.responses import PaginatedResult
from moto.core.utils import utcnow
from moto.rds.models import DBCluster, DBInstance

from sandbox.aws import errors

if TYPE_CHECKING:
    from moto.rds.responses import RDSResponse

    from sandbox.aws.rds_behaviours import SandboxRDSBackend

ACTION_DESCRIPTIONS = {
    "system-update": "New Operating System update is available",
    "db-upgrade": "Minor version upgrade available",
    "hardware-maintenance": "Hardware maintenance",
    "ca-certificate-rotation": "CA certificate rotation",
}
ATTRIBUTE = "sandbox_pending_maintenance"


@dataclass(frozen=True)
class PendingAction:
    action: str
    description: str
    added: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "Action": self.action,
            "Description": self.description,
            "AutoAppliedAfterDate": self.added + dt.timedelta(days=14),
            "CurrentApplyDate": self.added + dt.timedelta(days=14),
        }


def pending_of(resource: DBInstance | DBCluster) -> list[PendingAction]:
    return list(getattr(resource, ATTRIBUTE, ()))


def forget_pending(resource: DBInstance) -> None:
    """A read replica is a shallow copy of its primary in moto: it must not share the primary's list."""
    if ATTRIBUTE in vars(resource):
        setattr(resource, ATTRIBUTE, [])


def _arn(resource: DBInstance | DBCluster) -> str:
    return resource.db_cluster_arn if isinstance(resource, DBCluster) else resource.db_instance_arn


class MaintenanceMixin:
    """Pending maintenance actions; mixed into SandboxRDSBackend."""

    def add_pending_maintenance(self: SandboxRDSBackend, identifier: str, action: str) -> dict[str, Any]:
        resource: DBInstance | DBCluster | None = self.databases.get(identifier) or self.clusters.get(identifier)
        if resource is None:
            raise ValueError(f"no DB instance or cluster named {identifier!r}")
        pending = PendingAction(action, ACTION_DESCRIPTIONS.get(action, action), utcnow())
        setattr(resource, ATTRIBUTE, [*pending_of(resource), pending])
        self.sandbox.transition(f"maintenance:{identifier}", f"pending {action}")
        return {"resource": _arn(resource), "action": action, "description": pending.description}

    def describe_pending_maintenance_actions(
        self: SandboxRDSBackend, resource_identifier: str | None, filters: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        resources: list[DBInstance | DBCluster] = [*self.databases.values(), *self.clusters.values()]
        if resource_identifier:
            resources = [r for r in resources if _arn(r) == resource_identifier]
            if not resources:
                raise errors.fault("ResourceNotFoundFault", f"The resource {resource_identifier} could not be found.")
        for item in filters:
            wanted = set(item.get("Values", []))
            kind = DBCluster if item.get("Name") == "db-cluster-id" else DBInstance
            if item.get("Name") not in ("db-cluster-id", "db-instance-id"):
                raise errors.invalid_parameter_value(f"Unrecognized filter name: {item.get('Name')}")
            resources = [r for r in resources if isinstance(r, kind) and ({_arn(r), _identifier(r)} & wanted)]
        return [
            {
                "ResourceIdentifier": _arn(resource),
                "PendingMaintenanceActionDetails": [p.as_dict() for p in pending_of(resource)],
            }
            for resource in resources
            if pending_of(resource)
        ]


def _identifier(resource: DBInstance | DBCluster) -> str:
    return resource.db_cluster_identifier if isinstance(resource, DBCluster) else resource.db_instance_identifier


def describe_pending_maintenance_actions_response(response: RDSResponse) -> PaginatedResult:
    """The RDSResponse handler moto lacks (installed by sandbox.aws.rds_behaviours)."""
    backend: SandboxRDSBackend = response.backend  # type: ignore[assignment]
    filters = response.params.get("Filters") or []
    actions = backend.describe_pending_maintenance_actions(
        response.params.get("ResourceIdentifier"),
        [{"Name": f["Name"], "Values": list(f["Values"])} for f in filters],
    )
    return PaginatedResult({"PendingMaintenanceActions": actions})
