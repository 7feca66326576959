"""State shared by request threads, the ticker, the listeners and the control surface."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sandbox.aws.clock import SandboxConfig, Scheduler
from sandbox.aws.faults import FaultBook
from sandbox.aws.iam_enforcement import IamGuard
from sandbox.aws.sts import SessionTokens
from sandbox.aws.timeline import Timeline


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        # One lock for moto's backends and everything below: request threads and the ticker take it.
        self.lock = threading.RLock()
        self.initial_config = config
        self.config = config
        self.scheduler = Scheduler()
        self.timeline = Timeline()
        self.faults = FaultBook()
        self.tokens = SessionTokens()  # kept across resets: a token's expiry does not change
        self.iam = IamGuard(self.lock)  # the IAM policy enforced on every AWS call, if any

    def after(self, duration_name: str, action: Callable[[float], None]) -> None:
        """Schedule `action(now)` after the named duration, scaled by the current speed."""
        self.scheduler.after(self.config.effective(duration_name), action)

    def after_simulated(self, simulated_seconds: float, action: Callable[[float], None]) -> None:
        self.scheduler.after(self.config.real_seconds(simulated_seconds), action)

    def transition(self, resource: str, state: str, t: float | None = None) -> None:
        self.timeline.record_transition(resource, state, t)
