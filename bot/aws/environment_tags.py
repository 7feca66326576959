"""The tags the shipped IAM policy (`iam-policy.json`) keys on, and the calls that put them where it needs them.

- `bluegreen-bot:environment`: the bot's role carries it as a principal tag, and so do the databases, proxies and
  proxy target groups of its environment. Whatever the bot creates from a database (a blue/green deployment, a
  rehearsal's clone, its proxies and their target groups) gets the source's value, so the policy's
  `${aws:PrincipalTag/bluegreen-bot:environment}` conditions hold for them too.
- `bluegreen-bot:green`: added to green right before the bot deletes a deployment with its target (a rollback). AWS
  deletes green on the bot's behalf under internal names, so the policy cannot allow that by name (`*-green-*`); it
  allows deleting what carries this tag, and allows adding the tag only by name to `*-green-*` resources of the
  bot's environment. Green is only deleted before a switchover, so the new primary never carries it (and a
  switchover replaces green's tags with blue's anyway).

A mixin of `bot.aws.gateway.AwsGateway` (the only code that calls AWS), following its contract.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot import errors
from bot.aws.models import Deployment, identifier_from_arn

if TYPE_CHECKING:
    from bot.aws.gateway import Mutation

ENVIRONMENT_TAG = "bluegreen-bot:environment"
GREEN_TAG = "bluegreen-bot:green"
BOT_TAG_PREFIX = "bluegreen-bot:"


def environment_of(tags: dict[str, str] | list[dict[str, Any]] | None) -> dict[str, str]:
    """{ENVIRONMENT_TAG: value} from a resource's tags (a dict or AWS's TagList), or {} when it has none."""
    found = tags if isinstance(tags, dict) else {t.get("Key"): t.get("Value", "") for t in tags or []}
    value = found.get(ENVIRONMENT_TAG)
    return {ENVIRONMENT_TAG: str(value)} if value is not None else {}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


class EnvironmentTags:
    _call: Callable[..., Awaitable[dict[str, Any]]]
    _mutate: Callable[..., Awaitable[Any]]
    _pages: Callable[..., Any]

    async def environment_tags(self, arn: str) -> dict[str, str]:
        """The resource's environment tag, as the tags to give what is made from it ({} if it has none)."""
        response = await self._call("ListTagsForResource", identifier_from_arn(arn), ResourceName=arn)
        return environment_of(response.get("TagList"))

    async def unmarked_green(self, deployment: Deployment) -> list[str]:
        """The ARNs of green's databases (an Aurora cluster and its instances) that do not carry GREEN_TAG yet."""
        arns = [m.target for m in deployment.members if m.target] or [deployment.target_arn or ""]
        unmarked = []
        for arn in dict.fromkeys(a for a in arns if a):
            try:
                response = await self._call("ListTagsForResource", identifier_from_arn(arn), ResourceName=arn)
            except errors.NotFound:
                continue
            if not any(t.get("Key") == GREEN_TAG for t in response.get("TagList", [])):
                unmarked.append(arn)
        return unmarked

    async def mark_green(self, arn: str) -> Mutation:
        """Tag one of green's databases GREEN_TAG=true, so the policy lets its deletion with the deployment through."""
        identifier = identifier_from_arn(arn)
        return await self._mutate(
            "AddTagsToResource", identifier, ResourceName=arn, Tags=[{"Key": GREEN_TAG, "Value": "true"}]
        )

    async def target_group_arn(self, proxy: str, target_group: str = "default") -> str | None:
        """The ARN of a proxy's target group, or None if the proxy or the group is gone."""
        try:
            response = await self._call(
                "DescribeDBProxyTargetGroups", proxy, DBProxyName=proxy, TargetGroupName=target_group
            )
        except errors.NotFound:
            return None
        groups = response.get("TargetGroups", [])
        return str(groups[0]["TargetGroupArn"]) if groups else None

    async def tag_target_group(self, proxy: str, arn: str, tags: dict[str, str]) -> Mutation:
        """Give proxy `proxy`'s target group (`arn`) these tags: RegisterDBProxyTargets is authorised against the
        target group alone, and a new proxy's target group has no tags of its own."""
        return await self._mutate(
            "AddTagsToResource",
            proxy,
            guard_names={proxy},  # the ARN names the group's id, not the proxy a rehearsal created
            ResourceName=arn,
            Tags=tag_list(tags),
        )
