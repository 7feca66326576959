"""IAM as AWS runs it, where moto does not: a role's trust policy decides who may assume it, and
`SimulatePrincipalPolicy` evaluates a user's or role's policies.

- AssumeRole of a role the sandbox's IAM knows is refused with AccessDenied unless its trust policy allows the caller
  (moto grants it to anyone). A role IAM does not know is still granted, as moto does: scripts and tests assume
  roles they never created (`sandbox/aws/sts.py` keeps that promise too).
- SimulatePrincipalPolicy (moto answers HTTP 500, "not implemented") is refused with AccessDenied when the caller is
  a user or a role session the sandbox's IAM knows and its policies do not allow iam:SimulatePrincipalPolicy (moto's
  default caller, which IAM does not know, may). It evaluates, for each action and each of `ResourceArns` (or `*`),
  the principal's inline and attached policies (and its groups', for a user) with the sandbox's evaluator
  (`sandbox/aws/iam_policy.py`: conditions and policy variables included): explicit deny wins, then allow, else
  implicit deny. The request context is `ContextEntries`, nothing else ("A list of context keys and corresponding
  values for the simulation to use"); a condition key or policy variable a matching statement needs and the entries
  do not give is listed in `MissingContextValues`. One result per action: `EvalDecision` is the most restrictive
  decision over the resources, each resource's in `ResourceSpecificResults` when there are several. A policy the
  sandbox cannot evaluate is refused with InvalidInput naming why. Permission boundaries are not modelled.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.access_control import IAMPolicy
from moto.iam.exceptions import IAMException, NoSuchEntity
from moto.iam.models import IAMBackend, iam_backends
from moto.iam.responses import IamResponse
from moto.sts.exceptions import STSClientError
from moto.sts.models import sts_backends
from moto.sts.responses import TokenResponse

from sandbox.aws import iam_variables
from sandbox.aws.iam_policy import (
    ContextValue,
    Decision,
    Policy,
    PolicyError,
    Request,
    Statement,
    action_matches,
    arn_matches,
    context_key,
)

RESTRICTIVENESS = ("explicitDeny", "implicitDeny", "allowed")


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


def _evaluator(documents: list[Any]) -> Policy:
    """The principal's policies as one policy of all their statements; InvalidInput for one the sandbox cannot
    evaluate."""
    statements: list[Statement] = []
    for document in documents:
        try:
            statements += Policy.parse(IAMPolicy(document)._policy_json).statements
        except PolicyError as exc:
            raise IAMException("InvalidInput", f"The sandbox cannot simulate this policy: {exc}") from exc
    return Policy(tuple(statements), {})


def _context(entries: list[dict[str, Any]]) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {}
    for entry in entries:
        values = [str(v) for v in entry.get("ContextKeyValues") or []]
        listed = str(entry.get("ContextKeyType", "string")).endswith("List")
        context[context_key(str(entry["ContextKeyName"]))] = values if listed else (values[0] if values else "")
    return context


def _missing(policy: Policy, request: Request) -> list[str]:
    """Keys a statement matching the action and resource needs that the request's context lacks."""
    missing: list[str] = []
    for statement in policy.statements:
        if any(action_matches(p, request.action) for p in statement.actions) == statement.not_action:
            continue
        needed = [n for p in statement.resources for n in iam_variables.names(p)]
        resources = [iam_variables.resolve(p, request.context, context_key) for p in statement.resources]
        if None not in resources and any(arn_matches(p, request.resource) for p in resources if p) == (
            statement.not_resource
        ):
            continue
        for condition in statement.conditions:
            needed += [condition.name or condition.key, *(n for v in condition.values for n in iam_variables.names(v))]
        missing += [k for k in needed if context_key(k) not in request.context and k not in missing]
    return missing


def _decide(policy: Policy, action: str, resource: str, context: dict[str, ContextValue] | None = None) -> str:
    return str(policy.evaluate(Request(action, resource, context or {})).decision)


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
        policy = _evaluator(_policies(iam_backends[account][partition], caller))
    except IAMException:
        return
    if _decide(policy, "iam:SimulatePrincipalPolicy", principal) != str(Decision.ALLOWED):
        raise IAMException(
            "AccessDenied",
            f"User: {caller_arn} is not authorized to perform: iam:SimulatePrincipalPolicy on resource: {principal}",
        )


def simulate_principal_policy(self: IamResponse) -> ActionResult:
    principal = self._get_param("PolicySourceArn")
    _require_permission(self, principal)
    actions = list(self._get_param("ActionNames", []))
    resources = list(self._get_param("ResourceArns", [])) or ["*"]
    context = _context(list(self._get_param("ContextEntries", [])))
    policy = _evaluator(_policies(self.backend, principal))
    results = []
    for action in actions:
        requests = [Request(action, resource, context) for resource in resources]
        per_resource = [(r.resource, str(policy.evaluate(r).decision), _missing(policy, r)) for r in requests]
        worst = min((d for _, d, _ in per_resource), key=RESTRICTIVENESS.index)
        result: dict[str, Any] = {
            "EvalActionName": action,
            "EvalResourceName": resources[0] if len(resources) == 1 else "*",
            "EvalDecision": worst,
            "MatchedStatements": [],
            "MissingContextValues": sorted({k for _, _, keys in per_resource for k in keys}),
        }
        if len(resources) > 1:
            result["ResourceSpecificResults"] = [
                {"EvalResourceName": r, "EvalResourceDecision": d, "MatchedStatements": [], "MissingContextValues": m}
                for r, d, m in per_resource
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
