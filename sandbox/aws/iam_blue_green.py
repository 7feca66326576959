"""What the three blue/green operations are authorised for, the actions AWS takes on the caller's behalf included.

From "Authorizing access to Amazon RDS blue/green deployment operations" (RDS and Aurora user guides) and the
Service Authorization Reference's dependent actions:

- CreateBlueGreenDeployment: the new deployment (`deployment:*`), the source, the target parameter groups asked for,
  AddTagsToResource on the deployment when the request carries tags; then, for green, CreateDBInstanceReadReplica
  per instance (blue and each of its replicas), or for Aurora CreateDBCluster, CreateDBInstance per member and
  CreateDBClusterEndpoint.
- SwitchoverBlueGreenDeployment: the deployment; ModifyDBInstance / ModifyDBCluster on every blue and green member
  (both are renamed) and PromoteReadReplica / PromoteReadReplicaDBCluster on green's primary.
- DeleteBlueGreenDeployment: the deployment; with DeleteTarget, DeleteDBInstance / DeleteDBCluster on every green
  member and, for Aurora, DeleteDBClusterEndpoint.

"Amazon RDS provisions and modifies resources in the staging environment on your behalf. These resources include DB
instances that use an internally defined naming convention. Therefore, attached IAM policies can't contain partial
resource name patterns such as my-db-prefix-*. Only wildcards (*) are supported." So every action AWS takes on the
caller's behalf (all but the operation itself) is authorised against the resource's internal name, here its
resource id (`db:db-...`, `cluster:cluster-...`; a fresh one for what does not exist yet): `*` and `db:*` match
it, `db:*-green-*` does not. It keeps the tags of the resource it stands for (green carries blue's), so
`aws:ResourceTag/...` and `rds:db-tag/...` conditions work, as the guide recommends ("we recommend using resource tags
and other supported attributes to control access to these resources, rather than wildcards").

Not modelled: the dependent PromoteReadReplica the reference lists for DeleteBlueGreenDeployment (when AWS needs it
is not documented).
"""

from __future__ import annotations

import random
import string
from typing import Any

from moto.rds.models import DBCluster

from sandbox.aws.iam_targets import Params, Scope, Target, named, tags_of


def _fresh_id(prefix: str) -> str:
    return f"{prefix}-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=26))


def _internal(scope: Scope, resource: Any, action: str) -> Target:
    """`action` on `resource` as AWS names it internally (its resource id), with its tags."""
    if isinstance(resource, DBCluster):
        ident = getattr(resource, "db_cluster_resource_id", None) or _fresh_id("cluster")
        return Target(action, scope.arn("cluster", ident), tags_of(resource))
    ident = getattr(resource, "dbi_resource_id", None) or _fresh_id("db")
    return Target(action, scope.arn("db", ident), tags_of(resource))


def _by_kind(scope: Scope, resources: list[Any], cluster_action: str, instance_action: str) -> list[Target]:
    return [_internal(scope, r, cluster_action if isinstance(r, DBCluster) else instance_action) for r in resources]


def _source(scope: Scope, arn: str | None) -> Any | None:
    resolve = getattr(scope.rds, "resolve_arn", None)
    if resolve is None or not arn:
        return None
    try:
        return resolve(arn)
    except Exception:  # unknown source: RDS refuses the call itself, after authorization
        return None


def _members(scope: Scope, deployment_id: str | None) -> tuple[list[Any], list[Any]]:
    """(blue resources, green resources) of a deployment the sandbox knows, clusters and instances alike."""
    deployment = (
        scope.rds.blue_green_deployments.get(deployment_id) if scope.rds is not None and deployment_id else None
    )
    pairs = getattr(deployment, "pairs", [])
    return [pair.blue for pair in pairs], [pair.green for pair in pairs]


def create(scope: Scope, p: Params) -> list[Target]:
    source_arn = p.get("Source") or scope.arn("db", "*")
    found = [Target("rds:CreateBlueGreenDeployment", a) for a in (scope.arn("deployment", "*"), source_arn)]
    if group := p.get("TargetDBParameterGroupName"):
        found.append(Target("rds:CreateBlueGreenDeployment", named(scope, "pg", group)))
    if group := p.get("TargetDBClusterParameterGroupName"):
        found.append(Target("rds:CreateBlueGreenDeployment", named(scope, "cluster-pg", group)))
    if p.tags():
        found.append(Target("rds:AddTagsToResource", scope.arn("deployment", "*")))
    source = _source(scope, source_arn)
    new = {}  # what green is made of does not exist yet: fresh internal names, no tags
    if isinstance(source, DBCluster) or (source is None and ":cluster:" in source_arn):
        members = len(getattr(source, "members", [])) or 1
        found.append(Target("rds:CreateDBCluster", scope.arn("cluster", _fresh_id("cluster")), new))
        found += [Target("rds:CreateDBInstance", scope.arn("db", _fresh_id("db")), new) for _ in range(members)]
        found.append(Target("rds:CreateDBClusterEndpoint", scope.arn("cluster-endpoint", _fresh_id("endpoint")), new))
    else:
        instances = 1 + len(getattr(source, "replicas", []) or [])
        found += [
            Target("rds:CreateDBInstanceReadReplica", scope.arn("db", _fresh_id("db")), new) for _ in range(instances)
        ]
    return found


def switchover(scope: Scope, p: Params) -> list[Target]:
    deployment = p.get("BlueGreenDeploymentIdentifier")
    blue, green = _members(scope, deployment)
    return [
        Target("rds:SwitchoverBlueGreenDeployment", named(scope, "deployment", deployment)),
        *_by_kind(scope, blue + green, "rds:ModifyDBCluster", "rds:ModifyDBInstance"),  # both are renamed
        *_by_kind(scope, green[:1], "rds:PromoteReadReplicaDBCluster", "rds:PromoteReadReplica"),
    ]


def delete(scope: Scope, p: Params) -> list[Target]:
    deployment = p.get("BlueGreenDeploymentIdentifier")
    found = [Target("rds:DeleteBlueGreenDeployment", named(scope, "deployment", deployment))]
    if (p.get("DeleteTarget") or "").lower() != "true":
        return found
    _, green = _members(scope, deployment)
    found += _by_kind(scope, green, "rds:DeleteDBCluster", "rds:DeleteDBInstance")
    if any(isinstance(g, DBCluster) for g in green):
        found.append(Target("rds:DeleteDBClusterEndpoint", scope.arn("cluster-endpoint", _fresh_id("endpoint")), {}))
    return found
