"""The control surface: the same operations from Python (`SandboxControl`) and over HTTP (`ControlHttpApp`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sandbox.aws.database_controls import DATABASE_OPERATIONS, DatabaseControls
from sandbox.aws.faults import REASON_DESCRIPTIONS, PinnedHealth
from sandbox.aws.proxy_targets import DEFAULT_TARGET_GROUP
from sandbox.aws.rehearsal_controls import REHEARSAL_OPERATIONS, RehearsalControls

if TYPE_CHECKING:
    from sandbox.aws.runtime import Sandbox

TARGET_HEALTH_STATES = ("REGISTERING", "AVAILABLE", "UNAVAILABLE", "UNUSED")


class SandboxControl(DatabaseControls, RehearsalControls):
    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._state = sandbox.state

    def config(
        self,
        proxy_mode: str | None = None,
        speed: float | None = None,
        durations: dict[str, float] | None = None,
        **duration_values: float,
    ) -> dict[str, Any]:
        """Change the personality, the speed or any duration (by name or in `durations`); returns state()."""
        with self._state.lock:
            self._state.config = self._state.config.updated(proxy_mode, speed, {**(durations or {}), **duration_values})
        return self.state()

    def state(self) -> dict[str, Any]:
        with self._state.lock:
            return {
                **self._state.config.as_dict(),
                "endpoint": self._sandbox.endpoint,
                "faults": self._state.faults.as_dict(),
                "listeners": self._sandbox.listeners.addresses(),
            }

    def inject_fault(self, action: str, code: str, count: int = 1, status: int | None = None) -> dict[str, Any]:
        """The next `count` calls of `action` ("*" for any) fail with `code`; code "drop" closes the connection."""
        return self._state.faults.add_api_fault(
            action, code, int(count), None if status is None else int(status)
        ).as_dict()

    def fail_next_switchover(self, reason: str, deployment_id: str | None = None) -> dict[str, Any]:
        self._state.faults.add_guardrail_failure(reason, deployment_id)
        return {"reason": reason, "deployment_id": deployment_id}

    def pin_target_health(
        self,
        proxy: str,
        db_id: str,
        state: str = "UNAVAILABLE",
        reason: str = "CONNECTION_FAILED",
        target_group: str = DEFAULT_TARGET_GROUP,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Show the target for `db_id` behind `proxy` with this health until clear_faults()."""
        if state not in TARGET_HEALTH_STATES:
            raise ValueError(f"state must be one of {TARGET_HEALTH_STATES}")
        pinned = PinnedHealth(
            proxy, target_group, db_id, state, reason, description or REASON_DESCRIPTIONS.get(reason, reason)
        )
        with self._state.lock:
            self._state.faults.pin(pinned)
            self._state.transition(f"proxy-target:{proxy}/{target_group}/{db_id}", f"{state} (pinned {reason})")
        self._sandbox.refresh_routes()
        return pinned.as_dict()

    def clear_faults(self) -> dict[str, Any]:
        with self._state.lock:
            pins = self._state.faults.pins()
            self._state.faults.clear()
            for pin in pins:
                self._state.transition(f"proxy-target:{pin.proxy}/{pin.target_group}/{pin.db_id}", "UNPINNED")
        self._sandbox.refresh_routes()
        return self.state()

    def timeline(self, since: int = 0) -> list[dict[str, Any]]:
        with self._state.lock:
            return self._state.timeline.entries(int(since))

    def listeners(self) -> dict[str, str]:
        return self._sandbox.listeners.addresses()

    def reset(self) -> dict[str, Any]:
        self._sandbox.reset()
        return self.state()

    def iam_policy(self) -> dict[str, Any]:
        """The IAM policy enforced (None when none is) and the principal it is limited to."""
        return self._state.iam.as_dict()

    def set_iam_policy(self, policy: dict[str, Any] | None = None, principal: str | None = None) -> dict[str, Any]:
        """Enforce this IAM policy on every AWS call (only on `principal`'s, a role or user ARN, when given); None
        stops enforcing. Until reset(), which restores the policy given at start. ValueError names what is wrong."""
        if policy is not None and not isinstance(policy, dict):
            raise ValueError("policy must be an IAM policy document (a JSON object), or null to stop enforcing")
        return self._state.iam.set(policy, principal)


class ControlHttpApp:
    """WSGI app for /_sandbox/<operation>: GET with query parameters or POST with a JSON object."""

    OPERATIONS = (
        "config",
        "state",
        "inject_fault",
        "fail_next_switchover",
        "pin_target_health",
        "clear_faults",
        "timeline",
        "listeners",
        "reset",
        "iam_policy",
        "set_iam_policy",
        *DATABASE_OPERATIONS,
        *REHEARSAL_OPERATIONS,
    )

    def __init__(self, control: SandboxControl) -> None:
        self._control = control

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        operation = environ.get("PATH_INFO", "").removeprefix("/_sandbox/").strip("/")
        if operation not in self.OPERATIONS:
            return self._respond(start_response, 404, {"error": f"unknown operation {operation!r}"})
        try:
            kwargs = self._arguments(environ)
            result = getattr(self._control, operation)(**kwargs)
        except (TypeError, ValueError) as exc:
            return self._respond(start_response, 400, {"error": str(exc)})
        return self._respond(start_response, 200, result)

    @staticmethod
    def _arguments(environ: dict[str, Any]) -> dict[str, Any]:
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            payload = json.loads(raw or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            return payload
        return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}

    @staticmethod
    def _respond(start_response: Callable[..., Any], status: int, payload: Any) -> Iterable[bytes]:
        body = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
