"""`SandboxClient`: the sandbox's HTTP control surface from another process (stdlib only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class SandboxControlError(RuntimeError):
    pass


class SandboxClient:
    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout

    def config(
        self,
        proxy_mode: str | None = None,
        speed: float | None = None,
        durations: dict[str, float] | None = None,
        **duration_values: float,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"durations": {**(durations or {}), **duration_values}}
        if proxy_mode is not None:
            payload["proxy_mode"] = proxy_mode
        if speed is not None:
            payload["speed"] = speed
        return self._call("config", payload)

    def state(self) -> dict[str, Any]:
        return self._call("state")

    def inject_fault(self, action: str, code: str, count: int = 1, status: int | None = None) -> dict[str, Any]:
        return self._call("inject_fault", {"action": action, "code": code, "count": count, "status": status})

    def fail_next_switchover(self, reason: str, deployment_id: str | None = None) -> dict[str, Any]:
        return self._call("fail_next_switchover", {"reason": reason, "deployment_id": deployment_id})

    def pin_target_health(
        self,
        proxy: str,
        db_id: str,
        state: str = "UNAVAILABLE",
        reason: str = "CONNECTION_FAILED",
        target_group: str = "default",
        description: str | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "pin_target_health",
            {
                "proxy": proxy,
                "db_id": db_id,
                "state": state,
                "reason": reason,
                "target_group": target_group,
                "description": description,
            },
        )

    def clear_faults(self) -> dict[str, Any]:
        return self._call("clear_faults")

    def timeline(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call("timeline", {"since": since})

    def listeners(self) -> dict[str, str]:
        return self._call("listeners")

    def reset(self) -> dict[str, Any]:
        return self._call("reset")

    def iam_policy(self) -> dict[str, Any]:
        return self._call("iam_policy")

    def set_iam_policy(self, policy: dict[str, Any] | None, principal: str | None = None) -> dict[str, Any]:
        return self._call("set_iam_policy", {"policy": policy, "principal": principal})

    def set_replica_lag(self, source: str, seconds: float) -> dict[str, Any]:
        return self._call("set_replica_lag", {"source": source, "seconds": seconds})

    def set_green_status(self, source: str, status: str, progress: int | None = None) -> dict[str, Any]:
        return self._call("set_green_status", {"source": source, "status": status, "progress": progress})

    def degrade_replication(self, source: str, reason: str | None = None) -> dict[str, Any]:
        payload = {"source": source} if reason is None else {"source": source, "reason": reason}
        return self._call("degrade_replication", payload)

    def invalidate_configuration(self, source: str) -> dict[str, Any]:
        return self._call("invalidate_configuration", {"source": source})

    def add_pending_maintenance(self, identifier: str, action: str = "system-update") -> dict[str, Any]:
        return self._call("add_pending_maintenance", {"identifier": identifier, "action": action})

    def set_parameter_apply_status(self, identifier: str, status: str = "pending-reboot") -> dict[str, Any]:
        return self._call("set_parameter_apply_status", {"identifier": identifier, "status": status})

    def set_member_status(self, source: str, member: str, status: str) -> dict[str, Any]:
        return self._call("set_member_status", {"source": source, "member": member, "status": status})

    def fail_provisioning(self, source: str, reason: str | None = None, task: str | None = None) -> dict[str, Any]:
        payload = {"source": source, "task": task, **({} if reason is None else {"reason": reason})}
        return self._call("fail_provisioning", payload)

    def fail_next_restore(
        self, reason: str | None = None, status: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        payload = {"status": status, "name": name, **({} if reason is None else {"reason": reason})}
        return self._call("fail_next_restore", payload)

    def fail_next_proxy_creation(
        self, reason: str | None = None, status: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        payload = {"name": name, **{k: v for k, v in (("reason", reason), ("status", status)) if v is not None}}
        return self._call("fail_next_proxy_creation", payload)

    def _call(self, operation: str, payload: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.endpoint}/_sandbox/{operation}",
            data=json.dumps(payload or {}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SandboxControlError(f"{operation}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc
