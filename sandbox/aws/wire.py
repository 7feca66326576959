"""Reading AWS requests and writing AWS error responses at the WSGI level (for the timeline and faults)."""

from __future__ import annotations

import io
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

MAIN_PARAMS = (
    "DBProxyName",
    "TargetGroupName",
    "DBInstanceIdentifier",
    "DBClusterIdentifier",
    "DBInstanceIdentifiers",
    "DBClusterIdentifiers",
    "BlueGreenDeploymentIdentifier",
    "BlueGreenDeploymentName",
    "Source",
    "TargetEngineVersion",
    "SwitchoverTimeout",
    "DeleteTarget",
    "EngineVersion",
    "AllowMajorVersionUpgrade",
    "ApplyImmediately",
    "NewDBInstanceIdentifier",
    "NewDBClusterIdentifier",
    "FinalDBSnapshotIdentifier",
    "SkipFinalSnapshot",
    "Namespace",
    "MetricName",
    # restores: which database is read and which is created (a rehearsal must create only its own clone)
    "SourceDBInstanceIdentifier",
    "TargetDBInstanceIdentifier",
    "SourceDBClusterIdentifier",
    # tagging: the ARN of what is tagged (a rehearsal may tag only what it created)
    "ResourceName",
)
_RPC_V2_PATH = re.compile(r"/service/[^/]+/operation/([A-Za-z0-9]+)$")
_XML_CODE = re.compile(rb"<Code>([^<]+)</Code>")
HTTP_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def is_form(environ: dict[str, Any]) -> bool:
    return str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded")


def action_and_params(environ: dict[str, Any], body: bytes) -> tuple[str | None, dict[str, Any]]:
    """The API action and its main parameters, for query (RDS), JSON and RPC v2 (CloudWatch) requests."""
    if is_form(environ):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return (form.get("Action") or [None])[0], _main_query_params(form)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.split(".")[-1], _main_json_params(body)
    match = _RPC_V2_PATH.search(environ.get("PATH_INFO", ""))
    if match:
        return match.group(1), {}
    return None, {}


def _main_query_params(form: dict[str, list[str]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key in sorted(form, key=_member_order):
        name, _, member = key.partition(".member.")
        if name not in MAIN_PARAMS:
            continue
        if member:
            params.setdefault(name, []).append(form[key][0])
        else:
            params[name] = form[key][0]
    return params


def _member_order(key: str) -> tuple[str, int]:
    name, _, member = key.partition(".member.")
    return (name, int(member) if member.isdigit() else 0)


def _main_json_params(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return {}
    return {k: v for k, v in payload.items() if k in MAIN_PARAMS} if isinstance(payload, dict) else {}


def error_code(body: bytes, content_type: str) -> str | None:
    match = _XML_CODE.search(body)
    if match:
        return match.group(1).decode()
    if "json" in content_type:
        try:
            return str(json.loads(body).get("__type", "")).split("#")[-1] or None
        except (ValueError, AttributeError):
            return None
    return None


def status_line(status: int) -> str:
    return f"{status} {HTTP_REASONS.get(status, 'Error')}"


def error_response(
    environ: dict[str, Any], code: str, status: int, message: str | None = None
) -> tuple[list[tuple[str, str]], bytes]:
    """An AWS error in the protocol of the request: query XML for form posts, JSON otherwise."""
    message = message or f"Injected by the sandbox: {code}"
    request_id = str(uuid.uuid4())
    if is_form(environ):
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>{kind}</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        content_type = "application/x-amz-json-1.0"
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-query-error", f"{code};{'Receiver' if status >= 500 else 'Sender'}"),
    ]
    return headers, body
