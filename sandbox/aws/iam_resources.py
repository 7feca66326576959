"""What AWS authorises each call against: the IAM action(s), the resource ARN(s) and the condition-key values.

From the Service Authorization Reference ("Actions, resources, and condition keys for Amazon RDS"): an action is
authorised against every resource type the request names (DeregisterDBProxyTargets: the proxy, its target group and
each database; RegisterDBProxyTargets: the target group), with the resource's tags as `aws:ResourceTag/<key>` and
`rds:<type>-tag/<key>`, and the request's tags as `aws:RequestTag/<key>`, `rds:req-tag/<key>` and `aws:TagKeys`.

- A proxy and a target group are named by their resource ids (`db-proxy:prx-...`, `target-group:prx-tg-...`), looked up
  in the sandbox's state; a name it does not know is authorised against `db-proxy:*` / `target-group:*`.
- A describe of every resource of a type is authorised against the type's wildcard ARN (`...:cluster:*`), as AWS's
  message shows it; a describe of one resource against that resource's ARN.
- A resource being created has the name the request gives it (a restore's target, a final snapshot), or, when it
  has no id yet, the type's wildcard (`deployment:*`, `db-proxy:*`).
- Required resource types the request leaves to a default (a restore's option and subnet groups) are authorised
  against the type's wildcard (`og:*`), which only a `*` pattern for the type matches.
- Dependent actions AWS documents as required are authorised too, each against the resources it acts on: the
  blue/green operations' (`sandbox/aws/iam_blue_green.py`: against internally named resources), AddTagsToResource
  for a creation that carries tags ("Grant permission to tag Amazon RDS resources during creation"), CreateDBSnapshot
  for a deletion with a final snapshot, and CreateDBProxy's iam:PassRole of its RoleArn with `iam:PassedToService`
  `rds.amazonaws.com` and AddTagsToResource.
- An action not in these tables is authorised against `*`, as AWS does for actions without resource-level
  permissions; sts:GetCallerIdentity needs no permission at all (STS API reference) and is never evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sandbox.aws import iam_blue_green
from sandbox.aws.iam_policy import ContextValue, Request, context_key
from sandbox.aws.iam_targets import Params, Scope, Target, named, resource_tags

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
PROXY_SERVICE = "rds.amazonaws.com"  # the service principal CreateDBProxy passes its RoleArn to


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
        *(named(scope, "db", i) for i in p.values("DBInstanceIdentifiers")),
        *(named(scope, "cluster", c) for c in p.values("DBClusterIdentifiers")),
        _proxy(scope, name),
        _target_group(scope, name, p.get("TargetGroupName")),
    ]


def _delete_instance(scope: Scope, p: Params) -> list[Target]:
    db = named(scope, "db", p.get("DBInstanceIdentifier"))
    found = [Target("rds:DeleteDBInstance", db)]
    if snapshot := p.get("FinalDBSnapshotIdentifier"):
        found += [
            Target("rds:CreateDBSnapshot", db),
            Target("rds:CreateDBSnapshot", named(scope, "snapshot", snapshot)),
        ]
    return found


def _delete_cluster(scope: Scope, p: Params) -> list[Target]:
    cluster = named(scope, "cluster", p.get("DBClusterIdentifier"))
    found = [Target("rds:DeleteDBCluster", cluster)]
    if snapshot := p.get("FinalDBSnapshotIdentifier"):
        snapshot_arn = named(scope, "cluster-snapshot", snapshot)
        found += [Target("rds:DeleteDBCluster", snapshot_arn)]
        found += [Target("rds:CreateDBClusterSnapshot", cluster), Target("rds:CreateDBClusterSnapshot", snapshot_arn)]
    return found


def _create_proxy(scope: Scope, p: Params) -> list[Target]:
    """CreateDBProxy has no resource type ("*"); its dependent actions are iam:PassRole of its RoleArn, passed to
    RDS (`iam:PassedToService`), and AddTagsToResource on the new proxy when the request carries tags."""
    found = [Target("rds:CreateDBProxy", "*")]
    if role := p.get("RoleArn"):
        found.append(Target("iam:PassRole", role, {}, {context_key("iam:PassedToService"): PROXY_SERVICE}))
    if p.tags():
        found.append(Target("rds:AddTagsToResource", scope.arn("db-proxy", "*")))
    return found


def _on(*parts: tuple[str, str]) -> Callable[[Scope, Params], list[str]]:
    """Resources named by parameters: (resource kind, parameter); a parameter left out names every resource."""

    def resources(scope: Scope, p: Params) -> list[str]:
        return [named(scope, kind, p.get(param)) for kind, param in parts if p.get(param) or parts[0] == (kind, param)]

    return resources


def _given(*parts: tuple[str, str]) -> Callable[[Scope, Params], list[str]]:
    """Resources named by parameters only when given (optional resource types); `*` when none is."""

    def resources(scope: Scope, p: Params) -> list[str]:
        return [named(scope, kind, p.get(param)) for kind, param in parts if p.get(param)] or ["*"]

    return resources


def _required(*parts: tuple[str, str]) -> Callable[[Scope, Params], list[str]]:
    """Resource types the reference marks required: the one a parameter names, else the type's wildcard (which
    only a `*` pattern for the type matches: RDS picks a default the request does not name)."""

    def resources(scope: Scope, p: Params) -> list[str]:
        return [named(scope, kind, p.get(param)) for kind, param in parts]

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
    "RestoreDBInstanceToPointInTime": lambda s, p: [
        *_on(("db", "TargetDBInstanceIdentifier"), ("db", "SourceDBInstanceIdentifier"))(s, p),
        *_required(("pg", "DBParameterGroupName"), ("og", "OptionGroupName"), ("subgrp", "DBSubnetGroupName"))(s, p),
    ],
    "RestoreDBClusterToPointInTime": lambda s, p: [
        *_on(("cluster", "DBClusterIdentifier"), ("cluster", "SourceDBClusterIdentifier"))(s, p),
        *_required(
            ("cluster-pg", "DBClusterParameterGroupName"), ("og", "OptionGroupName"), ("subgrp", "DBSubnetGroupName")
        )(s, p),
    ],
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
    "DescribeEvents": _given(),
    "DescribeDBEngineVersions": _given(),
}
# RDS actions whose authorisation is more than one action on the resources.
RDS_TARGETS: dict[str, Callable[[Scope, Params], list[Target]]] = {
    "CreateBlueGreenDeployment": iam_blue_green.create,
    "SwitchoverBlueGreenDeployment": iam_blue_green.switchover,
    "DeleteBlueGreenDeployment": iam_blue_green.delete,
    "DeleteDBInstance": _delete_instance,
    "DeleteDBCluster": _delete_cluster,
    "CreateDBProxy": _create_proxy,
}
# Creations that carry tags are also authorised for rds:AddTagsToResource on the new resource ("Grant permission to
# tag Amazon RDS resources during creation"): (its kind, the parameter naming it).
TAGGED_CREATIONS = {
    "CreateDBSnapshot": ("snapshot", "DBSnapshotIdentifier"),
    "CreateDBClusterSnapshot": ("cluster-snapshot", "DBClusterSnapshotIdentifier"),
    "RestoreDBInstanceFromDBSnapshot": ("db", "DBInstanceIdentifier"),
    "RestoreDBClusterFromSnapshot": ("cluster", "DBClusterIdentifier"),
    "RestoreDBInstanceToPointInTime": ("db", "TargetDBInstanceIdentifier"),
    "RestoreDBClusterToPointInTime": ("cluster", "DBClusterIdentifier"),
    "CreateDBInstance": ("db", "DBInstanceIdentifier"),
    "CreateDBCluster": ("cluster", "DBClusterIdentifier"),
    "CreateDBInstanceReadReplica": ("db", "DBInstanceIdentifier"),
}
OTHER_SERVICES: dict[str, Callable[[Scope, Params], list[str]]] = {
    "sts:AssumeRole": lambda s, p: [p.get("RoleArn") or "*"],
    "iam:SimulatePrincipalPolicy": lambda s, p: [p.get("PolicySourceArn") or "*"],
}


def targets(service: str, action: str, params: Params, scope: Scope) -> list[Target]:
    """Every (IAM action, resource) the call is authorised for; empty when it needs no permission."""
    iam_action = f"{service}:{action}"
    if iam_action in NO_PERMISSION_NEEDED:
        return []
    if service == "rds" and action in RDS_TARGETS:
        return RDS_TARGETS[action](scope, params)
    if service == "rds" and action in RDS_RESOURCES:
        found = [Target(iam_action, arn) for arn in RDS_RESOURCES[action](scope, params)]
        if action in TAGGED_CREATIONS and params.tags():
            kind, param = TAGGED_CREATIONS[action]
            found.append(Target("rds:AddTagsToResource", named(scope, kind, params.get(param)), {}))
        return found
    resources = OTHER_SERVICES.get(iam_action, lambda s, p: ["*"])(scope, params)
    return [Target(iam_action, arn) for arn in resources]


def requests(
    service: str, action: str, params: Params, scope: Scope, principal: Mapping[str, ContextValue]
) -> list[Request]:
    """The authorization requests of one call, each with its context: principal keys, the request's tags, the
    resource's tags, and the keys only that authorization has."""
    request_tags = params.tags()
    common: dict[str, ContextValue] = {**principal, context_key("aws:RequestedRegion"): scope.region}
    for key, value in request_tags.items():
        common[context_key(f"aws:RequestTag/{key}")] = value
        common[context_key(f"rds:req-tag/{key}")] = value
    tag_keys = list(request_tags) or params.values("TagKeys")
    if tag_keys:
        common[context_key("aws:TagKeys")] = tag_keys
    found = []
    for target in targets(service, action, params, scope):
        context = {**common, **target.context}
        arn = target.resource
        kind = arn.split(":")[5] if arn.count(":") >= 6 else ""
        tags = resource_tags(scope, arn) if target.tags is None else target.tags
        for key, value in tags.items():
            context[context_key(f"aws:ResourceTag/{key}")] = value
            if kind in TAG_KEY_PREFIXES:
                context[context_key(f"rds:{TAG_KEY_PREFIXES[kind]}-tag/{key}")] = value
        found.append(Request(target.action, arn, context))
    return found
