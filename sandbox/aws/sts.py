"""STS as AWS runs it: AssumeRole's `DurationSeconds` range, credentials that expire, and the refusal of every call
signed with an expired session token.

moto's STS issues session tokens but never checks them. The sandbox wraps moto's `STSBackend.assume_role` so each
grant lasts `DurationSeconds` (900-43200, within the role's MaxSessionDuration when moto's IAM knows the role), or
the `credential_lifetime` override, in simulated seconds scaled by the speed factor. The `Expiration` it reports is a
real wall-clock time, as AWS's is, in whole seconds, and the sandbox refuses a token from that instant on.
`SandboxMiddleware` asks `expired_token_refusal` about every request before anything else happens to it.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs

from moto.core.utils import utcnow
from moto.iam.models import iam_backends
from moto.sts.exceptions import STSValidationError
from moto.sts.models import STSBackend
from moto.utilities.utils import get_partition

from sandbox.aws import wire

if TYPE_CHECKING:
    from sandbox.aws.state import SandboxState

MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_MAX_SESSION_DURATION = 3600
EXPIRED_TOKEN = "ExpiredToken"  # query protocol (RDS, STS)
EXPIRED_TOKEN_JSON = "ExpiredTokenException"  # JSON protocols
EXPIRED_MESSAGE = "The security token included in the request is expired"
EXPIRED_STATUS = 400

_bound: dict[str, SandboxState] = {}


class SessionTokens:
    """When each session token the sandbox's STS issued expires (naive UTC, as moto keeps time).

    Tokens it did not issue are not judged: moto accepts any credentials, and a token from a developer's shell must
    not break the demo. Expired tokens are kept, so they stay refused after a reset.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[str, dt.datetime] = {}

    def issue(self, token: str, expires_at: dt.datetime) -> None:
        with self._lock:
            self._expiry[token] = expires_at

    def expired(self, token: str | None, now: dt.datetime | None = None) -> bool:
        """True for a token this sandbox issued whose expiry has passed; False for no token or an unknown one."""
        if not token:
            return False
        with self._lock:
            expires_at = self._expiry.get(token)
        return expires_at is not None and (now or utcnow()) >= expires_at


def session_token(environ: dict[str, Any]) -> str | None:
    """The request's session token: the `X-Amz-Security-Token` header, or the query parameter of a presigned URL."""
    header = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
    if header:
        return str(header)
    values = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Security-Token")
    return values[0] if values else None


class Refusal(NamedTuple):
    code: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    detail: dict[str, str] | None = None  # an IAM refusal's action and resource, for the timeline


def expired_token_refusal(environ: dict[str, Any], tokens: SessionTokens) -> Refusal | None:
    """AWS's refusal of a request signed with an expired session token, in the request's protocol (query XML
    `ExpiredToken`, or JSON `ExpiredTokenException`), HTTP 400. None when the request has no such token."""
    if not tokens.expired(session_token(environ)):
        return None
    code = EXPIRED_TOKEN if wire.is_form(environ) else EXPIRED_TOKEN_JSON
    headers, body = wire.error_response(environ, code, EXPIRED_STATUS, message=EXPIRED_MESSAGE)
    return Refusal(code, EXPIRED_STATUS, headers, body)


def granted_seconds(state: SandboxState, requested: int) -> float:
    """Real seconds a new grant lasts: the override or `requested`, both simulated seconds, over the speed factor."""
    with state.lock:
        override = state.config.durations.credential_lifetime
        return state.config.real_seconds(requested if override is None else override)


def check_duration(backend: STSBackend, role_arn: str, duration: int) -> None:
    """Refuse `DurationSeconds` outside 900-43200, or above the role's MaxSessionDuration, as STS does."""
    if duration < MIN_DURATION:
        raise STSValidationError(_constraint(duration, f"greater than or equal to {MIN_DURATION}"))
    if duration > MAX_DURATION:
        raise STSValidationError(_constraint(duration, f"less than or equal to {MAX_DURATION}"))
    account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else backend.account_id
    try:
        role = iam_backends[account or backend.account_id][get_partition(backend.region_name)].get_role_by_arn(role_arn)
    except Exception:  # moto lets a role it does not know be assumed; so does the sandbox
        return
    if duration > int(role.max_session_duration or DEFAULT_MAX_SESSION_DURATION):
        raise STSValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")


def _constraint(duration: int, rule: str) -> str:
    return (
        f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
        f"Member must have value {rule}"
    )


def install(state: SandboxState) -> None:
    """Make moto's STS grant expiring credentials for `state` (idempotent; the last Sandbox started wins)."""
    _bound["state"] = state
    original = STSBackend.assume_role
    if getattr(original, "sandbox_patched", False):
        return

    def assume_role(
        self: STSBackend,
        region_name: str,
        role_session_name: str,
        role_arn: str,
        policy: str,
        duration: int,
        external_id: str,
    ) -> Any:
        bound = _bound["state"]
        check_duration(self, role_arn, int(duration))
        role = original(self, region_name, role_session_name, role_arn, policy, duration, external_id)
        issued = utcnow()
        # In whole seconds, as in the AWS CLI's assume-role example; refused from exactly the instant reported.
        role.expiration = max(
            (issued + dt.timedelta(seconds=granted_seconds(bound, int(duration)))).replace(microsecond=0),
            issued.replace(microsecond=0) + dt.timedelta(seconds=1),
        )
        bound.tokens.issue(role.session_token, role.expiration)
        return role

    assume_role.sandbox_patched = True  # type: ignore[attr-defined]
    STSBackend.assume_role = assume_role  # type: ignore[method-assign]
