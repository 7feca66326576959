"""boto3 clients pointed at a sandbox endpoint, with the sandbox's dummy credentials and botocore's standard retries.

For tests, benchmarks and tooling; the bot itself uses aiobotocore through `bot/aws/gateway.py`.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"


def boto3_client(endpoint: str, service: str = "rds", max_attempts: int = 3) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )
