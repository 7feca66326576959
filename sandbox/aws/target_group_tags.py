"""Tags on an RDS Proxy's target group, which moto does not store.

AWS lets AddTagsToResource, ListTagsForResource and RemoveTagsFromResource name a target group's ARN
(`...:target-group:prx-tg-...`; the Service Authorization Reference lists `target-group` among AddTagsToResource's
resource types, with the `aws:ResourceTag` condition key) and answers DBProxyTargetGroupNotFoundFault for one that
does not exist. A target group's tags are its own: a proxy's tags are not copied to its default target group (AWS
documents no such copy), so a new proxy's target group has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.aws import errors

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend


class TargetGroupTagsMixin:
    """Resolves target-group ARNs for tagging; mixed into SandboxRDSBackend."""

    def _get_resource_for_tagging(self: SandboxRDSBackend, arn: str) -> Any:
        if ":target-group:" not in arn:
            return super()._get_resource_for_tagging(arn)  # type: ignore[misc]
        group_id = arn.rsplit(":", 1)[-1]
        for proxy in self.db_proxies.values():
            for group in proxy.proxy_target_groups.values():
                if group.resource_id == group_id:
                    return group
        raise errors.fault("DBProxyTargetGroupNotFoundFault", f"The specified target group {group_id} doesn't exist.")
