"""Blue/green deployments that provision, switch over, fail and delete over time, like Amazon RDS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto.core.utils import utcnow
from moto.rds.exceptions import BlueGreenDeploymentAlreadyExistsFault
from moto.rds.models import BlueGreenDeployment, BlueGreenDeploymentTask, DBCluster, DBInstance, SwitchoverDetails

from sandbox.aws import errors
from sandbox.aws.proxy_targets import identifier_of

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend
    from sandbox.aws.replication import Replication

INSTANCE_TASKS = (
    "CREATING_READ_REPLICA_OF_SOURCE",
    "DB_ENGINE_VERSION_UPGRADE",
    "CONFIGURE_BACKUPS",
    "CREATING_TOPOLOGY_OF_SOURCE",
)
CLUSTER_TASKS = (
    "CREATING_READ_REPLICA_OF_SOURCE",
    "DB_ENGINE_VERSION_UPGRADE",
    "CREATE_DB_INSTANCES_FOR_CLUSTER",
    "CREATE_CUSTOM_ENDPOINTS",
)
DEFAULT_SWITCHOVER_TIMEOUT = 300
MIN_SWITCHOVER_TIMEOUT = 30
MAX_SWITCHOVER_TIMEOUT = 3600
ACTIVE_STATES = ("PROVISIONING", "AVAILABLE", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_FAILED", "INVALID_CONFIGURATION")
ARN_PATTERN = re.compile(r"^arn:[\w-]+:rds:[\w-]+:\d{12}:(db|cluster):([\w-]+)$")


def set_status(resource: DBInstance | DBCluster, status: str) -> None:
    if isinstance(resource, DBCluster):
        resource._status = status
    else:
        resource.status = status


def current_status(resource: DBInstance | DBCluster) -> str:
    return resource._status if isinstance(resource, DBCluster) else resource.status


def timeline_name(resource: DBInstance | DBCluster) -> str:
    kind = "cluster" if isinstance(resource, DBCluster) else "db"
    return f"{kind}:{identifier_of(resource)}"


@dataclass
class MemberPair:
    blue: DBInstance | DBCluster
    green: DBInstance | DBCluster
    status: str = "PROVISIONING"

    @property
    def detail(self) -> SwitchoverDetails:
        return SwitchoverDetails(self.blue.arn, self.green.arn, self.status)


class SandboxBlueGreenDeployment(BlueGreenDeployment):
    """moto's deployment (which creates green) plus member pairs, real tasks and a switchover timeout."""

    replication: Replication  # set by the backend right after creation (sandbox/aws/replication.py)

    def __init__(self, backend: SandboxRDSBackend, **kwargs: Any) -> None:
        self.pairs: list[MemberPair] = []
        super().__init__(backend, **kwargs)
        self.switchover_timeout = DEFAULT_SWITCHOVER_TIMEOUT
        source = backend.resolve_arn(self.source)
        green = backend.resolve_arn(self.target)
        self.pairs = [MemberPair(source, green)]
        if isinstance(source, DBCluster) and isinstance(green, DBCluster):
            green_members = list(green.members)
            for blue_member in source.members:
                prefix = f"{blue_member.db_instance_identifier}-green-"
                match = next(m for m in green_members if m.db_instance_identifier.startswith(prefix))
                match.is_cluster_writer = blue_member.is_cluster_writer
                self.pairs.append(MemberPair(blue_member, match))
        elif isinstance(source, DBInstance) and isinstance(green, DBInstance):
            for replica_id in list(source.replicas):
                replica = backend.databases.get(replica_id)
                if replica is not None:
                    self.pairs.append(MemberPair(replica, backend.create_green_replica(replica, green, self)))
        task_names = CLUSTER_TASKS if isinstance(source, DBCluster) else INSTANCE_TASKS
        self.tasks = [BlueGreenDeploymentTask(name, "PENDING") for name in task_names]
        self.set_status(self.SupportedStates.PROVISIONING)

    def set_status(self, value: BlueGreenDeployment.SupportedStates) -> None:
        self.status = value.name

    @property
    def switchover_details(self) -> list[SwitchoverDetails]:
        return [pair.detail for pair in self.pairs]

    @property
    def timeline_name(self) -> str:
        return f"blue-green:{self.blue_green_deployment_identifier}"

    def involves(self, resource: DBInstance | DBCluster) -> bool:
        return any(resource is pair.blue or resource is pair.green for pair in self.pairs)


class BlueGreenMixin:
    """Overrides of moto's blue/green methods; mixed into SandboxRDSBackend."""

    def resolve_arn(self: SandboxRDSBackend, arn: str) -> DBInstance | DBCluster:
        match = ARN_PATTERN.match(arn or "")
        if match is None:
            raise errors.invalid_parameter_value(f"The source ARN {arn} is not a valid DB instance or cluster ARN.")
        kind, identifier = match.groups()
        if kind == "cluster":
            cluster = self.clusters.get(identifier)
            if cluster is None:
                raise errors.cluster_not_found(identifier)
            return cluster
        instance = self.databases.get(identifier)
        if instance is None:
            raise errors.instance_not_found(identifier)
        return instance

    def deployments(self: SandboxRDSBackend) -> list[SandboxBlueGreenDeployment]:
        return [d for d in self.blue_green_deployments.values() if isinstance(d, SandboxBlueGreenDeployment)]

    def switchover_in_progress_for(self: SandboxRDSBackend, resource: DBInstance | DBCluster) -> bool:
        return any(d.status == "SWITCHOVER_IN_PROGRESS" and d.involves(resource) for d in self.deployments())

    def refuse_proxy_after_deployment(self: SandboxRDSBackend, resource: DBInstance | DBCluster) -> None:
        """Native personality: a proxy cannot be attached to a source once its deployment exists."""
        if self.sandbox.config.proxy_mode != "native":
            return
        cluster = getattr(resource, "cluster", None)
        for deployment in self.deployments():
            source = deployment.pairs[0].blue
            if deployment.status in ACTIVE_STATES and (source is resource or source is cluster):
                message = (
                    f"{identifier_of(resource)} can't be added to a proxy after the blue/green deployment "
                    f"{deployment.blue_green_deployment_identifier} was created for it."
                )
                if isinstance(resource, DBCluster):
                    raise errors.invalid_cluster_state(message)
                raise errors.invalid_instance_state(message)

    def create_green_replica(
        self: SandboxRDSBackend, blue_replica: DBInstance, green_primary: DBInstance, deployment: Any
    ) -> DBInstance:
        replica = self.create_db_instance_read_replica(
            {
                "db_instance_identifier": deployment._generate_green_id(blue_replica.db_instance_identifier),
                "source_db_instance_identifier": green_primary.db_instance_identifier,
                "db_instance_class": blue_replica.db_instance_class,
            }
        )
        return replica

    def create_blue_green_deployment(self: SandboxRDSBackend, bg_kwargs: dict[str, Any]) -> BlueGreenDeployment:
        name = bg_kwargs.get("blue_green_deployment_name", "")
        if any(d.blue_green_deployment_name == name for d in self.blue_green_deployments.values()):
            raise BlueGreenDeploymentAlreadyExistsFault(name)
        source = self.resolve_arn(bg_kwargs.get("source", ""))
        kind = "cluster" if isinstance(source, DBCluster) else "instance"
        if current_status(source) != "available":
            message = f"The source {identifier_of(source)} is not in the available state."
            raise errors.invalid_cluster_state(message) if kind == "cluster" else errors.invalid_instance_state(message)
        proxies = self.proxies_tracking(source)
        if proxies and self.sandbox.config.proxy_mode == "legacy":
            raise errors.source_behind_proxy(kind, identifier_of(source), proxies[0])
        self.check_create_prerequisites(source, bg_kwargs)

        deployment = SandboxBlueGreenDeployment(self, **bg_kwargs)
        self.blue_green_deployments[deployment.blue_green_deployment_identifier] = deployment
        self.copy_blue_settings(deployment)
        self.start_replication(deployment, bg_kwargs.get("target_engine_version") or None)
        self.sandbox.transition(deployment.timeline_name, "PROVISIONING")
        for pair in deployment.pairs:
            self._set_resource_status(pair.green, "creating")
        self._advance_provisioning(deployment, 0)
        return deployment

    def _set_resource_status(self: SandboxRDSBackend, resource: DBInstance | DBCluster, status: str) -> None:
        if current_status(resource) != status:
            set_status(resource, status)
            self.sandbox.transition(timeline_name(resource), status)

    def _advance_provisioning(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, index: int) -> None:
        """Start task `index`; when it completes, start the next; after the last, the deployment is AVAILABLE."""
        if deployment.blue_green_deployment_identifier not in self.blue_green_deployments:
            return
        if deployment.status != "PROVISIONING":  # INVALID_CONFIGURATION while provisioning, say
            return
        if any(task.Status == "FAILED" for task in deployment.tasks):  # fail_provisioning: it never completes
            return
        if index > 0:
            self._set_task(deployment, index - 1, "COMPLETED")
        if index == len(deployment.tasks):
            for pair in deployment.pairs:
                pair.status = "AVAILABLE"
                self._set_resource_status(pair.green, self.green_ready_status(pair.green))
            self._set_deployment_status(deployment, "AVAILABLE")
            self.on_deployment_available(deployment)
            return
        self._set_task(deployment, index, "IN_PROGRESS")
        self.sandbox.after("provisioning_task", lambda _now: self._advance_provisioning(deployment, index + 1))

    def fail_provisioning(self: SandboxRDSBackend, source: str, reason: str) -> dict[str, Any]:
        """The task under way FAILED: provisioning stops short of AVAILABLE, StatusDetails gives the reason and
        RDS-EVENT-0245 says creation failed. The deployment keeps its PROVISIONING status (the API documents a task
        status FAILED; which deployment status AWS shows then is unverified)."""
        deployment = self.active_deployment_for(source)
        if deployment.status != "PROVISIONING":
            raise ValueError(f"the deployment is {deployment.status}; provisioning can fail only while PROVISIONING")
        index = next((i for i, t in enumerate(deployment.tasks) if t.Status == "IN_PROGRESS"), 0)
        self._set_task(deployment, index, "FAILED")
        deployment.status_details = f"Creation failed: {reason}"
        self.emit_deployment_event(deployment, "RDS-EVENT-0245", reason=reason)
        return {
            "deployment": deployment.blue_green_deployment_identifier,
            "task": deployment.tasks[index].Name,
            "status": deployment.status,
            "status_details": deployment.status_details,
        }

    def _set_task(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, index: int, status: str) -> None:
        task = deployment.tasks[index]
        task.Status = status
        self.sandbox.transition(f"{deployment.timeline_name}/task/{task.Name}", status)

    def _set_deployment_status(
        self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, status: str, details: str | None = None
    ) -> None:
        deployment.status = status
        if details is not None:
            deployment.status_details = details
        self.sandbox.transition(deployment.timeline_name, status)

    def _deployment(self: SandboxRDSBackend, deployment_id: str) -> SandboxBlueGreenDeployment:
        deployment = self.blue_green_deployments.get(deployment_id)
        if not isinstance(deployment, SandboxBlueGreenDeployment):
            raise errors.deployment_not_found(deployment_id)
        return deployment

    def switchover_blue_green_deployment(
        self: SandboxRDSBackend, blue_green_deployment_identifier: str, switchover_timeout: int | None = None
    ) -> BlueGreenDeployment:
        deployment = self._deployment(blue_green_deployment_identifier)
        timeout = DEFAULT_SWITCHOVER_TIMEOUT if switchover_timeout is None else int(switchover_timeout)
        if not MIN_SWITCHOVER_TIMEOUT <= timeout <= MAX_SWITCHOVER_TIMEOUT:
            raise errors.invalid_parameter_value(
                f"SwitchoverTimeout must be between {MIN_SWITCHOVER_TIMEOUT} and {MAX_SWITCHOVER_TIMEOUT} seconds."
            )
        if deployment.status != "AVAILABLE":
            raise errors.invalid_deployment_state(
                f"The blue/green deployment {blue_green_deployment_identifier} can't be switched over because "
                f"its status is {deployment.status}; it must be AVAILABLE."
            )
        self.refuse_unready_switchover(deployment)
        deployment.switchover_timeout = timeout
        self._set_deployment_status(deployment, "SWITCHOVER_IN_PROGRESS", "Switchover in progress")
        self.sandbox.after_simulated(0, lambda _now: self._set_pairs(deployment, "SWITCHOVER_IN_PROGRESS"))
        self.emit_switchover_events(deployment, "started")

        injected = self.sandbox.faults.take_guardrail_failure(deployment.blue_green_deployment_identifier)
        guardrail = injected.reason if injected is not None else self.lag_guardrail(deployment, timeout)
        if guardrail is not None:
            self.sandbox.after(
                "switchover_guardrail_failure",
                lambda _now: self._fail_switchover(deployment, f"Switchover failed: {guardrail}"),
            )
        elif self.sandbox.config.durations.switchover > timeout:
            self.sandbox.after_simulated(
                timeout,
                lambda _now: self._fail_switchover(
                    deployment,
                    f"Switchover timed out after {timeout} seconds. All changes were rolled back.",
                ),
            )
        else:
            self.sandbox.after("switchover", lambda _now: self._complete_switchover(deployment))
        return deployment

    def _set_pairs(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, status: str) -> None:
        if deployment.status == "SWITCHOVER_IN_PROGRESS" or status != "SWITCHOVER_IN_PROGRESS":
            for pair in deployment.pairs:
                pair.status = status

    def _fail_switchover(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, details: str) -> None:
        if deployment.status != "SWITCHOVER_IN_PROGRESS":
            return
        self._set_pairs(deployment, "SWITCHOVER_FAILED")
        self._set_deployment_status(deployment, "SWITCHOVER_FAILED", details)
        self.emit_switchover_events(deployment, "canceled", reason=details)

    def _complete_switchover(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment) -> None:
        if deployment.status != "SWITCHOVER_IN_PROGRESS":
            return
        original_names = [identifier_of(pair.blue) for pair in deployment.pairs]
        green_names = [identifier_of(pair.green) for pair in deployment.pairs]
        self.carry_tags_over(deployment)
        for pair in deployment.pairs:
            self.rename(pair.blue, self._old_name(pair.blue))
        for pair, name in zip(deployment.pairs, original_names, strict=True):
            self.rename(pair.green, name)
        self.emit_switchover_events(deployment, "completed", names=list(zip(original_names, green_names, strict=True)))
        deployment.source = deployment.pairs[0].blue.arn
        deployment.target = deployment.pairs[0].green.arn
        self._set_pairs(deployment, "SWITCHOVER_COMPLETED")
        self._set_deployment_status(deployment, "SWITCHOVER_COMPLETED", "Switchover completed")
        if self.sandbox.config.proxy_mode == "native":
            self.follow_switchover(deployment.pairs[0].blue, deployment.pairs[0].green)

    def _old_name(self: SandboxRDSBackend, resource: DBInstance | DBCluster) -> str:
        taken = self.clusters if isinstance(resource, DBCluster) else self.databases
        n = 1
        while f"{identifier_of(resource)}-old{n}" in taken:
            n += 1
        return f"{identifier_of(resource)}-old{n}"

    def rename(self: SandboxRDSBackend, resource: DBInstance | DBCluster, new_name: str) -> None:
        """Rename a database in place; a cluster's members keep their membership, replicas their primary."""
        old_name = identifier_of(resource)
        old_timeline_name = timeline_name(resource)
        if isinstance(resource, DBCluster):
            members = [db for db in self.databases.values() if getattr(db, "cluster", None) is resource]
            del self.clusters[old_name]
            resource.db_cluster_identifier = new_name
            self.clusters[new_name] = resource
            for member in members:
                member.db_cluster_identifier = new_name
        else:
            del self.databases[old_name]
            resource.db_instance_identifier = new_name
            self.databases[new_name] = resource
            for other in self.databases.values():
                if other.source_db_instance_identifier == old_name and other.is_replica:
                    other.source_db_instance_identifier = new_name
                if old_name in other.replicas:
                    other.replicas[other.replicas.index(old_name)] = new_name
        self.sandbox.transition(old_timeline_name, f"RENAMED {new_name}")

    def delete_blue_green_deployment(
        self: SandboxRDSBackend, blue_green_deployment_identifier: str, delete_target: bool = False
    ) -> BlueGreenDeployment:
        deployment = self._deployment(blue_green_deployment_identifier)
        if delete_target and deployment.status == "SWITCHOVER_COMPLETED":
            raise errors.invalid_deployment_state(
                f"The blue/green deployment {blue_green_deployment_identifier} can't be deleted with "
                "DeleteTarget after its switchover completed: the target is now the production database."
            )
        if deployment.status in ("SWITCHOVER_IN_PROGRESS", "DELETING"):
            raise errors.invalid_deployment_state(
                f"The blue/green deployment {blue_green_deployment_identifier} can't be deleted while its "
                f"status is {deployment.status}."
            )
        if delete_target:
            self.refuse_protected_targets(deployment)
        deployment.deletion_time = utcnow()
        self._set_deployment_status(deployment, "DELETING")
        if delete_target:
            for pair in deployment.pairs:
                self._set_resource_status(pair.green, "deleting")
        self.sandbox.after("deleting", lambda _now: self._finish_delete(deployment, bool(delete_target)))
        return deployment

    def _finish_delete(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, delete_target: bool) -> None:
        self.blue_green_deployments.pop(deployment.blue_green_deployment_identifier, None)
        self.sandbox.transition(deployment.timeline_name, "DELETED")
        self.emit_deployment_event(deployment, "RDS-EVENT-0246")
        if not delete_target:
            return
        greens = [pair.green for pair in deployment.pairs]
        # Replicas before their primary, members before their cluster; AWS deletes them itself, so at once here.
        for green in sorted(greens, key=lambda r: (isinstance(r, DBCluster), not getattr(r, "is_replica", False))):
            self.remove_now(green)
