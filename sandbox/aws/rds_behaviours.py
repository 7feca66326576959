"""moto's RDS backend extended in-process with the behaviours of Amazon RDS that moto lacks.

The sandbox swaps the class of moto's live us-east-1 backend object for `SandboxRDSBackend`, so moto's own
request handling calls these overrides; other moto backends in the process are untouched.
"""

from __future__ import annotations

from typing import Any

import moto.rds.urls
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import DBCluster, DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

from sandbox.aws import automated_backups, proxy_lifecycle, record_pages, restore_progress
from sandbox.aws.automated_backups import AutomatedBackupsMixin
from sandbox.aws.blue_green import BlueGreenMixin
from sandbox.aws.create_checks import CreateChecksMixin
from sandbox.aws.deletions import DeletionsMixin
from sandbox.aws.engine_versions import EngineVersionsMixin, describe_db_engine_versions_response
from sandbox.aws.events import EventsMixin
from sandbox.aws.green_copies import GreenCopiesMixin
from sandbox.aws.green_readiness import GreenReadinessMixin
from sandbox.aws.maintenance import MaintenanceMixin, describe_pending_maintenance_actions_response
from sandbox.aws.parameter_groups import ParameterGroupsMixin, cluster_members, instance_parameter_groups
from sandbox.aws.proxy_lifecycle import ProxyLifecycleMixin
from sandbox.aws.proxy_targets import ProxyTargetsMixin
from sandbox.aws.replication import ReplicationMixin
from sandbox.aws.restore_progress import RestoreProgressMixin
from sandbox.aws.restores import RestoresMixin
from sandbox.aws.state import SandboxState
from sandbox.aws.target_group_tags import TargetGroupTagsMixin
from sandbox.aws.task_failures import TaskFailuresMixin
from sandbox.aws.upgrades import UpgradesMixin

REGION = "us-east-1"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID


class SandboxDBCluster(DBCluster):
    """A cluster whose status is what the sandbox says (moto flips `creating` to `available` when read)."""

    @property
    def status(self) -> str:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value

    @property
    def db_cluster_members(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return cluster_members(self)


class SandboxRDSBackend(
    RestoresMixin,
    RestoreProgressMixin,
    AutomatedBackupsMixin,
    ProxyLifecycleMixin,
    ProxyTargetsMixin,
    TaskFailuresMixin,
    BlueGreenMixin,
    CreateChecksMixin,
    ReplicationMixin,
    GreenReadinessMixin,
    GreenCopiesMixin,
    EventsMixin,
    MaintenanceMixin,
    ParameterGroupsMixin,
    EngineVersionsMixin,
    UpgradesMixin,
    DeletionsMixin,
    TargetGroupTagsMixin,
    RDSBackend,
):
    sandbox: SandboxState

    @property
    def _url_module(self) -> Any:  # moto finds a backend's URLs next to its class; ours are moto's
        return moto.rds.urls

    def create_db_cluster(self, kwargs: dict[str, Any]) -> DBCluster:
        cluster = super().create_db_cluster(kwargs)
        cluster.__class__ = SandboxDBCluster
        cluster._status = "available"
        return cluster


def rds_backend() -> RDSBackend:
    return rds_backends[ACCOUNT_ID][REGION]


def install(state: SandboxState) -> SandboxRDSBackend:
    """Make moto's us-east-1 RDS backend a SandboxRDSBackend bound to `state` (idempotent, survives resets)."""
    backend = rds_backend()
    if not isinstance(backend, SandboxRDSBackend):
        backend.__class__ = SandboxRDSBackend
    if getattr(backend, "sandbox", None) is not state:
        backend.sandbox = state
    _patch_describe_targets_response()
    _add_missing_responses()
    automated_backups.install()
    restore_progress.install()
    proxy_lifecycle.install()
    record_pages.install()  # last: it pages what the other patches answer
    return backend  # type: ignore[return-value]


def _add_missing_responses() -> None:
    """Actions moto does not implement, and the parameter group apply status it always shows as in-sync."""
    if getattr(RDSResponse, "sandbox_responses_added", False):
        return
    RDSResponse.describe_db_engine_versions = describe_db_engine_versions_response  # type: ignore[attr-defined]
    RDSResponse.describe_pending_maintenance_actions = describe_pending_maintenance_actions_response  # type: ignore[attr-defined]
    DBInstance.db_parameter_group_status_list = property(instance_parameter_groups)  # type: ignore[assignment,method-assign]
    RDSResponse.sandbox_responses_added = True  # type: ignore[attr-defined]


def _patch_describe_targets_response() -> None:
    """moto's response handler drops TargetGroupName; pass it on when the backend is the sandbox's."""
    original = RDSResponse.describe_db_proxy_targets
    if getattr(original, "sandbox_patched", False):
        return

    def describe_db_proxy_targets(self: RDSResponse) -> Any:
        if not isinstance(self.backend, SandboxRDSBackend):
            return original(self)
        from moto.core.responses import ActionResult

        targets = self.backend.describe_db_proxy_targets(
            proxy_name=self.params.get("DBProxyName"),
            target_group_name=self.params.get("TargetGroupName"),
        )
        return ActionResult({"Targets": targets})

    describe_db_proxy_targets.sandbox_patched = True  # type: ignore[attr-defined]
    RDSResponse.describe_db_proxy_targets = describe_db_proxy_targets  # type: ignore[method-assign]
