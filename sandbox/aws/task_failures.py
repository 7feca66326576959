"""A named blue/green provisioning task failing with a reason: fail_provisioning(source, reason, task=...).

fail_provisioning without `task` fails whichever task is under way (sandbox/aws/blue_green.py), which depends on
timing. With `task` (e.g. DB_ENGINE_VERSION_UPGRADE, a major upgrade that green cannot make) the named task runs its
course and ends FAILED instead of COMPLETED: at once if it is under way, when it would have completed if it is
still PENDING, or, when `source` has no deployment yet, in the next deployment created for `source` (so a test can
arm it before the bot creates the deployment). As with any failed task: StatusDetails "Creation failed: <reason>",
RDS-EVENT-0245 "Creation of blue/green deployment failed because <reason>.", no AVAILABLE. Task names are AWS's
(BlueGreenDeploymentTask in the API reference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.rds.models import BlueGreenDeployment

from sandbox.aws.blue_green import CLUSTER_TASKS, INSTANCE_TASKS
from sandbox.aws.faults import CreationFailure
from sandbox.aws.proxy_targets import identifier_of

if TYPE_CHECKING:
    from sandbox.aws.blue_green import SandboxBlueGreenDeployment
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

TASK_NAMES = tuple(dict.fromkeys(INSTANCE_TASKS + CLUSTER_TASKS))
ARMED = "sandbox_failing_task"  # deployment attribute: (task name, reason)


class TaskFailuresMixin:
    """fail_provisioning with a task name; mixed into SandboxRDSBackend ahead of BlueGreenMixin."""

    def fail_provisioning(self: SandboxRDSBackend, source: str, reason: str, task: str | None = None) -> dict[str, Any]:
        if task is None:
            return super().fail_provisioning(source, reason)  # type: ignore[misc]
        if task not in TASK_NAMES:
            raise ValueError(f"task must be one of {', '.join(TASK_NAMES)} (AWS's blue/green task names)")
        try:
            deployment = self.active_deployment_for(source)
        except ValueError:
            self.sandbox.faults.add_creation_failure("deployment_task", CreationFailure(reason, task, source))
            return {"deployment": None, "source": source, "task": task, "armed": "the next deployment of source"}
        return self._arm_task(deployment, task, reason)

    def _arm_task(
        self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, task: str, reason: str
    ) -> dict[str, Any]:
        if deployment.status != "PROVISIONING":
            raise ValueError(f"the deployment is {deployment.status}; a task can fail only while PROVISIONING")
        index = next((i for i, t in enumerate(deployment.tasks) if t.Name == task), None)
        if index is None:
            names = ", ".join(t.Name for t in deployment.tasks)
            raise ValueError(f"the deployment has no task {task} (its tasks: {names})")
        status = deployment.tasks[index].Status
        if status == "IN_PROGRESS":
            return self._fail_task(deployment, index, reason)
        if status != "PENDING":
            raise ValueError(f"task {task} is already {status}")
        setattr(deployment, ARMED, (task, reason))
        return {"deployment": deployment.blue_green_deployment_identifier, "task": task, "armed": "when it completes"}

    def _fail_task(
        self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, index: int, reason: str
    ) -> dict[str, Any]:
        self._set_task(deployment, index, "FAILED")
        deployment.status_details = f"Creation failed: {reason}"
        self.emit_deployment_event(deployment, "RDS-EVENT-0245", reason=reason)
        return {
            "deployment": deployment.blue_green_deployment_identifier,
            "task": deployment.tasks[index].Name,
            "status": deployment.status,
            "status_details": deployment.status_details,
        }

    def create_blue_green_deployment(self: SandboxRDSBackend, bg_kwargs: dict[str, Any]) -> BlueGreenDeployment:
        deployment = super().create_blue_green_deployment(bg_kwargs)  # type: ignore[misc]
        armed = self.sandbox.faults.take_creation_failure("deployment_task", identifier_of(deployment.pairs[0].blue))
        if armed is not None and armed.status is not None:
            self._arm_task(deployment, armed.status, armed.reason)
        return deployment

    def _advance_provisioning(self: SandboxRDSBackend, deployment: SandboxBlueGreenDeployment, index: int) -> None:
        armed = getattr(deployment, ARMED, None)
        if (
            armed is not None
            and 0 < index <= len(deployment.tasks)
            and deployment.status == "PROVISIONING"
            and deployment.tasks[index - 1].Name == armed[0]
            and deployment.tasks[index - 1].Status == "IN_PROGRESS"
        ):
            setattr(deployment, ARMED, None)
            self._fail_task(deployment, index - 1, armed[1])
            return
        super()._advance_provisioning(deployment, index)  # type: ignore[misc]
