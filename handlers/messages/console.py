"""Links from a run's messages to the AWS console pages of its database, proxies and blue/green deployment.

Formats (the RDS console's own URL fragments, as public code links them; AWS documents no deep-link format):
`https://<region>.console.aws.amazon.com/rds/home?region=<region>#database:id=<id>;is-cluster=<true|false>` for a DB
instance or Aurora cluster and `...#proxy:id=<name>` for a proxy. No fragment for one blue/green deployment could be
confirmed, so a deployment links to the Databases list (`#databases:`), where AWS documents that blue/green
deployments are listed (role "Blue/Green Deployment"). Only the standard AWS partition is linked: the China and
GovCloud consoles live on other hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from bot.aws.models import Registration

_OTHER_PARTITIONS = ("cn-", "us-gov-", "us-iso")


def _home(region: str) -> str | None:
    if not region or region.startswith(_OTHER_PARTITIONS):
        return None
    return f"https://{region}.console.aws.amazon.com/rds/home?region={region}"


def database_url(region: str, identifier: str, *, cluster: bool) -> str | None:
    home = _home(region)
    if home is None:
        return None
    return f"{home}#database:id={quote(identifier)};is-cluster={'true' if cluster else 'false'}"


def proxy_url(region: str, proxy: str) -> str | None:
    home = _home(region)
    return None if home is None else f"{home}#proxy:id={quote(proxy)}"


def deployments_url(region: str) -> str | None:
    home = _home(region)
    return None if home is None else f"{home}#databases:"


def region_of_arn(arn: object) -> str | None:
    """`arn:aws:rds:<region>:...` -> region; None for anything else."""
    if not isinstance(arn, str):
        return None
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


def _link(url: str | None, label: str) -> str:
    return f"<{url}|{label}>" if url else label


def console_links(database: str, meta: Mapping[str, Any], region: str | None) -> str | None:
    """One mrkdwn line linking the run's database, each proxy it is registered with, and its deployment (once
    known) to the console; None when the region is unknown or outside the standard partition."""
    region = region or region_of_arn(meta.get("green_arn")) or region_of_arn(meta.get("blue_arn"))
    if not region or _home(region) is None:
        return None
    cluster = meta.get("database_kind") == "cluster"
    parts = [f"database {_link(database_url(region, database, cluster=cluster), database)}"]
    proxies = sorted({Registration.from_dict(item).proxy for item in meta.get("registrations") or []})
    if proxies:
        word = "proxy" if len(proxies) == 1 else "proxies"
        parts.append(f"{word} " + ", ".join(_link(proxy_url(region, p), p) for p in proxies))
    deployment = meta.get("deployment_id")
    if isinstance(deployment, str) and deployment:
        parts.append(f"deployment {_link(deployments_url(region), deployment)} (under Databases)")
    return f"AWS console ({region}): " + " · ".join(parts)
