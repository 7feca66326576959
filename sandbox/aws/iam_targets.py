"""What one authorization is about: the scope a call is made in, its parameters, and each (action, resource) it is
authorised for (`Target`), with the resource's tags and any context key only that authorization has.

Tags come from the sandbox's state by the resource's ARN, unless the target carries them: a resource AWS names
internally (`sandbox/aws/iam_blue_green.py`) keeps the tags of the resource it stands for. A target group's tags are
its own (the Service Authorization Reference gives `target-group` the `aws:ResourceTag` key and AddTagsToResource
takes a target group's ARN); a new proxy's default target group has none until they are added.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.rds.models import RDSBackend

from sandbox.aws.iam_policy import ContextValue

_LIST_MEMBER = re.compile(r"^(?P<name>[A-Za-z]+)\.[A-Za-z]+\.(?P<index>\d+)$")
_TAG_PART = re.compile(r"^Tags\.[A-Za-z]+\.(?P<index>\d+)\.(?P<part>Key|Value)$")


@dataclass(frozen=True)
class Scope:
    """Where a request is authorised: its region and account, and the RDS state names resolve in."""

    region: str
    account: str
    rds: RDSBackend | None
    partition: str = "aws"

    def arn(self, kind: str, name: str) -> str:
        if kind == "global-cluster":
            return f"arn:{self.partition}:rds::{self.account}:global-cluster:{name}"
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:{kind}:{name}"


class Params:
    """A query-protocol request's parameters (form fields), with lists and tags read back."""

    def __init__(self, form: Mapping[str, str]) -> None:
        self.form = form

    def get(self, name: str) -> str | None:
        return self.form.get(name) or None

    def values(self, name: str) -> list[str]:
        found = [
            (int(m["index"]), value)
            for key, value in self.form.items()
            if (m := _LIST_MEMBER.match(key)) and m["name"] == name
        ]
        return [value for _, value in sorted(found)]

    def tags(self) -> dict[str, str]:
        parts: dict[int, dict[str, str]] = {}
        for key, value in self.form.items():
            if m := _TAG_PART.match(key):
                parts.setdefault(int(m["index"]), {})[m["part"]] = value
        return {p["Key"]: p.get("Value", "") for _, p in sorted(parts.items()) if "Key" in p}


@dataclass(frozen=True)
class Target:
    """One (IAM action, resource ARN) a call is authorised for."""

    action: str
    resource: str
    tags: Mapping[str, str] | None = None  # the resource's tags; None: read from the sandbox's state by the ARN
    context: Mapping[str, ContextValue] = field(default_factory=dict)  # keys only this authorization has


def named(scope: Scope, kind: str, value: str | None) -> str:
    """The resource a parameter names (a name or an ARN), or every resource of the kind when it names none."""
    if value and value.startswith("arn:"):
        return value
    return scope.arn(kind, value or "*")


def tags_of(resource: Any) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in getattr(resource, "tags", None) or []}


def resource_tags(scope: Scope, arn: str) -> dict[str, str]:
    """The tags the sandbox's state holds for the resource (none for `*`, a wildcard or an unknown resource)."""
    if scope.rds is None or not arn.startswith("arn:") or arn.endswith(":*"):
        return {}
    if ":deployment:" in arn:
        return tags_of(scope.rds.blue_green_deployments.get(arn.rsplit(":", 1)[-1]))
    try:
        return {t["Key"]: t.get("Value", "") for t in scope.rds.list_tags_for_resource(arn)}
    except Exception:  # an ARN moto cannot resolve (another service's, a malformed one) has no tags here
        return {}
