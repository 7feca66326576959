"""What the runbook asks operators to watch: each proxy's target health and connection metrics before and after every
step, and whether an application can connect through the proxy after every registration.

The bot often runs where CloudWatch or the proxy endpoint is out of reach: a check that cannot run is reported as
unavailable and the run goes on, unless the environment requires the connectivity probe.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from bot.aws.gateway import AwsGateway
from bot.aws.models import Registration
from bot.errors import AwsError

PROBE_TIMEOUT = 1.0
ENGINE_PORTS = {"POSTGRESQL": 5432, "SQLSERVER": 1433}


async def proxy_snapshot(gateway: AwsGateway, registrations: list[Registration]) -> dict[str, Any]:
    async def one(registration: Registration) -> tuple[str, dict[str, Any]]:
        try:
            targets = await gateway.targets(registration.proxy, registration.target_group)
            health = [
                f"{t.rds_resource_id}={t.state}" + (f"({t.reason})" if t.reason else "")
                for t in targets
                if t.type != "TRACKED_CLUSTER"
            ]
        except AwsError as exc:
            health = [f"unavailable: {exc.code}"]
        metrics = await gateway.proxy_metrics(registration.proxy)
        return registration.label, {"targets": health, "metrics": metrics if metrics is not None else "unavailable"}

    return dict(await asyncio.gather(*(one(r) for r in registrations)))


async def probe_address(address: str, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """TCP connect; success when the peer accepts and does not hang up at once. A greeting line is recorded."""
    host, _, port = address.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    except socket.gaierror:
        return {"ok": None, "address": address, "detail": f"unavailable: cannot resolve {host} from here"}
    except (OSError, TimeoutError) as exc:
        return {"ok": False, "address": address, "detail": f"cannot connect: {exc.__class__.__name__}"}
    try:
        line = await asyncio.wait_for(reader.readline(), 0.3)
        ok = bool(line) and not line.startswith(b"ERR")
        detail = line.decode(errors="replace").strip() or "connection closed by the proxy"
    except TimeoutError:
        ok, detail = True, "connected (no greeting)"
    finally:
        writer.close()
    return {"ok": ok, "address": address, "detail": detail}


async def probe_proxies(
    gateway: AwsGateway, registrations: list[Registration], configured: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Connectivity through each proxy: the configured address, else the proxy's endpoint on its engine's port."""
    endpoints: dict[str, str] = {}

    async def endpoint_of(name: str) -> None:
        try:
            proxy = await gateway.proxy(name)  # the named proxy only: the account may have hundreds
        except AwsError:
            return
        if proxy is not None and proxy.endpoint:
            endpoints[name] = f"{proxy.endpoint}:{ENGINE_PORTS.get(proxy.engine_family, 3306)}"

    await asyncio.gather(*(endpoint_of(name) for name in {r.proxy for r in registrations} - set(configured)))

    async def one(registration: Registration) -> tuple[str, dict[str, Any]]:
        address = configured.get(registration.proxy) or endpoints.get(registration.proxy)
        if not address:
            return registration.label, {"ok": None, "detail": "unavailable: no address for the proxy"}
        return registration.label, await probe_address(address)

    return dict(await asyncio.gather(*(one(r) for r in registrations)))


def describe_snapshot(label: str, snapshot: dict[str, Any]) -> str:
    metrics = snapshot.get("metrics")
    if isinstance(metrics, dict):
        shown = ", ".join(f"{k}={'-' if v is None else f'{v:g}'}" for k, v in metrics.items())
    else:
        shown = f"metrics {metrics}"
    return f"{label}: targets {', '.join(snapshot.get('targets', [])) or 'none'}; {shown}"
