"""Domain errors: each names the resource involved and, where there is one, the fix."""

from __future__ import annotations


class BlueGreenError(Exception):
    """Base class. `fix` tells an operator what to do next."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} {self.fix}" if self.fix else self.message


class BadRequest(BlueGreenError):
    """The request itself is wrong (input, state of the database, a run already active). Nothing was changed."""


class ApprovalRefused(BlueGreenError):
    """A click or `approve` that the two-person rule does not accept. Nothing was changed."""


class RunCancelled(BlueGreenError):
    """Raised inside a run when an operator cancelled it."""


class AwsError(BlueGreenError):
    """An AWS fault, translated. `retryable` is True for throttling and server-side errors."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        action: str,
        resource: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.code = code
        self.action = action
        self.resource = resource
        self.request_id = request_id
        self.http_status = http_status

    @property
    def retryable(self) -> bool:
        return self.code in {"Throttling", "ThrottlingException", "RequestLimitExceeded"} or (
            self.http_status is not None and self.http_status >= 500
        )


class NotFound(AwsError):
    """The named proxy, target group, database or deployment does not exist."""


class InvalidState(AwsError):
    """AWS refuses the call in the resource's current state; often worth retrying a little later."""


class AlreadyRegistered(AwsError):
    """The database is already a target of that proxy target group."""


class NotRegistered(AwsError):
    """The database is not a target of that proxy target group."""


class ProxyNotSupported(AwsError):
    """AWS refused a blue/green deployment because the source is an RDS Proxy target."""


class AccessDenied(AwsError):
    """The bot's IAM identity lacks a permission."""
