"""The RDS faults the sandbox raises where moto has none or raises the wrong one.

Each code matches an error shape in botocore's RDS model, so moto serialises it with the right HTTP status.
"""

from __future__ import annotations

from moto.rds.exceptions import RDSClientError


def fault(code: str, message: str) -> RDSClientError:
    return RDSClientError(code, message)


def proxy_not_found(proxy: str) -> RDSClientError:
    return fault("DBProxyNotFoundFault", f"The specified proxy name {proxy} doesn't correspond to a proxy.")


def target_group_not_found(proxy: str, group: str) -> RDSClientError:
    return fault(
        "DBProxyTargetGroupNotFoundFault",
        f"The specified target group {group} doesn't exist for proxy {proxy}.",
    )


def instance_not_found(db_id: str) -> RDSClientError:
    return fault("DBInstanceNotFound", f"DBInstance {db_id} not found.")


def cluster_not_found(cluster_id: str) -> RDSClientError:
    return fault("DBClusterNotFoundFault", f"DBCluster {cluster_id} not found.")


def target_already_registered(proxy: str, db_id: str) -> RDSClientError:
    return fault(
        "DBProxyTargetAlreadyRegisteredFault",
        f"The proxy {proxy} already has a target registered for {db_id}.",
    )


def target_not_found(proxy: str, db_id: str) -> RDSClientError:
    return fault("DBProxyTargetNotFoundFault", f"{db_id} is not registered with proxy {proxy}.")


def invalid_instance_state(message: str) -> RDSClientError:
    return fault("InvalidDBInstanceState", message)


def invalid_cluster_state(message: str) -> RDSClientError:
    return fault("InvalidDBClusterStateFault", message)


def invalid_deployment_state(message: str) -> RDSClientError:
    return fault("InvalidBlueGreenDeploymentStateFault", message)


def deployment_not_found(deployment_id: str) -> RDSClientError:
    return fault("BlueGreenDeploymentNotFoundFault", f"BlueGreenDeployment {deployment_id} not found.")


def invalid_parameter_value(message: str) -> RDSClientError:
    return fault("InvalidParameterValue", message)


def invalid_parameter_combination(message: str) -> RDSClientError:
    return fault("InvalidParameterCombination", message)


def source_behind_proxy(kind: str, db_id: str, proxy: str) -> RDSClientError:
    """Legacy personality: Blue/Green Deployments refuse databases registered with RDS Proxy."""
    code = "SourceClusterNotSupportedFault" if kind == "cluster" else "SourceDatabaseNotSupportedFault"
    noun = "DB cluster" if kind == "cluster" else "DB instance"
    return fault(
        code,
        f"The source {noun} {db_id} is associated with RDS Proxy {proxy}. "
        "Blue/Green Deployments don't support databases associated with RDS Proxy.",
    )
