"""Helpers for the gates' tests: green's identifier, and the replica lag as CloudWatch shows it.

CloudWatch (moto's, like AWS's after its ingestion delay) does not return a datapoint of the current second: a test
that sets the lag waits until CloudWatch shows it before it expects the bot to read it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sandbox.aws import Sandbox
from sandbox.waiting import async_wait_until


def green_of(rds: Any, database: str) -> str:
    """The green instance of the database's active deployment."""
    arn = rds.describe_db_instances(DBInstanceIdentifier=database)["DBInstances"][0]["DBInstanceArn"]
    deployment = rds.describe_blue_green_deployments(Filters=[{"Name": "source", "Values": [arn]}])
    return deployment["BlueGreenDeployments"][0]["Target"].rsplit(":", 1)[-1]


def latest_replica_lag(cloudwatch: Any, instance: str) -> float | None:
    end = dt.datetime.now(dt.UTC)
    metric = {"Namespace": "AWS/RDS", "MetricName": "ReplicaLag",
              "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}]}  # fmt: skip
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "lag", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum"}}],
        StartTime=end - dt.timedelta(minutes=5),
        EndTime=end,
        ScanBy="TimestampDescending",
    )
    values = response["MetricDataResults"][0]["Values"]
    return values[0] if values else None


async def lag_shows(sandbox: Sandbox, cloudwatch: Any, rds: Any, seconds: float, database: str = "orders-pg") -> None:
    """Green's replica lag (a physical or binlog replica: ReplicaLag on green) set to `seconds`, and shown by
    CloudWatch."""
    green = green_of(rds, database)
    sandbox.control.set_replica_lag(database, seconds)
    await async_wait_until(
        lambda: latest_replica_lag(cloudwatch, green) == seconds, 70, what=f"ReplicaLag {seconds} s in CloudWatch"
    )
