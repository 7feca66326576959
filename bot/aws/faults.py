"""AWS faults turned into `bot.errors` domain errors that name the resource and, where there is one, the fix."""

from __future__ import annotations

from botocore.exceptions import ClientError

from bot import errors

NOT_FOUND_CODES = {
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterNotFoundFault",
    "DBProxyNotFoundFault",
    "DBProxyTargetGroupNotFoundFault",
    "BlueGreenDeploymentNotFoundFault",
}
INVALID_STATE_CODES = {
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
    "InvalidDBProxyStateFault",
    "InvalidBlueGreenDeploymentStateFault",
}
ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized"}


def translate(exc: ClientError, action: str, resource: str | None) -> errors.AwsError:
    """Turn a botocore ClientError into a domain error that names the resource and the fix."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", "")) or code
    meta = exc.response.get("ResponseMetadata", {})
    kwargs = {
        "code": code,
        "action": action,
        "resource": resource,
        "request_id": meta.get("RequestId"),
        "http_status": meta.get("HTTPStatusCode"),
    }
    where = f" ({resource})" if resource else ""
    text = f"{action}{where}: {code}: {message}"
    if action == "CreateBlueGreenDeployment" and "proxy" in message.lower():
        return errors.ProxyNotSupported(text, fix="Use the workaround strategy (--mode workaround).", **kwargs)
    if code in NOT_FOUND_CODES:
        return errors.NotFound(text, fix="Check the identifier and the AWS region/account.", **kwargs)
    if code == "DBProxyTargetAlreadyRegisteredFault":
        return errors.AlreadyRegistered(text, **kwargs)
    if code == "DBProxyTargetNotFoundFault":
        return errors.NotRegistered(text, **kwargs)
    if code in INVALID_STATE_CODES:
        return errors.InvalidState(text, fix="Wait for the resource to become available, then retry.", **kwargs)
    if code in ACCESS_CODES:
        return errors.AccessDenied(
            text, fix=f"Grant rds:{action} to the bot's IAM role (see iam-policy.json).", **kwargs
        )
    return errors.AwsError(text, **kwargs)
