"""What AWS authorises each call against: the IAM action(s), the resource ARN(s) and the condition-key values.

From the Service Authorization Reference ("Actions, resources, and condition keys for Amazon RDS"): an action is
authorised against every resource type the request names (DeregisterDBProxyTargets: the proxy, its target group and
each database; RegisterDBProxyTargets: the target group), with the resource's tags as `aws:ResourceTag/<key>` and
`rds:<type>-tag/<key>`, and the request's tags as `aws:RequestTag/<key>`, `rds:req-tag/<key>` and `aws:TagKeys`.

- A proxy and a target group are named by their resource ids (`db-proxy:prx-...`, `target-group:prx-tg-...`), looked up
  in the sandbox's state; a name it does not know is authorised against `db-proxy:*` / `target-group:*`.
- A describe of every resource of a type is authorised against the type's wildcard ARN (`...:cluster:*`), as AWS's
  message shows it; a describe of one resource against that resource's ARN.
- A resource being created (a deployment, green, a snapshot's copy) has no id yet: `deployment:*`, `db:*`, ...
- Dependent actions AWS documents as required ("Authorizing access to Amazon RDS blue/green deployment operations",
  "Grant permission to tag Amazon RDS resources during creation", the reference's "Dependent actions" for deletions
  with a final snapshot) are authorised too, each against the resources it acts on.
- An action not in these tables is authorised against `*`, as AWS does for actions without resource-level
  permissions; sts:GetCallerIdentity needs no permission at all (STS API reference) and is never evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.rds.models import DBCluster, RDSBackend

from sandbox.aws.iam_policy import ContextValue, Request, context_key

NO_PERMISSION_NEEDED = {"sts:GetCallerIdentity"}
TAG_KEY_PREFIXES = {
    "db": "db",
    "cluster": "cluster",
    "pg": "pg",
    "cluster-pg": "cluster-pg",
    "snapshot": "snapshot",
    "cluster-snapshot": "cluster-snapshot",
    "og": "og",
    "subgrp": "subgrp",
    "es": "es",
    "secgrp": "secgrp",
    "ri": "ri",
}
_LIST_MEMBER = re.compile(r"^(?P<name>[A-Za-z]+)\.[A-Za-z]+\.(?P<index>\d+)$")
_TAG_PART = re.compile(r"^Tags\.[A-Za-z]+\.(?P<index>\d+)\.(?P<part>Key|Value)$")


@dataclass(frozen=True)
class Scope:
    """Where a request is authorised: its region and account, and the RDS state names resolve in."""

    region: str
    account: str
    rds: RDSBackend | None
    partition: str = "aws"

    def arn(self, kind: str, name: str) -> str:
        if kind == "global-cluster":
            return f"arn:{self.partition}:rds::{self.account}:global-cluster:{name}"
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:{kind}:{name}"


class Params:
    """A query-protocol request's parameters (form fields), with lists and tags read back."""

    def __init__(self, form: Mapping[str, str]) -> None:
        self.form = form

    def get(self, name: str) -> str | None:
        return self.form.get(name) or None

    def values(self, name: str) -> list[str]:
        found = [
            (int(m["index"]), value)
            for key, value in self.form.items()
            if (m := _LIST_MEMBER.match(key)) and m["name"] == name
        ]
        return [value for _, value in sorted(found)]

    def tags(self) -> dict[str, str]:
        parts: dict[int, dict[str, str]] = {}
        for key, value in self.form.items():
            if m := _TAG_PART.match(key):
                parts.setdefault(int(m["index"]), {})[m["part"]] = value
        return {p["Key"]: p.get("Value", "") for _, p in sorted(parts.items()) if "Key" in p}


Targets = list[tuple[str, str]]  # (IAM action, resource ARN)


def _named(scope: Scope, kind: str, value: str | None) -> str:
    """The resource a parameter names (a name or an ARN), or every resource of the kind when it names none."""
    if value and value.startswith("arn:"):
        return value
    return scope.arn(kind, value or "*")


def _proxy(scope: Scope, name: str | None) -> str:
    proxy = scope.rds.db_proxies.get(name) if scope.rds is not None and name else None
    return proxy.arn if proxy is not None else scope.arn("db-proxy", "*")


def _target_group(scope: Scope, proxy_name: str | None, group: str | None) -> str:
    proxy = scope.rds.db_proxies.get(proxy_name) if scope.rds is not None and proxy_name else None
    found = proxy.proxy_target_groups.get(group or "default") if proxy is not None else None
    return found.arn if found is not None else scope.arn("target-group", "*")


def _proxy_targets(scope: Scope, p: Params) -> list[str]:
    name = p.get("DBProxyName")
    return [
        *(_named(scope, "db", i) for i in p.values("DBInstanceIdentifiers")),
        *(_named(scope, "cluster", c) for c in p.values("DBClusterIdentifiers")),
        _proxy(scope, name),
        _target_group(scope, name, p.get("TargetGroupName")),
    ]


def _deployment_members(scope: Scope, deployment_id: str | None) -> tuple[list[Any], list[Any]]:
    """(blue resources, green resources) of a deployment the sandbox knows, clusters and instances alike."""
    deployment = (
        scope.rds.blue_green_deployments.get(deployment_id) if scope.rds is not None and deployment_id else None
    )
    pairs = getattr(deployment, "pairs", [])
    return [pair.blue for pair in pairs], [pair.green for pair in pairs]


def _by_kind(resources: list[Any], cluster_action: str, instance_action: str) -> Targets:
    return [(cluster_action if isinstance(r, DBCluster) else instance_action, r.arn) for r in resources]


def _create_blue_green(scope: Scope, p: Params) -> Targets:
    source = p.get("Source") or scope.arn("db", "*")
    found: Targets = [("rds:CreateBlueGreenDeployment", a) for a in (scope.arn("deployment", "*"), source)]
    if group := p.get("TargetDBParameterGroupName"):
        found.append(("rds:CreateBlueGreenDeployment", _named(scope, "pg", group)))
    if group := p.get("TargetDBClusterParameterGroupName"):
        found.append(("rds:CreateBlueGreenDeployment", _named(scope, "cluster-pg", group)))
    if ":cluster:" in source:  # Aurora: green's cluster, instances and endpoints
        found += [
            ("rds:CreateDBCluster", scope.arn("cluster", "*")),
            ("rds:CreateDBInstance", scope.arn("db", "*")),
            ("rds:CreateDBClusterEndpoint", scope.arn("cluster-endpoint", "*")),
        ]
    else:
        found.append(("rds:CreateDBInstanceReadReplica", scope.arn("db", "*")))
    if p.tags():
        found.append(("rds:AddTagsToResource", scope.arn("deployment", "*")))
    return found


def _switchover(scope: Scope, p: Params) -> Targets:
    deployment = p.get("BlueGreenDeploymentIdentifier")
    blue, green = _deployment_members(scope, deployment)
    return [
        ("rds:SwitchoverBlueGreenDeployment", _named(scope, "deployment", deployment)),
        *_by_kind(blue + green, "rds:ModifyDBCluster", "rds:ModifyDBInstance"),  # both are renamed
        *_by_kind(green[:1], "rds:PromoteReadReplicaDBCluster", "rds:PromoteReadReplica"),
    ]


def _delete_blue_green(scope: Scope, p: Params) -> Targets:
    deployment = p.get("BlueGreenDeploymentIdentifier")
    _, green = _deployment_members(scope, deployment)
    found: Targets = [("rds:DeleteBlueGreenDeployment", _named(scope, "deployment", deployment))]
    found += _by_kind(green, "rds:DeleteDBCluster", "rds:DeleteDBInstance")
    if any(isinstance(g, DBCluster) for g in green):
        found.append(("rds:DeleteDBClusterEndpoint", scope.arn("cluster-endpoint", "*")))
    return found


def _delete_instance(scope: Scope, p: Params) -> Targets:
    db = _named(scope, "db", p.get("DBInstanceIdentifier"))
    found: Targets = [("rds:DeleteDBInstance", db)]
    if snapshot := p.get("FinalDBSnapshotIdentifier"):
        found += [("rds:CreateDBSnapshot", db), ("rds:CreateDBSnapshot", _named(scope, "snapshot", snapshot))]
    return found


def _delete_cluster(scope: Scope, p: Params) -> Targets:
    cluster = _named(scope, "cluster", p.get("DBClusterIdentifier"))
    found: Targets = [("rds:DeleteDBCluster", cluster)]
    if snapshot := p.get("FinalDBSnapshotIdentifier"):
        snapshot_arn = _named(scope, "cluster-snapshot", snapshot)
        found += [("rds:DeleteDBCluster", snapshot_arn)]
        found += [("rds:CreateDBClusterSnapshot", cluster), ("rds:CreateDBClusterSnapshot", snapshot_arn)]
    return found


def _on(*parts: tuple[str, str]) -> Callable[[Scope, Params], list[str]]:
    """Resources named by parameters: (resource kind, parameter); a parameter left out names every resource."""

    def resources(scope: Scope, p: Params) -> list[str]:
        return [_named(scope, kind, p.get(param)) for kind, param in parts if p.get(param) or parts[0] == (kind, param)]

    return resources


def _given(*parts: tuple[str, str]) -> Callable[[Scope, Params], list[str]]:
    """Resources named by parameters only when given (optional resource types); `*` when none is."""

    def resources(scope: Scope, p: Params) -> list[str]:
        return [_named(scope, kind, p.get(param)) for kind, param in parts if p.get(param)] or ["*"]

    return resources


def _resource_name(scope: Scope, p: Params) -> list[str]:
    return [p.get("ResourceName") or "*"]


# RDS actions -> the resources they are authorised against (the same action on each).
RDS_RESOURCES: dict[str, Callable[[Scope, Params], list[str]]] = {
    "DescribeDBInstances": _on(("db", "DBInstanceIdentifier")),
    "DescribeDBClusters": _on(("cluster", "DBClusterIdentifier")),
    "DescribeDBProxies": lambda s, p: [
        _proxy(s, p.get("DBProxyName")) if p.get("DBProxyName") else s.arn("db-proxy", "*")
    ],
    "DescribeDBProxyTargetGroups": lambda s, p: [_proxy(s, p.get("DBProxyName"))],
    "DescribeDBProxyTargets": lambda s, p: [
        _proxy(s, p.get("DBProxyName")),
        _target_group(s, p.get("DBProxyName"), p.get("TargetGroupName")),
    ],
    "DescribeBlueGreenDeployments": _on(("deployment", "BlueGreenDeploymentIdentifier")),
    "DescribeDBParameterGroups": _on(("pg", "DBParameterGroupName")),
    "DescribeDBClusterParameterGroups": _on(("cluster-pg", "DBClusterParameterGroupName")),
    "DescribeDBParameters": _on(("pg", "DBParameterGroupName")),
    "DescribeDBClusterParameters": _on(("cluster-pg", "DBClusterParameterGroupName")),
    "DescribeGlobalClusters": _on(("global-cluster", "GlobalClusterIdentifier")),
    "DescribePendingMaintenanceActions": lambda s, p: [p.get("ResourceIdentifier") or "*"],
    "DescribeDBSnapshots": _given(("snapshot", "DBSnapshotIdentifier"), ("db", "DBInstanceIdentifier")),
    "DescribeDBClusterSnapshots": _given(
        ("cluster-snapshot", "DBClusterSnapshotIdentifier"), ("cluster", "DBClusterIdentifier")
    ),
    "ListTagsForResource": _resource_name,
    "AddTagsToResource": _resource_name,
    "RemoveTagsFromResource": _resource_name,
    "ModifyDBInstance": _on(("db", "DBInstanceIdentifier"), ("pg", "DBParameterGroupName")),
    "ModifyDBCluster": _on(("cluster", "DBClusterIdentifier"), ("cluster-pg", "DBClusterParameterGroupName")),
    "RegisterDBProxyTargets": lambda s, p: [_target_group(s, p.get("DBProxyName"), p.get("TargetGroupName"))],
    "DeregisterDBProxyTargets": _proxy_targets,
    "ModifyDBProxyTargetGroup": lambda s, p: [_target_group(s, p.get("DBProxyName"), p.get("TargetGroupName"))],
    "DeleteDBProxy": lambda s, p: [_proxy(s, p.get("DBProxyName"))],
    "ModifyDBProxy": lambda s, p: [_proxy(s, p.get("DBProxyName"))],
    "CreateDBSnapshot": _on(("db", "DBInstanceIdentifier"), ("snapshot", "DBSnapshotIdentifier")),
    "CreateDBClusterSnapshot": _on(
        ("cluster", "DBClusterIdentifier"), ("cluster-snapshot", "DBClusterSnapshotIdentifier")
    ),
    "DeleteDBSnapshot": _on(("snapshot", "DBSnapshotIdentifier")),
    "DeleteDBClusterSnapshot": _on(("cluster-snapshot", "DBClusterSnapshotIdentifier")),
    "RestoreDBInstanceFromDBSnapshot": _on(
        ("db", "DBInstanceIdentifier"), ("snapshot", "DBSnapshotIdentifier"), ("pg", "DBParameterGroupName")
    ),
    "RestoreDBClusterFromSnapshot": _on(
        ("cluster", "DBClusterIdentifier"),
        ("cluster-snapshot", "SnapshotIdentifier"),
        ("cluster-pg", "DBClusterParameterGroupName"),
    ),
    "RestoreDBInstanceToPointInTime": _on(
        ("db", "TargetDBInstanceIdentifier"), ("db", "SourceDBInstanceIdentifier"), ("pg", "DBParameterGroupName")
    ),
    "RestoreDBClusterToPointInTime": _on(
        ("cluster", "DBClusterIdentifier"),
        ("cluster", "SourceDBClusterIdentifier"),
        ("cluster-pg", "DBClusterParameterGroupName"),
    ),
    "CreateDBInstance": _on(
        ("db", "DBInstanceIdentifier"), ("cluster", "DBClusterIdentifier"), ("pg", "DBParameterGroupName")
    ),
    "CreateDBCluster": _on(("cluster", "DBClusterIdentifier"), ("cluster-pg", "DBClusterParameterGroupName")),
    "CreateDBInstanceReadReplica": _on(("db", "DBInstanceIdentifier"), ("db", "SourceDBInstanceIdentifier")),
    "StopDBInstance": _on(("db", "DBInstanceIdentifier")),
    "StartDBInstance": _on(("db", "DBInstanceIdentifier")),
    "RebootDBInstance": _on(("db", "DBInstanceIdentifier")),
    "PromoteReadReplica": _on(("db", "DBInstanceIdentifier")),
    "StopDBCluster": _on(("cluster", "DBClusterIdentifier")),
    "StartDBCluster": _on(("cluster", "DBClusterIdentifier")),
    "RebootDBCluster": _on(("cluster", "DBClusterIdentifier")),
    "FailoverDBCluster": _on(("cluster", "DBClusterIdentifier")),
    "DescribeDBClusterEndpoints": _given(("cluster", "DBClusterIdentifier")),
    "CreateDBProxy": _given(),
    "DescribeEvents": _given(),
    "DescribeDBEngineVersions": _given(),
}
# RDS actions whose authorisation is more than one action on the resources.
RDS_TARGETS: dict[str, Callable[[Scope, Params], Targets]] = {
    "CreateBlueGreenDeployment": _create_blue_green,
    "SwitchoverBlueGreenDeployment": _switchover,
    "DeleteBlueGreenDeployment": _delete_blue_green,
    "DeleteDBInstance": _delete_instance,
    "DeleteDBCluster": _delete_cluster,
}
# Creations that carry tags are also authorised for rds:AddTagsToResource on the new resource.
TAGGED_CREATIONS = {
    "CreateDBSnapshot": "snapshot",
    "CreateDBClusterSnapshot": "cluster-snapshot",
    "RestoreDBInstanceFromDBSnapshot": "db",
    "RestoreDBClusterFromSnapshot": "cluster",
    "RestoreDBInstanceToPointInTime": "db",
    "RestoreDBClusterToPointInTime": "cluster",
    "CreateDBInstance": "db",
    "CreateDBCluster": "cluster",
    "CreateDBInstanceReadReplica": "db",
}
OTHER_SERVICES: dict[str, Callable[[Scope, Params], list[str]]] = {
    "sts:AssumeRole": lambda s, p: [p.get("RoleArn") or "*"],
    "iam:SimulatePrincipalPolicy": lambda s, p: [p.get("PolicySourceArn") or "*"],
}


def targets(service: str, action: str, params: Params, scope: Scope) -> Targets:
    """Every (IAM action, resource ARN) the call is authorised for; empty when it needs no permission."""
    iam_action = f"{service}:{action}"
    if iam_action in NO_PERMISSION_NEEDED:
        return []
    if service == "rds" and action in RDS_TARGETS:
        return RDS_TARGETS[action](scope, params)
    if service == "rds" and action in RDS_RESOURCES:
        found = [(iam_action, arn) for arn in RDS_RESOURCES[action](scope, params)]
        if action in TAGGED_CREATIONS and params.tags():
            found.append(("rds:AddTagsToResource", scope.arn(TAGGED_CREATIONS[action], "*")))
        return found
    resources = OTHER_SERVICES.get(iam_action, lambda s, p: ["*"])(scope, params)
    return [(iam_action, arn) for arn in resources]


def resource_tags(scope: Scope, arn: str) -> dict[str, str]:
    """The tags the sandbox's state holds for the resource (none for `*`, a wildcard or an unknown resource)."""
    if scope.rds is None or not arn.startswith("arn:") or arn.endswith(":*"):
        return {}
    if ":deployment:" in arn:
        found = scope.rds.blue_green_deployments.get(arn.rsplit(":", 1)[-1])
        return {t["Key"]: t.get("Value", "") for t in getattr(found, "tags", None) or []}
    try:
        return {t["Key"]: t.get("Value", "") for t in scope.rds.list_tags_for_resource(arn)}
    except Exception:  # an ARN moto cannot resolve (another service's, a malformed one) has no tags here
        return {}


def requests(
    service: str, action: str, params: Params, scope: Scope, principal: Mapping[str, ContextValue]
) -> list[Request]:
    """The authorization requests of one call, each with its context: principal keys, the request's tags, and the
    resource's tags."""
    request_tags = params.tags()
    common: dict[str, ContextValue] = {**principal, context_key("aws:RequestedRegion"): scope.region}
    for key, value in request_tags.items():
        common[context_key(f"aws:RequestTag/{key}")] = value
        common[context_key(f"rds:req-tag/{key}")] = value
    tag_keys = list(request_tags) or params.values("TagKeys")
    if tag_keys:
        common[context_key("aws:TagKeys")] = tag_keys
    found = []
    for iam_action, arn in targets(service, action, params, scope):
        context = dict(common)
        kind = arn.split(":")[5] if arn.count(":") >= 6 else ""
        for key, value in resource_tags(scope, arn).items():
            context[context_key(f"aws:ResourceTag/{key}")] = value
            if kind in TAG_KEY_PREFIXES:
                context[context_key(f"rds:{TAG_KEY_PREFIXES[kind]}-tag/{key}")] = value
        found.append(Request(iam_action, arn, context))
    return found
