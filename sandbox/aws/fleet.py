"""The sample fleet created on start and on reset: three databases behind four proxies, all targets AVAILABLE.

Each database is ready for a blue/green deployment as AWS asks ("Creating a blue/green deployment", "Preparing"):
automated backups on (7 days), a custom parameter group in sync (PostgreSQL: `rds.logical_replication` = 1, which
major-version upgrades and Aurora PostgreSQL need), deletion protection off, and `team` / `cost-center` tags.

Each database (an Aurora cluster's instances too), each proxy and each proxy's target group carries the tag
`bluegreen-bot:environment` the shipped IAM policy keys on (see the README's IAM section): orders-pg and
ledger-aurora with their proxies are `production`; billing-mysql and its two proxies belong to another team's
environment, `billing`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from moto.ec2.models import ec2_backends
from moto.secretsmanager.models import secretsmanager_backends

from sandbox.aws.parameter_groups import parameter
from sandbox.aws.rds_behaviours import ACCOUNT_ID, REGION, SandboxRDSBackend

PROXY_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/rds-proxy-secrets-reader"
ENVIRONMENT_TAG = "bluegreen-bot:environment"
MASTER_USERNAME = "app_admin"
SANDBOX_PASSWORD = "sandbox-not-a-secret"


@dataclass(frozen=True)
class FleetProxy:
    name: str
    engine_family: str
    instances: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()


BACKUP_RETENTION_DAYS = 7
LOGICAL_REPLICATION = parameter("rds.logical_replication", "1", "Enables logical decoding.", "boolean")
FLEET_INSTANCES = {
    "orders-pg": {"engine": "postgres", "engine_version": "15.7", "db_instance_class": "db.r6g.large"},
    "billing-mysql": {"engine": "mysql", "engine_version": "8.0.36", "db_instance_class": "db.r6g.large"},
}
FLEET_CLUSTERS = {
    "ledger-aurora": {
        "engine": "aurora-postgresql",
        "engine_version": "15.4",
        "members": ("ledger-aurora-1", "ledger-aurora-2"),  # the first is the writer
        "db_instance_class": "db.r6g.large",
    }
}
# database -> (parameter group, family, parameters); a cluster's is a DB cluster parameter group.
FLEET_PARAMETER_GROUPS = {
    "orders-pg": ("orders-pg15", "postgres15", [LOGICAL_REPLICATION]),
    "billing-mysql": ("billing-mysql80", "mysql8.0", [parameter("binlog_format", "ROW", "Binary logging format.")]),
    "ledger-aurora": (
        "ledger-aurora-pg15",
        "aurora-postgresql15",
        [LOGICAL_REPLICATION, parameter("synchronous_commit", "on", "Synchronous commit.")],
    ),
}
FLEET_ENVIRONMENTS = {"orders-pg": "production", "billing-mysql": "billing", "ledger-aurora": "production"}
FLEET_TAGS = {
    "orders-pg": {"team": "orders", "cost-center": "cc-1001", ENVIRONMENT_TAG: "production"},
    "billing-mysql": {"team": "billing", "cost-center": "cc-2002", ENVIRONMENT_TAG: "billing"},
    "ledger-aurora": {"team": "ledger", "cost-center": "cc-3003", ENVIRONMENT_TAG: "production"},
}


def _tags(database: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in FLEET_TAGS[database].items()]


FLEET_PROXIES = (
    FleetProxy("orders-proxy", "POSTGRESQL", instances=("orders-pg",)),
    FleetProxy("billing-proxy", "MYSQL", instances=("billing-mysql",)),
    FleetProxy("billing-reporting-proxy", "MYSQL", instances=("billing-mysql",)),
    FleetProxy("ledger-proxy", "POSTGRESQL", clusters=("ledger-aurora",)),
)


def _default_subnets() -> list[str]:
    ec2 = ec2_backends[ACCOUNT_ID][REGION]
    return sorted(s.id for s in ec2.describe_subnets() if s.default_for_az)[:2]


def _proxy_secret_arn(name: str) -> str:
    secrets = secretsmanager_backends[ACCOUNT_ID][REGION]
    created = secrets.create_secret(
        name=f"rds-proxy/{name}",
        secret_string=json.dumps({"username": MASTER_USERNAME, "password": SANDBOX_PASSWORD}),
        secret_binary=None,
        description=f"Credentials RDS Proxy {name} uses (sandbox)",
        tags=None,
        kms_key_id=None,
        client_request_token=None,
        replica_regions=[],
        force_overwrite=False,
    )
    return json.loads(created)["ARN"]


def create_fleet(backend: SandboxRDSBackend) -> None:
    """Create the sample fleet directly in the backends (the caller holds the sandbox lock)."""
    common = {"master_username": MASTER_USERNAME, "master_user_password": SANDBOX_PASSWORD, "allocated_storage": 100}
    protection = {"backup_retention_period": BACKUP_RETENTION_DAYS, "deletion_protection": False}
    for database, (group, family, parameters) in FLEET_PARAMETER_GROUPS.items():
        backend.create_parameter_group_with(group, family, parameters, cluster=database in FLEET_CLUSTERS)
    for db_id, spec in FLEET_INSTANCES.items():
        backend.create_db_instance(
            {
                "db_instance_identifier": db_id,
                **spec,
                **common,
                **protection,
                "db_parameter_group_name": FLEET_PARAMETER_GROUPS[db_id][0],
                "tags": _tags(db_id),
            }
        )
    for cluster_id, spec in FLEET_CLUSTERS.items():
        backend.create_db_cluster(
            {
                "db_cluster_identifier": cluster_id,
                "engine": spec["engine"],
                "engine_version": spec["engine_version"],
                "master_username": MASTER_USERNAME,
                "master_user_password": SANDBOX_PASSWORD,
                "db_cluster_parameter_group_name": FLEET_PARAMETER_GROUPS[cluster_id][0],
                "tags": _tags(cluster_id),
                **protection,
            }
        )
        for promotion_tier, member_id in enumerate(spec["members"]):
            backend.create_db_instance(
                {
                    "db_instance_identifier": member_id,
                    "db_cluster_identifier": cluster_id,
                    "engine": spec["engine"],
                    "db_instance_class": spec["db_instance_class"],
                    "promotion_tier": promotion_tier,
                    "tags": _tags(cluster_id),
                }
            )
    subnets = _default_subnets()
    for proxy in FLEET_PROXIES:
        environment = [{"Key": ENVIRONMENT_TAG, "Value": FLEET_ENVIRONMENTS[(proxy.instances + proxy.clusters)[0]]}]
        created = backend.create_db_proxy(
            db_proxy_name=proxy.name,
            engine_family=proxy.engine_family,
            auth=[{"AuthScheme": "SECRETS", "SecretArn": _proxy_secret_arn(proxy.name), "IAMAuth": "DISABLED"}],
            role_arn=PROXY_ROLE_ARN,
            vpc_subnet_ids=subnets,
            vpc_security_group_ids=None,
            require_tls=True,
            idle_client_timeout=1800,
            debug_logging=False,
            tags=environment,
        )
        created.proxy_target_groups["default"].tags = environment
        backend.register_db_proxy_targets(
            db_proxy_name=proxy.name,
            target_group_name="default",
            db_cluster_identifiers=list(proxy.clusters),
            db_instance_identifiers=list(proxy.instances),
            initial_state="AVAILABLE",
        )


def describe_fleet() -> list[str]:
    """Human-readable lines for the CLI banner."""
    lines = [f"{db_id}: RDS for {s['engine']} {s['engine_version']}" for db_id, s in FLEET_INSTANCES.items()]
    lines += [
        f"{cid}: {s['engine']} {s['engine_version']} cluster, writer {s['members'][0]}, readers "
        + ", ".join(s["members"][1:])
        for cid, s in FLEET_CLUSTERS.items()
    ]
    return lines
