"""A rehearsal's cost estimate, confirmed before anything starts: what the engine reads from the sandbox AWS over HTTP
(classes, storage, proxies, expected duration), and `python -m bot rehearse` asking for it (`--yes`, or a terminal).
The Slack side: tests/test_slack_rehearse.py."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load_settings
from bot.errors import BadRequest
from bot.planning.rehearsal_cost import PLANNING_DEFAULTS, duration
from bot.workflow.engine import Engine
from storage import open_store
from tests.bot_fixtures import REPO, aws_mutations
from tests.engine_fixtures import engine_env, request, sandbox_gateways
from tests.matrix_fixtures import bot_env


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(engine_env(tmp_path / "bluegreen.db", BLUEGREEN_REHEARSALS="true"))


async def test_the_estimate_names_blues_class_storage_proxy_and_an_upgrade_phase_and_changes_nothing(engine, sandbox):
    estimate = await engine.rehearsal_estimate(request("rehearse", "orders-pg", engine_version="16.4"))

    assert [(m.identifier, m.instance_class) for m in estimate.members] == [("orders-pg", "db.r6g.large")]
    assert estimate.instance_count == 2 and estimate.allocated_storage == 100
    assert estimate.proxies == ("orders-proxy",) and estimate.engine == "postgres 15.7 -> 16.4"
    phases = {phase.name: phase.seconds for phase in estimate.phases}
    assert list(phases) == ["restore", "proxies", "green", "engine upgrade", "switchover", "teardown"]
    assert phases["engine upgrade"] == PLANNING_DEFAULTS["upgrade"]
    text = "\n".join(estimate.lines())
    for shown in ("db.r6g.large", "100 GiB", "2 in all: the clone (db.r6g.large) and green", "1, like orders-proxy"):
        assert shown in text, text
    assert f"expected duration: about {duration(estimate.seconds)} (restore 20 min" in text
    assert "not AWS figures" in text
    assert aws_mutations(sandbox.control.timeline()) == []
    assert engine.store.runs.list(limit=5) == []


async def test_an_aurora_estimate_counts_every_member_twice_and_billing_mysql_two_proxies(engine):
    aurora = await engine.rehearsal_estimate(request("rehearse", "ledger-aurora"))
    mysql = await engine.rehearsal_estimate(request("rehearse", "billing-mysql"))

    assert [(m.identifier, m.writer) for m in aurora.members] == [("ledger-aurora-1", True), ("ledger-aurora-2", False)]
    assert aurora.aurora and aurora.instance_count == 4
    assert "engine upgrade" not in {phase.name for phase in aurora.phases}
    assert "Aurora cluster volume billed by what it uses" in aurora.storage_text
    assert aurora.phases[0].seconds == PLANNING_DEFAULTS["restore"] + PLANNING_DEFAULTS["cluster_members"]
    assert mysql.proxies == ("billing-proxy", "billing-reporting-proxy")
    assert mysql.proxies_text == "2, like billing-proxy, billing-reporting-proxy"


async def test_no_estimate_where_rehearsals_are_off(sandbox, tmp_path):
    store = open_store(str(tmp_path / "off.db"))
    engine = Engine(
        store=store, settings=load_settings(engine_env(tmp_path / "off.db")), gateways=sandbox_gateways(sandbox)
    )
    try:
        with pytest.raises(BadRequest) as refused:
            await engine.rehearsal_estimate(request("rehearse", "orders-pg"))
    finally:
        await engine.aclose()
        store.close()

    assert "does not allow rehearsals" in refused.value.message and "rehearsals = true" in (refused.value.fix or "")


def _cli(sandbox: Any, tmp_path: Path, *args: str, stdin: Any = subprocess.DEVNULL, **kwargs: Any) -> Any:
    env = bot_env(sandbox, str(tmp_path / "cli.db"), BLUEGREEN_REHEARSALS="true")
    command = [sys.executable, "-m", "bot", "rehearse", "orders-pg", "--engine-version", "16.4", *args]
    return subprocess.run(command, cwd=REPO, env=env, stdin=stdin, capture_output=True, text=True, timeout=60, **kwargs)


async def test_without_a_terminal_and_without_yes_the_cli_shows_the_estimate_exits_2_and_changes_nothing(
    sandbox, tmp_path
):
    refused = await asyncio.to_thread(_cli, sandbox, tmp_path)

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "Cost estimate for rehearsing orders-pg" in refused.stdout and "db.r6g.large" in refused.stdout
    assert "Pass --yes" in refused.stderr and "nothing was started" in refused.stderr
    assert aws_mutations(sandbox.control.timeline()) == []
    store = open_store(str(tmp_path / "cli.db"))
    try:
        assert store.runs.list(limit=5) == []
    finally:
        store.close()


async def test_on_a_terminal_the_cli_asks_and_a_no_starts_nothing(sandbox, tmp_path):
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"n\n")  # typed ahead: the terminal holds it until the question reads it
        declined = await asyncio.to_thread(_cli, sandbox, tmp_path, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)

    assert declined.returncode == 1, declined.stdout + declined.stderr
    assert "Start? [y/N]" in declined.stdout and "not started: nothing was created or changed" in declined.stdout
    assert aws_mutations(sandbox.control.timeline()) == []
