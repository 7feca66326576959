"""The `aws rds ...` command line equivalent to an API call, shown in the plan, the thread and the audit log."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from botocore import xform_name

from bot.aws.models import Registration

SERVICE_OF_ACTION = {"GetMetricData": "cloudwatch"}


def _flag(name: str) -> str:
    return "--" + xform_name(name).replace("_", "-")


def _value(value: object) -> str:
    if isinstance(value, Mapping):  # shorthand syntax: Key=k,Value=v (quoted when a value holds a space)
        return shlex.quote(",".join(f"{k}={v}" for k, v in value.items()))
    return shlex.quote(str(value))


def aws_command(action: str, params: Mapping[str, object]) -> str:
    """RegisterDBProxyTargets, {"DBProxyName": "p", "DBInstanceIdentifiers": ["db"]}
    -> aws rds register-db-proxy-targets --db-proxy-name p --db-instance-identifiers db"""
    service = SERVICE_OF_ACTION.get(action, "rds")
    parts = ["aws", service, xform_name(action).replace("_", "-")]
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            parts.append(_flag(name) if value else "--no-" + _flag(name)[2:])
        elif isinstance(value, list | tuple):
            if value:
                parts.append(_flag(name))
                parts.extend(_value(item) for item in value)
        else:
            parts.extend([_flag(name), _value(value)])
    return " ".join(parts)


def target_params(registration: Registration, identifier: str, kind: str) -> dict[str, object]:
    """The parameters of Register/DeregisterDBProxyTargets for one database on one proxy target group."""
    key = "DBClusterIdentifiers" if kind == "cluster" else "DBInstanceIdentifiers"
    return {"DBProxyName": registration.proxy, "TargetGroupName": registration.target_group, key: [identifier]}
