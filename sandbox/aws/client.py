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
