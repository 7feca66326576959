"""What the rehearsal tests share: the rehearsal-enabled settings, the sandbox timeline's mutations and the names each
changes, and what is still tagged for a rehearsal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.config import Settings, load_settings
from tests.engine_fixtures import engine_env

REHEARSAL_TAG = "bluegreen-bot:rehearsal"
RUN_TAG = "bluegreen-bot:run-id"
MUTATIONS = ("Create", "Delete", "Modify", "Restore", "Register", "Deregister", "Switchover", "Add", "Remove")


def rehearsal_settings(tmp_path: Path, **extra: str) -> Settings:
    return load_settings(engine_env(tmp_path / "bluegreen.db", BLUEGREEN_REHEARSALS="true", **extra))


def mutations(sandbox: Any) -> list[dict[str, Any]]:
    """The mutations AWS accepted, in the sandbox's timeline."""
    return [
        e
        for e in sandbox.control.timeline()
        if e["kind"] == "call" and e["action"].startswith(MUTATIONS) and e.get("code") is None
    ]


def changed(call: dict[str, Any]) -> set[str]:
    """The names a recorded mutation changes: its identifier and name parameters, a deployment's source and a tagged
    resource by their ARN's name; not the source a restore reads, nor a proxy's target group (no name in its ARN)."""
    names: set[str] = set()
    for key, value in (call.get("params") or {}).items():
        values = value if isinstance(value, list) else [value]
        if key in ("Source", "ResourceName"):
            names |= {str(v).rsplit(":", 1)[-1] for v in values if ":target-group:" not in str(v)}
        elif key.endswith(("Identifier", "Identifiers", "Name")) and not key.startswith(("Source", "TargetGroup")):
            names |= {str(v) for v in values}
    return names


def tagged(rds: Any, run_id: str) -> list[str]:
    """Everything still tagged for the rehearsal `run_id`: instances, clusters, proxies, its deployment."""

    def has(tags: list[dict[str, str]] | None, key: str) -> bool:
        return {"Key": key, "Value": run_id} in (tags or [])

    left = [
        d["DBInstanceIdentifier"]
        for d in rds.describe_db_instances()["DBInstances"]
        if has(d["TagList"], REHEARSAL_TAG)
    ]
    left += [
        c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"] if has(c["TagList"], REHEARSAL_TAG)
    ]
    for proxy in rds.describe_db_proxies()["DBProxies"]:
        if has(rds.list_tags_for_resource(ResourceName=proxy["DBProxyArn"])["TagList"], REHEARSAL_TAG):
            left.append(proxy["DBProxyName"])
    for deployment in rds.describe_blue_green_deployments()["BlueGreenDeployments"]:
        if has(deployment.get("TagList"), RUN_TAG):
            left.append(deployment["BlueGreenDeploymentIdentifier"])
    return left
