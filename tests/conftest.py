"""Shared fixtures: the sandbox AWS (over HTTP), storage, the engine on top of both, the Slack stand-in."""

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logs import LIBRARY_FLOOR, OWN_PACKAGES

# Bytecode caches on, even where PYTHONDONTWRITEBYTECODE is set (as on this project's machines): without them every
# xdist worker compiles the project and rewrites every test module's asserts again (about 3 s of CPU each), and so
# does every `python -m bot` process a test starts. `__pycache__/` is ignored by git.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Tests never talk to real AWS: dummy credentials, and every client is pointed at the sandbox explicitly.
os.environ.update(AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox", AWS_DEFAULT_REGION="us-east-1")
for leaked in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_RDS", "BLUEGREEN_CONFIG"):
    os.environ.pop(leaked, None)

pytest_plugins = ["tests.sandbox_fixtures", "tests.engine_fixtures", "tests.iam_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    # An xdist worker's basetemp is <the run's basetemp>/popen-gwN: the parent is the run's own, shared by its workers.
    if hasattr(config, "workerinput") and config.option.basetemp:
        from tests.matrix_fixtures import share_plans_in  # here: after pytest_plugins, so those are assert-rewritten

        share_plans_in(Path(config.option.basetemp).parent)


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """Undo what a test configured in logging: `bot.cli.main` run in-process installs the bot's handler at INFO for
    good, and every later test in that worker would format, capture and ship each of its INFO records."""
    names = ("", *OWN_PACKAGES, *LIBRARY_FLOOR)
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = set(logging.getLogger().handlers)
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h not in handlers and type(h).__module__ == "bot.logs"]:
        root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
