"""A short, stable digest of what an approver approved: deployment, blue, green and its version, proxies, strategy."""

from __future__ import annotations

import hashlib
import json

from bot.aws.models import Deployment


def plan_fingerprint(**facts: object) -> str:
    canonical = json.dumps(facts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def switchover_fingerprint(
    deployment: Deployment,
    green_version: str | None,
    proxies: list[str],
    strategy: str | None,
    timeout: object,
    *,
    fix_drift: bool = False,
) -> str:
    """With `fix_drift` the changes after the switchover are part of what was approved: an approval of the plain
    switchover does not cover them (and a plain switchover's digest is the same as before --fix-drift existed)."""
    return plan_fingerprint(
        deployment=deployment.identifier,
        source=deployment.source_arn,
        target=deployment.target_arn,
        green_version=green_version,
        registrations=sorted(proxies),
        strategy=strategy,
        timeout=timeout,
        **({"fix_drift": True} if fix_drift else {}),
    )
