"""The step catalogue: every step kind a plan may name, mapped to the class that runs it.

Listed here explicitly, so what the runner can run is visible in one place and does not depend on which modules
happen to have been imported. `tests/test_step_catalogue.py` checks that every kind a plan can produce is listed.
"""

from __future__ import annotations

from bot.errors import BadRequest
from bot.workflow.steps.approval import ApprovalGate, MaintenanceWindowGate
from bot.workflow.steps.base import Step
from bot.workflow.steps.blue_green import (
    CreateDeployment,
    DeleteDeployment,
    LocateDeployment,
    PreflightCreate,
    PreflightSwitchover,
    Switchover,
    WaitDeploymentAvailable,
    WaitDeploymentGone,
)
from bot.workflow.steps.cleanup import DeleteOldBlue, DeleteOldMembers, WaitOldBlueGone
from bot.workflow.steps.drift import DriftReportStep
from bot.workflow.steps.engine_upgrade import ModifyGreenVersion, WaitGreenVersion
from bot.workflow.steps.proxy_targets import Detach, EnsureRegistered, Reattach, VerifyNativeTargets
from bot.workflow.steps.rehearsal import (
    CreateCloneProxies,
    RehearseSwitchover,
    RestoreClone,
    TeardownRehearsal,
    WaitCloneAvailable,
)
from bot.workflow.steps.rehearsal_gates import RehearsalPrerequisites, RehearsalReadiness

STEPS: tuple[type[Step], ...] = (
    # gates
    ApprovalGate,
    MaintenanceWindowGate,
    # blue/green deployments
    PreflightCreate,
    CreateDeployment,
    WaitDeploymentAvailable,
    PreflightSwitchover,
    Switchover,
    LocateDeployment,
    DeleteDeployment,
    WaitDeploymentGone,
    # engine upgrade on green
    ModifyGreenVersion,
    WaitGreenVersion,
    # proxy targets
    Detach,
    Reattach,
    VerifyNativeTargets,
    EnsureRegistered,
    # after a switchover
    DriftReportStep,
    DeleteOldMembers,
    DeleteOldBlue,
    WaitOldBlueGone,
    # rehearsals on a disposable clone
    RestoreClone,
    WaitCloneAvailable,
    CreateCloneProxies,
    RehearsalPrerequisites,
    RehearsalReadiness,
    RehearseSwitchover,
    TeardownRehearsal,
)


def _catalogue(steps: tuple[type[Step], ...]) -> dict[str, type[Step]]:
    catalogue: dict[str, type[Step]] = {}
    for cls in steps:
        if cls.kind in catalogue:
            raise ValueError(f"duplicate step kind {cls.kind}")
        catalogue[cls.kind] = cls
    return catalogue


CATALOGUE: dict[str, type[Step]] = _catalogue(STEPS)


def lookup(kind: str) -> Step:
    """A fresh instance of the step registered for `kind`; BadRequest if no step has that kind."""
    try:
        return CATALOGUE[kind]()
    except KeyError:
        raise BadRequest(f"unknown step kind {kind!r} (run created by a newer version of the bot?)") from None


__all__ = ["CATALOGUE", "STEPS", "lookup"]
