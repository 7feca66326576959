"""The control surface for the database safety gates: replica lag, green readiness, degraded replication,
INVALID_CONFIGURATION, pending maintenance, parameter group apply status (mixed into `SandboxControl`).

`source` is always the BLUE database or cluster identifier (orders-pg, ledger-aurora); the sandbox finds its
active deployment and green. Each method answers a JSON-able dict saying what it changed; a bad argument raises
ValueError, which the HTTP surface answers with 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.aws.replication import DEFAULT_DEGRADE_REASON

if TYPE_CHECKING:
    from sandbox.aws.runtime import Sandbox
    from sandbox.aws.state import SandboxState

DATABASE_OPERATIONS = (
    "set_replica_lag",
    "set_green_status",
    "degrade_replication",
    "invalidate_configuration",
    "add_pending_maintenance",
    "set_parameter_apply_status",
    "fail_provisioning",
    "set_member_status",
)
DEFAULT_PROVISIONING_FAILURE = "the engine version upgrade of green failed"


class DatabaseControls:
    _sandbox: Sandbox
    _state: SandboxState

    def set_replica_lag(self, source: str, seconds: float) -> dict[str, Any]:
        """Green's replica lag, published at once and every second under the metric AWS documents for the
        engine and replication method (see sandbox/aws/replication.py)."""
        with self._state.lock:
            return self._sandbox.backend.set_replica_lag(source, float(seconds))

    def set_green_status(self, source: str, status: str, progress: int | None = None) -> dict[str, Any]:
        """Every green instance's status, e.g. "storage-optimization" with PercentProgress; "available" ends it."""
        with self._state.lock:
            result = self._sandbox.backend.set_green_status(source, status, None if progress is None else int(progress))
        self._sandbox.refresh_routes()
        return result

    def degrade_replication(self, source: str, reason: str = DEFAULT_DEGRADE_REASON) -> dict[str, Any]:
        """Replication degraded as AWS reports it; the deployment can no longer switch over."""
        with self._state.lock:
            return self._sandbox.backend.degrade_replication(source, reason)

    def invalidate_configuration(self, source: str) -> dict[str, Any]:
        """The deployment goes INVALID_CONFIGURATION, as after green was promoted by hand."""
        with self._state.lock:
            return self._sandbox.backend.invalidate_configuration(source)

    def add_pending_maintenance(self, identifier: str, action: str = "system-update") -> dict[str, Any]:
        """DescribePendingMaintenanceActions lists `action` for that instance or cluster from now on."""
        with self._state.lock:
            return self._sandbox.backend.add_pending_maintenance(identifier, action)

    def set_member_status(self, source: str, member: str, status: str) -> dict[str, Any]:
        """One SwitchoverDetails member (named by its blue identifier) reported in `status` (AWS's enum)."""
        with self._state.lock:
            return self._sandbox.backend.set_member_status(source, member, status)

    def fail_provisioning(
        self, source: str, reason: str = DEFAULT_PROVISIONING_FAILURE, task: str | None = None
    ) -> dict[str, Any]:
        """While green is provisioned: the task under way FAILED, the deployment never becomes AVAILABLE. With `task`
        (e.g. DB_ENGINE_VERSION_UPGRADE) that task fails, armed ahead if need be (sandbox/aws/task_failures.py)."""
        with self._state.lock:
            return self._sandbox.backend.fail_provisioning(source, reason, task)

    def set_parameter_apply_status(self, identifier: str, status: str = "pending-reboot") -> dict[str, Any]:
        """An instance's parameter group apply status, or every member's cluster parameter group status."""
        with self._state.lock:
            return self._sandbox.backend.set_parameter_apply_status(identifier, status)
