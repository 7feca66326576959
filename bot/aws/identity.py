"""`IdentityGateway`: the AWS gateway plus the read-only identity and permission calls of `python -m bot check`
(sts:GetCallerIdentity, iam:SimulatePrincipalPolicy). Failures raise `bot.errors.AwsError` as every gateway call does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.aws.gateway import AwsGateway


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    account: str
    arn: str
    user_id: str


def simulation_principal(arn: str) -> str | None:
    """The IAM ARN that SimulatePrincipalPolicy accepts for a caller: a user's or role's ARN as is, an assumed-role
    session's role (arn:aws:sts::A:assumed-role/R/S -> arn:aws:iam::A:role/R); None for anything else (the root
    user, federated users), which the simulator cannot evaluate."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    _, partition, service, _, account, resource = parts
    if service == "iam" and resource.startswith(("user/", "role/")):
        return arn
    if service == "sts" and resource.startswith("assumed-role/") and resource.count("/") >= 2:
        return f"arn:{partition}:iam::{account}:role/{resource.split('/')[1]}"
    return None


class IdentityGateway(AwsGateway):
    async def caller_identity(self) -> CallerIdentity:
        """Who this gateway's calls are signed as (the assumed role's session when `role_arn` is set)."""
        response = await self._call("GetCallerIdentity", service="sts")
        return CallerIdentity(
            account=str(response.get("Account", "")), arn=str(response.get("Arn", "")), user_id=str(response["UserId"])
        )

    async def simulate(
        self,
        principal_arn: str,
        actions: Sequence[str],
        resources: Sequence[str] = (),
        context: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, str]:
        """Each action's decision for `principal_arn` over `resources` (default: every resource) with the request
        context `context` (ContextEntries): "allowed", "implicitDeny" or "explicitDeny", the most restrictive over
        the resources. AccessDenied when the caller may not simulate."""
        params: dict[str, object] = {"PolicySourceArn": principal_arn, "ActionNames": list(actions)}
        if resources:
            params["ResourceArns"] = list(resources)
        if context:
            params["ContextEntries"] = [dict(entry) for entry in context]
        decisions: dict[str, str] = {}
        marker: str | None = None
        while True:
            paging = {"Marker": marker} if marker else {}
            page = await self._call("SimulatePrincipalPolicy", principal_arn, service="iam", **params, **paging)
            for result in page.get("EvaluationResults", []):
                decisions[result["EvalActionName"]] = result["EvalDecision"]
            marker = page.get("Marker") if page.get("IsTruncated") else None
            if not marker:
                return decisions
