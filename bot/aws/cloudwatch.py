"""CloudWatch GetMetricData for "the latest value" of a few AWS/RDS series: one request shape and one reading of the
answer, shared by the proxy metrics (`bot/aws/rds_proxies.py`) and the replica-lag gate (`bot/aws/database_reads.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

# (metric name, dimension name, dimension value), e.g. ("ReplicaLag", "DBInstanceIdentifier", "orders-pg-green-x")
Series = tuple[str, str, str]


def latest_metric_params(series: Sequence[Series], *, minutes: int) -> dict[str, Any]:
    """GetMetricData parameters for each series' Maximum over 60 s periods, newest first, over the last `minutes`
    (AWS/RDS publishes these metrics at one-minute granularity)."""
    end = dt.datetime.now(dt.UTC)
    queries = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {"Namespace": "AWS/RDS", "MetricName": name, "Dimensions": [{"Name": key, "Value": value}]},
                "Period": 60,
                "Stat": "Maximum",
            },
        }
        for i, (name, key, value) in enumerate(series)
    ]
    return {
        "MetricDataQueries": queries,
        "StartTime": end - dt.timedelta(minutes=minutes),
        "EndTime": end,
        "ScanBy": "TimestampDescending",
    }


def latest_values(response: dict[str, Any], count: int) -> list[float | None]:
    """The newest datapoint of each of the `count` series asked for, in order; None where there is none."""
    values: list[float | None] = [None] * count
    for result in response.get("MetricDataResults", []):
        index = int(result["Id"][1:])
        if result.get("Values") and 0 <= index < count:
            values[index] = float(result["Values"][0])
    return values
