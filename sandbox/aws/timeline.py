"""The ordered record of API calls received and state transitions applied."""

from __future__ import annotations

import threading
import time
from typing import Any


class Timeline:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._seq = 0

    def record_call(
        self,
        action: str,
        params: dict[str, Any],
        status: int | None,
        code: str | None,
        t: float | None = None,
        iam: list[dict[str, Any]] | None = None,
    ) -> None:
        """A call answered without reaching moto (refused, or failed by an injected fault). `iam`: what an IAM
        refusal denied (the action and resource)."""
        entry = {"kind": "call", "action": action, "params": params, "status": status, "code": code}
        self._append({**entry, "iam": iam} if iam is not None else entry, t)

    def open_call(self, action: str, params: dict[str, Any], iam: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Record a call as it starts being handled, so that it precedes the transitions it causes. `iam`: the
        authorizations of an enforced IAM policy, each with the statements that allowed it."""
        entry = {"kind": "call", "action": action, "params": params, "status": None, "code": None}
        return self._append({**entry, "iam": iam} if iam is not None else entry, None)

    def close_call(self, entry: dict[str, Any], status: int | None, code: str | None) -> None:
        with self._lock:
            entry["status"], entry["code"] = status, code

    def record_transition(self, resource: str, state: str, t: float | None = None) -> None:
        self._append({"kind": "transition", "resource": resource, "state": state}, t)

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > since]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _append(self, entry: dict[str, Any], t: float | None) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            stored = {"seq": self._seq, "t": time.monotonic() if t is None else t, **entry}
            self._entries.append(stored)
            return stored
