"""Shared fixtures: the sandbox AWS (over HTTP), storage, the engine on top of both, the Slack stand-in."""

import os

# Tests never talk to real AWS: dummy credentials, and every client is pointed at the sandbox explicitly.
os.environ.update(AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox", AWS_DEFAULT_REGION="us-east-1")
for leaked in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_RDS", "BLUEGREEN_CONFIG"):
    os.environ.pop(leaked, None)

pytest_plugins = ["tests.sandbox_fixtures", "tests.engine_fixtures", "tests.iam_fixtures"]
