"""A short, stable digest of what an approver approved: deployment, blue, green and its version, proxies, strategy."""

from __future__ import annotations

import hashlib
import json

from bot.aws.models import Deployment


def plan_fingerprint(**facts: object) -> str:
    canonical = json.dumps(facts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def switchover_fingerprint(
    deployment: Deployment, green_version: str | None, proxies: list[str], strategy: str | None, timeout: object
) -> str:
    return plan_fingerprint(
        deployment=deployment.identifier,
        source=deployment.source_arn,
        target=deployment.target_arn,
        green_version=green_version,
        registrations=sorted(proxies),
        strategy=strategy,
        timeout=timeout,
    )
