"""RDS Proxy CloudWatch metrics, published into moto's CloudWatch backend on the same server."""

from __future__ import annotations

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow

from sandbox.aws.rds_behaviours import ACCOUNT_ID, REGION

NAMESPACE = "AWS/RDS"
BASELINE_CLIENT_CONNECTIONS = 12
BASELINE_DATABASE_CONNECTIONS = 4


def publish_proxy_metrics(routes: dict[str, str | None], open_connections: dict[str, int]) -> None:
    """One datum per metric and proxy: non-zero / 100 % while it has an AVAILABLE target, else 0."""
    timestamp = utcnow()
    metric_data = []
    for proxy, target in sorted(routes.items()):
        available = target is not None
        clients = BASELINE_CLIENT_CONNECTIONS + open_connections.get(proxy, 0) if available else 0
        values = {
            "ClientConnections": (clients, "Count"),
            "DatabaseConnections": (BASELINE_DATABASE_CONNECTIONS if available else 0, "Count"),
            "AvailabilityPercentage": (100.0 if available else 0.0, "Percent"),
        }
        for name, (value, unit) in values.items():
            metric_data.append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "ProxyName", "Value": proxy}],
                    "Timestamp": timestamp,
                    "Value": float(value),
                    "Unit": unit,
                }
            )
    if metric_data:
        cloudwatch_backends[ACCOUNT_ID][REGION].put_metric_data(NAMESPACE, metric_data)
