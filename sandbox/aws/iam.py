"""IAM as AWS runs it, where moto does not: a role's trust policy decides who may assume it, and
`SimulatePrincipalPolicy` evaluates a user's or role's policies.

- AssumeRole of a role the sandbox's IAM knows is refused with AccessDenied unless its trust policy allows the caller
  (moto grants it to anyone). A role IAM does not know is still granted, as moto does: scripts and tests assume
  roles they never created (`sandbox/aws/sts.py` keeps that promise too).
- SimulatePrincipalPolicy (moto answers HTTP 500, "not implemented") is refused with AccessDenied when the caller is
  a user or a role session the sandbox's IAM knows and its policies do not allow iam:SimulatePrincipalPolicy (moto's
  default caller, which IAM does not know, may). It evaluates, for each action and resource, the
  principal's inline and attached policies (and its groups', for a user) with moto's own policy evaluator: explicit
  deny wins, then allow, else implicit deny. Condition keys and permission boundaries are not modelled.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.exceptions import IAMException, NoSuchEntity
from moto.iam.models import IAMBackend, iam_backends
from moto.iam.responses import IamResponse
from moto.sts.exceptions import STSClientError
from moto.sts.models import sts_backends
from moto.sts.responses import TokenResponse

DECISIONS = {
    PermissionResult.PERMITTED: "allowed",
    PermissionResult.DENIED: "explicitDeny",
    PermissionResult.NEUTRAL: "implicitDeny",
}


def _arn_parts(arn: str) -> tuple[str, str, str, str] | None:
    """(partition, service, account, resource) of an ARN, or None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[1], parts[2], parts[4], parts[5]


def _trusts(trust_document: str, caller_arn: str, caller_account: str) -> bool:
    """Whether the trust policy allows `caller_arn` sts:AssumeRole (Allow statements; an explicit Deny wins)."""
    try:
        statements = json.loads(trust_document).get("Statement", [])
    except (ValueError, AttributeError):
        return False
    statements = statements if isinstance(statements, list) else [statements]
    names = {caller_arn, caller_account, f"arn:aws:iam::{caller_account}:root", "*"}
    parts = _arn_parts(caller_arn)
    if parts and parts[3].startswith("assumed-role/"):  # a session of a role is trusted as the role
        names.add(f"arn:{parts[0]}:iam::{parts[2]}:role/{parts[3].split('/')[1]}")
    allowed = False
    for statement in statements:
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if not {"sts:AssumeRole", "sts:*", "*"} & set(actions):
            continue
        principal = statement.get("Principal", {})
        aws = principal.get("AWS", []) if isinstance(principal, dict) else principal
        aws = aws if isinstance(aws, list) else [aws]
        if names & set(aws):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _known_role(role_arn: str) -> Any | None:
    parts = _arn_parts(role_arn)
    if parts is None:
        return None
    partition, _, account, _ = parts
    try:
        return iam_backends[account][partition].get_role_by_arn(role_arn)
    except IAMException:
        return None


def _policies(backend: IAMBackend, principal_arn: str) -> list[Any]:
    """The inline and attached policies of a user (with its groups') or a role. Raises NoSuchEntity / InvalidInput."""
    parts = _arn_parts(principal_arn)
    resource = parts[3] if parts and parts[1] == "iam" else ""
    kind, _, path_and_name = resource.partition("/")
    name = path_and_name.rsplit("/", 1)[-1]
    if kind == "role":
        backend.get_role_by_arn(principal_arn)
        found: list[Any] = [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
        return found + list(backend.list_attached_role_policies(name)[0])
    if kind == "user":
        backend.get_user(name)
        found = [backend.get_user_policy(name, p) for p in backend.list_user_policies(name)]
        found += list(backend.list_attached_user_policies(name)[0])
        for group in backend.get_groups_for_user(name):
            found += [backend.get_group_policy(group.name, p) for p in backend.list_group_policies(group.name)]
            found += list(backend.list_attached_group_policies(group.name)[0])
        return found
    raise NoSuchEntity(f"PolicySourceArn {principal_arn} is not a user, group or role the account knows.")


def _decide(policies: list[IAMPolicy], action: str, resource: str) -> str:
    results = {policy.is_action_permitted(action, resource) for policy in policies}
    for result in (PermissionResult.DENIED, PermissionResult.PERMITTED):
        if result in results:
            return DECISIONS[result]
    return DECISIONS[PermissionResult.NEUTRAL]


def _require_permission(self: IamResponse, principal: str) -> None:
    """AccessDenied unless the caller, when IAM knows it, may call iam:SimulatePrincipalPolicy on `principal`."""
    sts = sts_backends[self.current_account][self.partition]
    _, caller_arn, _ = sts.get_caller_identity(self.get_access_key(), self.region)
    parts = _arn_parts(caller_arn)
    if parts is None:
        return
    partition, service, account, resource = parts
    if service == "sts" and resource.startswith("assumed-role/"):
        caller = f"arn:{partition}:iam::{account}:role/{resource.split('/')[1]}"
    elif service == "iam":
        caller = caller_arn
    else:
        return
    try:
        policies = [IAMPolicy(policy) for policy in _policies(iam_backends[account][partition], caller)]
    except IAMException:
        return
    if _decide(policies, "iam:SimulatePrincipalPolicy", principal) != "allowed":
        raise IAMException(
            "AccessDenied",
            f"User: {caller_arn} is not authorized to perform: iam:SimulatePrincipalPolicy on resource: {principal}",
        )


def simulate_principal_policy(self: IamResponse) -> ActionResult:
    principal = self._get_param("PolicySourceArn")
    _require_permission(self, principal)
    actions = list(self._get_param("ActionNames", []))
    resources = list(self._get_param("ResourceArns", [])) or ["*"]
    policies = [IAMPolicy(policy) for policy in _policies(self.backend, principal)]
    results = []
    for action in actions:
        per_resource = [(resource, _decide(policies, action, resource)) for resource in resources]
        worst = next(
            (d for wanted in ("explicitDeny", "implicitDeny") for _, d in per_resource if d == wanted), "allowed"
        )
        result: dict[str, Any] = {
            "EvalActionName": action,
            "EvalResourceName": resources[0] if len(resources) == 1 else "*",
            "EvalDecision": worst,
            "MatchedStatements": [],
            "MissingContextValues": [],
        }
        if len(resources) > 1:
            result["ResourceSpecificResults"] = [
                {"EvalResourceName": r, "EvalResourceDecision": d, "MatchedStatements": [], "MissingContextValues": []}
                for r, d in per_resource
            ]
        results.append(result)
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def install() -> None:
    """Patch moto's IAM and STS responses (idempotent; process-wide, like moto's backends)."""
    if getattr(TokenResponse.assume_role, "sandbox_trust_checked", False):
        return
    original_assume_role = TokenResponse.assume_role

    def assume_role(self: TokenResponse) -> Any:
        role_arn = self._get_param("RoleArn") or ""
        role = _known_role(role_arn)
        if role is not None:
            _, caller_arn, caller_account = self.backend.get_caller_identity(self.get_access_key(), self.region)
            if not _trusts(role.assume_role_policy_document, caller_arn, caller_account):
                raise STSClientError(
                    "AccessDenied",
                    f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                )
        return original_assume_role(self)

    # moto warns that STS's and IAM's service models have no AccessDenied shape; AWS answers it all the same.
    warnings.filterwarnings("ignore", message=r"Exception\((STSClientError|IAMException)\) with code AccessDenied")
    assume_role.sandbox_trust_checked = True  # type: ignore[attr-defined]
    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]
    if not hasattr(IamResponse, "simulate_principal_policy"):
        IamResponse.simulate_principal_policy = simulate_principal_policy  # type: ignore[attr-defined]
