"""`Sandbox`: moto's server with the RDS behaviours, the ticker, proxy listeners, metrics and the fleet."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.secretsmanager.models import secretsmanager_backends

from sandbox.aws.clock import Durations, SandboxConfig, Ticker
from sandbox.aws.control import ControlHttpApp, SandboxControl
from sandbox.aws.fleet import create_fleet
from sandbox.aws.iam import install as install_iam
from sandbox.aws.metrics import publish_proxy_metrics
from sandbox.aws.moto_speedups import install as install_moto_speedups
from sandbox.aws.proxy_listeners import ProxyListeners
from sandbox.aws.rds_behaviours import ACCOUNT_ID, REGION, SandboxRDSBackend, install, rds_backend
from sandbox.aws.server import SandboxMiddleware, SandboxServer
from sandbox.aws.state import SandboxState
from sandbox.aws.sts import install as install_sts

METRICS_INTERVAL = 1.0
logger = logging.getLogger(__name__)


class Sandbox:
    """moto keeps its backends in process-wide globals, so only one Sandbox may run per process."""

    _running: Sandbox | None = None

    def __init__(
        self,
        port: int = 0,
        proxy_mode: str = "legacy",
        speed: float = 1.0,
        fleet: bool = True,
        host: str = "127.0.0.1",
        durations: Durations | None = None,
        iam_policy: str | Path | Mapping[str, Any] | None = None,
        iam_principal: str | None = None,
    ) -> None:
        """`iam_policy` (a policy dict or a JSON file's path): enforce it on every AWS call, or only on calls signed
        by `iam_principal` (a role or user ARN) when given (`sandbox/aws/iam_enforcement.py`)."""
        config = SandboxConfig().updated(proxy_mode=proxy_mode, speed=speed)
        if durations is not None:
            config = SandboxConfig(config.proxy_mode, config.speed, durations)
        self.state = SandboxState(config)
        self.state.iam.set(iam_policy, iam_principal, initial=True)
        self.host = host
        self.fleet = fleet
        self.listeners = ProxyListeners(host)
        self.control = SandboxControl(self)
        self._server = SandboxServer(host, port, self._wrap)
        self._ticker = Ticker(self._tick)
        self.state.scheduler.wake = self._ticker.poke
        self._last_metrics = 0.0
        self._started = False

    @property
    def endpoint(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def backend(self) -> SandboxRDSBackend:
        return install(self.state)

    def start(self) -> Sandbox:
        if Sandbox._running is not None:
            raise RuntimeError(f"a Sandbox is already running in this process at {Sandbox._running.endpoint}")
        Sandbox._running = self
        install_moto_speedups()
        try:
            with self.state.lock:
                self._rebuild_backends()
                self.state.timeline.clear()
            self._server.start()
        except BaseException:
            Sandbox._running = None
            raise
        self.refresh_routes()
        self.listeners.start()
        self._ticker.start()
        self._started = True
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._ticker.stop()
        self._server.stop()
        self.listeners.stop()
        self._started = False
        Sandbox._running = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Fresh fleet, the configuration given at construction (its IAM policy too), no faults, empty timeline."""
        with self.state.lock:
            self.state.iam.reset()
            self.state.scheduler.clear()
            self.state.faults.clear()
            self.state.config = self.state.initial_config
            self._rebuild_backends()
            self.state.timeline.clear()
        self.refresh_routes()

    def refresh_routes(self) -> dict[str, str | None]:
        """Recompute where each proxy routes and apply it to the listeners now (the ticker also does)."""
        with self.state.lock:
            backend = install(self.state)
            routes = {name: backend.available_target(name) for name in backend.db_proxies}
        self.listeners.sync(routes)
        return routes

    def _rebuild_backends(self) -> None:
        rds_backend().reset()
        cloudwatch_backends[ACCOUNT_ID][REGION].reset()
        secretsmanager_backends[ACCOUNT_ID][REGION].reset()
        backend = install(self.state)
        install_sts(self.state)
        install_iam()
        if self.fleet:
            create_fleet(backend)

    def _wrap(self, moto_app):  # type: ignore[no-untyped-def]
        return SandboxMiddleware(
            moto_app,
            self.state,
            lambda: install(self.state),
            ControlHttpApp(self.control),
            after_request=self._ticker.poke,
        )

    def _tick(self) -> float | None:
        """Apply what is due, prune targets, sync the listeners, publish metrics every METRICS_INTERVAL; returns when
        the next timer or publication is due (time.monotonic())."""
        try:
            with self.state.lock:
                backend = install(self.state)
                now = time.monotonic()
                self.state.scheduler.run_due(now)
                backend.prune_proxy_targets()
                routes = {name: backend.available_target(name) for name in backend.db_proxies}
            self.listeners.sync(routes)
            if now - self._last_metrics >= METRICS_INTERVAL:
                self._last_metrics = now
                with self.state.lock:
                    publish_proxy_metrics(routes, self.listeners.open_connections())
                    install(self.state).publish_replica_lag()
            with self.state.lock:
                next_due = self.state.scheduler.next_due()
        except Exception:
            logger.exception("sandbox tick failed")
            return None  # tried again after the ticker's idle interval
        metrics_due = self._last_metrics + METRICS_INTERVAL
        return metrics_due if next_due is None else min(next_due, metrics_due)
