"""`IamGuard`: the IAM policy the sandbox enforces, and AWS's refusal of a call it does not allow.

Started with a policy (`Sandbox(iam_policy=...)`, `python -m bot sandbox --iam-policy FILE`) or given one at run
time (`set_iam_policy`), the sandbox evaluates every AWS call before moto handles it: the caller is read from the
request's signature (the access key, resolved by moto's STS to a user or an assumed-role session), the action and
its resources from `sandbox/aws/iam_resources.py`, and the decision from `sandbox/aws/iam_policy.py`. A call the
policy does not allow is refused as AWS refuses it: HTTP 403, code `AccessDenied`, in the request's protocol, with
"User: <caller> is not authorized to perform: <action> on resource: <arn> because no identity-based policy allows
the <action> action" (or "with an explicit deny in an identity-based policy").

With a `principal` (a role or user ARN) the policy is that principal's alone: calls signed by anyone else (the
source credentials that assume the role, a test's admin client) are not evaluated. Without one, every call is.
The control surface (`/_sandbox/*`) never is.

The request context holds `aws:PrincipalArn` (a role session's role), `aws:PrincipalAccount` and
`aws:PrincipalTag/<key>` for each IAM tag of that role or user in the sandbox's IAM ("IAM tags - The tags attached to
your IAM assumed role", IAM User Guide, "Pass session tags in AWS STS"; session tags are not modelled). A call it
allows is recorded on the timeline with, for each authorization, every statement that allowed it (`iam`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.rds.models import rds_backends
from moto.sts.models import sts_backends

from sandbox.aws import wire
from sandbox.aws.iam_policy import Decision, Policy, load_policy, request_context
from sandbox.aws.iam_resources import Params, Scope, requests
from sandbox.aws.sts import Refusal

ACCESS_DENIED = "AccessDenied"
ACCESS_DENIED_STATUS = 403
DEFAULT_REGION = "us-east-1"
SIGNING_NAMES = {"monitoring": "cloudwatch"}  # SigV4 signing name -> IAM service prefix, where they differ
_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


class IamGuard:
    """The policy in force (and the one given at start, which `reset()` restores). Thread-safe."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock  # the sandbox's state lock: moto's backends are read under it
        self._initial: tuple[Policy | None, str | None] = (None, None)
        self._policy: Policy | None = None
        self._principal: str | None = None

    @property
    def active(self) -> bool:
        return self._policy is not None

    def set(
        self, policy: str | Path | Mapping[str, Any] | None, principal: str | None = None, *, initial: bool = False
    ) -> dict[str, Any]:
        """Enforce `policy` (a dict or a JSON file's path; None stops enforcing). PolicyError names what is wrong."""
        parsed = None if policy is None else load_policy(policy)
        if principal is not None and not (principal.startswith("arn:") and principal.count(":") >= 5):
            raise ValueError(f"principal must be an IAM user or role ARN, not {principal!r}")
        with self._lock:
            self._policy, self._principal = parsed, principal if parsed is not None else None
            if initial:
                self._initial = (self._policy, self._principal)
        return self.as_dict()

    def reset(self) -> None:
        with self._lock:
            self._policy, self._principal = self._initial

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            policy = None if self._policy is None else dict(self._policy.document)
            return {"iam_policy": policy, "principal": self._principal}

    def refusal(self, environ: dict[str, Any], body: bytes, action: str | None) -> Refusal | None:
        """AWS's AccessDenied for this request when the policy does not allow it; None when it does (or no policy)."""
        return self.authorize(environ, body, action)[0]

    def authorize(
        self, environ: dict[str, Any], body: bytes, action: str | None
    ) -> tuple[Refusal | None, list[dict[str, Any]] | None]:
        """(AWS's AccessDenied, or None when the policy allows the request; for an allowed request the policy
        evaluated, each authorization with the statements that allowed it, else None)."""
        if self._policy is None:
            return None, None
        credential = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        if credential is None:
            return _refuse(environ, "Anonymous", "the call", "*", "is not signed with SigV4 credentials"), None
        service = SIGNING_NAMES.get(credential["service"], credential["service"])
        region = credential["region"] or DEFAULT_REGION
        with self._lock:
            policy, principal = self._policy, self._principal
            if policy is None:
                return None, None
            caller, account = _caller(credential["key"], region)
            if principal is not None and _principal_arn(caller) != principal and caller != principal:
                return None, None
            if not action:
                return _refuse(environ, caller, f"{service}:?", "*", "could not be identified by the sandbox"), None
            scope = Scope(region, account, rds_backends[account][region])
            principal_arn = _principal_arn(caller)
            context = request_context(
                {
                    "aws:PrincipalArn": principal_arn,
                    "aws:PrincipalAccount": account,
                    **{f"aws:PrincipalTag/{k}": v for k, v in principal_tags(principal_arn, account).items()},
                }
            )
            evaluated = [
                (r, policy.evaluate(r)) for r in requests(service, action, _params(environ, body), scope, context)
            ]
        denied = [(r, e) for r, e in evaluated if e.decision is not Decision.ALLOWED]
        if not denied:
            return None, [
                {"action": r.action, "resource": r.resource, "allowed_by": list(e.allowed_by)} for r, e in evaluated
            ]
        denied.sort(key=lambda pair: pair[1].decision is not Decision.EXPLICIT_DENY)
        request, evaluation = denied[0]
        why = (
            "with an explicit deny in an identity-based policy"
            if evaluation.decision is Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {request.action} action"
        )
        return _refuse(environ, caller, request.action, request.resource, why), None


def _refuse(environ: dict[str, Any], caller: str, action: str, resource: str, why: str) -> Refusal:
    message = f"User: {caller} is not authorized to perform: {action} on resource: {resource} {why}"
    headers, body = wire.error_response(environ, ACCESS_DENIED, ACCESS_DENIED_STATUS, message=message)
    return Refusal(ACCESS_DENIED, ACCESS_DENIED_STATUS, headers, body, {"action": action, "resource": resource})


def _caller(access_key: str, region: str) -> tuple[str, str]:
    """(caller ARN, account) for an access key, as moto's STS answers GetCallerIdentity (sessions in any account)."""
    for per_partition in sts_backends.values():
        for backend in per_partition.values():
            session = backend.get_assumed_role_from_access_key(access_key)
            if session is not None:
                return session.arn, session.account_id
    _, arn, account = sts_backends[DEFAULT_ACCOUNT_ID]["aws"].get_caller_identity(access_key, region)
    return arn, account


def principal_tags(principal_arn: str, account: str) -> dict[str, str]:
    """The IAM tags of a role or user the sandbox's IAM knows (none for anyone else)."""
    parts = principal_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam":
        return {}
    kind, _, path_and_name = parts[5].partition("/")
    name = path_and_name.rsplit("/", 1)[-1]
    backend = iam_backends[account][parts[1]]
    try:
        if kind == "role":
            found = backend.get_role(name).tags
        elif kind == "user":
            found = backend.list_user_tags(name)
        else:
            return {}
    except Exception:  # moto's NotFound: a principal IAM does not know has no tags
        return {}
    return {t["Key"]: t.get("Value", "") for t in found or []}


def _principal_arn(caller: str) -> str:
    """`aws:PrincipalArn`: an assumed-role session's role (arn:aws:iam::A:role/R), else the caller itself."""
    parts = caller.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{parts[5].split('/')[1]}"
    return caller


def _params(environ: dict[str, Any], body: bytes) -> Params:
    if wire.is_form(environ):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return Params({key: values[0] for key, values in form.items()})
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        payload = {}
    scalars = {k: v for k, v in payload.items() if isinstance(v, str)} if isinstance(payload, dict) else {}
    return Params(scalars)
