"""Injected faults: failing API calls, failing switchover guardrails, pinned target health, failing restores and
proxy creations."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

DROP = "drop"
ANY_ACTION = "*"
DEFAULT_STATUS = {"Throttling": 400, "InternalFailure": 500, "ServiceUnavailable": 503}
TARGET_HEALTH_REASONS = (
    "UNREACHABLE",
    "CONNECTION_FAILED",
    "AUTH_FAILURE",
    "PENDING_PROXY_CAPACITY",
    "INVALID_REPLICATION_STATE",
    "PROMOTED",
)
REASON_DESCRIPTIONS = {
    "UNREACHABLE": "DBProxy Target unreachable due to network or security group issues",
    "CONNECTION_FAILED": "Database connection failed: the proxy could not connect to the database",
    "AUTH_FAILURE": "Proxy does not have any registered credentials: authentication failed",
    "PENDING_PROXY_CAPACITY": "DBProxy Target is waiting for proxy to scale to desired capacity",
    "INVALID_REPLICATION_STATE": "The target is not in a valid replication state",
    "PROMOTED": "The target was promoted",
}


@dataclass
class ApiFault:
    action: str
    code: str
    status: int | None
    remaining: int

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "code": self.code, "status": self.status, "remaining": self.remaining}


@dataclass(frozen=True)
class PinnedHealth:
    proxy: str
    target_group: str
    db_id: str
    state: str
    reason: str
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "proxy": self.proxy,
            "target_group": self.target_group,
            "db_id": self.db_id,
            "state": self.state,
            "reason": self.reason,
            "description": self.description,
        }


@dataclass(frozen=True)
class GuardrailFailure:
    reason: str
    deployment_id: str | None


@dataclass(frozen=True)
class CreationFailure:
    """The next restore or proxy creation (of `name`, or any when None) is accepted and then fails."""

    reason: str
    status: str | None
    name: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "status": self.status, "name": self.name}


class FaultBook:
    """Thread-safe; API faults are consumed by the request thread before the backend lock is taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._api: list[ApiFault] = []
        self._guardrails: list[GuardrailFailure] = []
        self._pins: dict[tuple[str, str, str], PinnedHealth] = {}
        self._creations: dict[str, list[CreationFailure]] = {"restore": [], "proxy": [], "deployment_task": []}

    def add_api_fault(self, action: str, code: str, count: int = 1, status: int | None = None) -> ApiFault:
        if count < 1:
            raise ValueError("count must be at least 1")
        if code != DROP and status is None:
            status = DEFAULT_STATUS.get(code, 400)
        fault = ApiFault(action, code, status, count)
        with self._lock:
            self._api.append(fault)
        return fault

    def take_api_fault(self, action: str) -> ApiFault | None:
        """Consume one use of the first fault matching `action`, if any."""
        with self._lock:
            for fault in self._api:
                if fault.action in (action, ANY_ACTION) and fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._api.remove(fault)
                    return ApiFault(fault.action, fault.code, fault.status, 1)
        return None

    def add_guardrail_failure(self, reason: str, deployment_id: str | None = None) -> None:
        with self._lock:
            self._guardrails.append(GuardrailFailure(reason, deployment_id))

    def take_guardrail_failure(self, deployment_id: str) -> GuardrailFailure | None:
        with self._lock:
            for failure in self._guardrails:
                if failure.deployment_id in (None, deployment_id):
                    self._guardrails.remove(failure)
                    return failure
        return None

    def add_creation_failure(self, kind: str, failure: CreationFailure) -> None:
        """`kind` is "restore", "proxy" or "deployment_task" (status: the task name, name: the source)."""
        with self._lock:
            self._creations[kind].append(failure)

    def take_creation_failure(self, kind: str, name: str) -> CreationFailure | None:
        with self._lock:
            for failure in self._creations[kind]:
                if failure.name in (None, name):
                    self._creations[kind].remove(failure)
                    return failure
        return None

    def pin(self, pinned: PinnedHealth) -> None:
        if pinned.reason not in TARGET_HEALTH_REASONS:
            raise ValueError(f"reason must be one of {TARGET_HEALTH_REASONS}")
        with self._lock:
            self._pins[(pinned.proxy, pinned.target_group, pinned.db_id)] = pinned

    def pinned(self, proxy: str, target_group: str, db_id: str) -> PinnedHealth | None:
        with self._lock:
            return self._pins.get((proxy, target_group, db_id))

    def pins(self) -> list[PinnedHealth]:
        with self._lock:
            return list(self._pins.values())

    def clear(self) -> None:
        with self._lock:
            self._api.clear()
            self._guardrails.clear()
            self._pins.clear()
            for failures in self._creations.values():
                failures.clear()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "api": [f.as_dict() for f in self._api],
                "switchover_guardrails": [
                    {"reason": g.reason, "deployment_id": g.deployment_id} for g in self._guardrails
                ],
                "pinned_targets": [p.as_dict() for p in self._pins.values()],
                "restores": [f.as_dict() for f in self._creations["restore"]],
                "proxy_creations": [f.as_dict() for f in self._creations["proxy"]],
                "deployment_tasks": [f.as_dict() for f in self._creations["deployment_task"]],
            }
