"""Simulated durations, the speed factor, and the ticker that applies due transitions."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

ProxyMode = Literal["legacy", "native"]
PROXY_MODES: tuple[ProxyMode, ...] = ("legacy", "native")


@dataclass(frozen=True)
class Durations:
    """How long each simulated phase lasts, in seconds at speed 1."""

    provisioning_task: float = 2.0
    switchover: float = 3.0
    switchover_guardrail_failure: float = 1.0
    registering: float = 2.0
    native_follow_registering: float = 2.0
    deleting: float = 2.0
    upgrading: float = 3.0
    # Restores and what the rehearsal creates (sandbox/aws/restores.py, restore_progress.py, proxy_lifecycle.py):
    restoring: float = 3.0  # a restored instance or cluster `creating`
    backing_up: float = 1.0  # a restored instance's first backup (`backing-up`) when backups are on
    instance_creating: float = 2.0  # an instance added to a cluster with CreateDBInstance `creating`
    proxy_creating: float = 2.0  # a new proxy `creating`
    proxy_deleting: float = 1.0  # a deleted proxy `deleting`, then gone
    # How long credentials from STS AssumeRole last (sandbox/aws/sts.py); None: what the call asks for
    # (DurationSeconds, default 3600), as AWS grants.
    credential_lifetime: float | None = None

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def updated(self, changes: dict[str, float | None]) -> Durations:
        unknown = set(changes) - set(self.names())
        if unknown:
            raise ValueError(f"unknown durations: {sorted(unknown)}")
        return replace(self, **{k: _seconds(k, v) for k, v in changes.items()})


def _seconds(name: str, value: float | None) -> float | None:
    if value is None and name == "credential_lifetime":
        return None
    seconds = float(value)  # type: ignore[arg-type]
    if seconds < 0:
        raise ValueError("durations must not be negative")
    if seconds == 0 and name == "credential_lifetime":
        raise ValueError("credential_lifetime must be positive, or null to grant what AssumeRole asks for")
    return seconds


@dataclass(frozen=True)
class SandboxConfig:
    proxy_mode: ProxyMode = "legacy"
    speed: float = 1.0
    durations: Durations = field(default_factory=Durations)

    def effective(self, duration_name: str) -> float:
        """Real seconds for a phase: its simulated value divided by the speed factor."""
        return getattr(self.durations, duration_name) / self.speed

    def real_seconds(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.speed

    def updated(
        self,
        proxy_mode: str | None = None,
        speed: float | None = None,
        durations: dict[str, float] | None = None,
    ) -> SandboxConfig:
        config = self
        if proxy_mode is not None:
            if proxy_mode not in PROXY_MODES:
                raise ValueError(f"proxy_mode must be one of {PROXY_MODES}")
            config = replace(config, proxy_mode=proxy_mode)  # type: ignore[arg-type]
        if speed is not None:
            if float(speed) <= 0:
                raise ValueError("speed must be positive")
            config = replace(config, speed=float(speed))
        if durations:
            config = replace(config, durations=config.durations.updated(durations))
        return config

    def as_dict(self) -> dict[str, Any]:
        return {"proxy_mode": self.proxy_mode, "speed": self.speed, "durations": asdict(self.durations)}


@dataclass(order=True)
class _Timer:
    due: float
    order: int
    action: Callable[[float], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Scheduler:
    """Timers keyed on time.monotonic(); callers hold the sandbox lock when scheduling and running."""

    def __init__(self) -> None:
        self._heap: list[_Timer] = []
        self._order = itertools.count()
        self.wake: Callable[[], None] = lambda: None  # told of every new timer (the ticker: it never sleeps past one)

    def after(self, delay: float, action: Callable[[float], None]) -> _Timer:
        """Run `action(now)` once `delay` real seconds have passed."""
        timer = _Timer(time.monotonic() + max(delay, 0.0), next(self._order), action)
        heapq.heappush(self._heap, timer)
        self.wake()
        return timer

    def next_due(self) -> float | None:
        """When the earliest timer is due (time.monotonic()), None without timers."""
        return self._heap[0].due if self._heap else None

    def run_due(self, now: float) -> None:
        while self._heap and self._heap[0].due <= now:
            timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                timer.action(now)

    def clear(self) -> None:
        self._heap.clear()


class Ticker:
    """A daemon thread calling `tick()` until stopped: when what `tick()` returned is due (the time.monotonic() of
    the next timer, or None), soon after `poke()` (a request or a new timer may have changed what is due), at most
    every `interval` seconds for pokes, and at least every `idle_interval` seconds. An idle sandbox (no timers, no
    requests) then wakes a few times a second rather than forty: most of a test suite's time, in every worker."""

    def __init__(self, tick: Callable[[], float | None], interval: float = 0.025, idle_interval: float = 0.1) -> None:
        self._tick = tick
        self._interval = interval
        self._idle_interval = idle_interval
        self._stop = threading.Event()
        self._poked = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poked.set()
        self._thread.join(timeout=5)

    def poke(self) -> None:
        self._poked.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poked.clear()  # before the tick: a poke during it wakes the wait below
            next_due = self._tick()
            ticked = time.monotonic()
            until_due = self._idle_interval if next_due is None else next_due - ticked
            if not self._poked.wait(min(max(until_due, 0.0), self._idle_interval)):
                continue  # something is due, or the idle interval passed
            # Poked: no more often than every `interval`, unless a timer is due sooner.
            rest = min(ticked + self._interval, ticked + max(until_due, 0.0)) - time.monotonic()
            if rest > 0:
                self._stop.wait(rest)
