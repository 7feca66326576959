"""The log stream (`bot/logs.py`): LOG_FORMAT=json gives one JSON object a line, every record emitted while a run is
driven carries its run id (and step, and the AWS action and request id where one applies), and no token or secret
reaches a line, whatever logged it.

The full-run test drives a real `python -m bot serve` process through the Slack stand-in against the sandbox AWS.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.logs import (
    LIBRARY_FLOOR,
    OWN_PACKAGES,
    REDACTED,
    configure_logging,
    current_context,
    known_secrets,
    log_context,
    redact,
)
from sandbox.aws import Sandbox
from sandbox.slack import SlackStandIn
from storage import open_store
from tests.bot_fixtures import REPO, bot_environment, serve_processes
from tests.matrix_fixtures import bot_env
from tests.process_fixtures import Zygote, zygote_fixture  # noqa: F401  (the `zygote` fixture)
from tests.slack_fixtures import ALICE, run_thread, start_run

RUN_TIMEOUT = 60
MUTATION_PREFIXES = ("Describe", "List", "Get")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger configured by `configure_logging` into a buffer; the previous handlers and the levels
    `configure_logging` sets restored, so that no other test sees this one's configuration."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    names = ("", *OWN_PACKAGES, *LIBRARY_FLOOR)
    levels = {name: logging.getLogger(name).level for name in names}
    stream = io.StringIO()
    yield stream
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def json_lines(text: str) -> list[dict]:
    """Every non-empty line, parsed; fails naming the first line that is not a JSON object."""
    parsed = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(value, dict), f"line {number} is not a JSON object: {line!r}"
        parsed.append(value)
    return parsed


# ---------------------------------------------------------------- the format and the context, in process


def test_a_json_line_carries_time_level_logger_message_and_the_context(captured: io.StringIO) -> None:
    configure_logging("DEBUG", "json", stream=captured)
    log = logging.getLogger("bot.test")
    log.debug("outside any run")
    with log_context(run_id="r-1", environment="production"), log_context(step="deregister"):
        log.info("step %s", "started", extra={"action": "DeregisterDBProxyTargets", "aws_request_id": "req-9"})
    log.warning("after the run")
    before, during, after = json_lines(captured.getvalue())
    assert set(before) == {"time", "level", "logger", "message"} and before["level"] == "DEBUG"
    assert before["time"].endswith("+00:00") and before["logger"] == "bot.test"
    assert during == {
        "time": during["time"],
        "level": "INFO",
        "logger": "bot.test",
        "message": "step started",
        "run_id": "r-1",
        "step": "deregister",
        "action": "DeregisterDBProxyTargets",
        "aws_request_id": "req-9",
        "environment": "production",
    }
    assert "run_id" not in after and after["level"] == "WARNING"


def test_the_level_drops_records_below_it_and_libraries_stay_at_info_or_above(captured: io.StringIO) -> None:
    ours, library = logging.getLogger("bot.test"), logging.getLogger("botocore.endpoint")
    left_behind = ours.level, library.level
    # As another test (or a library) may have left them: configure_logging must not depend on it.
    ours.setLevel(logging.DEBUG)
    library.setLevel(logging.DEBUG)
    try:
        configure_logging("WARNING", "json", stream=captured)
        ours.info("dropped")
        ours.error("kept")
        assert [line["message"] for line in json_lines(captured.getvalue())] == ["kept"]
        configure_logging("DEBUG", "json", stream=captured)  # replaces the handler: nothing is written twice
        library.debug("a request dump with its headers")
        ours.debug("shown")
        assert [line["message"] for line in json_lines(captured.getvalue())] == ["kept", "shown"]
    finally:
        ours.setLevel(left_behind[0])
        library.setLevel(left_behind[1])


def test_text_keeps_the_terminal_format_with_the_context_at_the_end(captured: io.StringIO) -> None:
    configure_logging("INFO", "text", stream=captured)
    with log_context(run_id="r-2", step="switchover"):
        logging.getLogger("bot.test").info("switching")
    line = captured.getvalue().strip()
    assert " INFO bot.test: switching [run_id=r-2 step=switchover]" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


async def test_concurrent_runs_each_log_under_their_own_run_id(captured: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=captured)
    log = logging.getLogger("bot.test")
    both_inside = asyncio.Barrier(2)

    async def run(run_id: str) -> None:
        with log_context(run_id=run_id):
            await both_inside.wait()  # each logs while the other's context is set too
            log.info("driving %s", run_id)
            child = asyncio.ensure_future(asyncio.sleep(0, result=current_context()))  # a task started inside
            assert (await child)["run_id"] == run_id

    await asyncio.gather(run("r-a"), run("r-b"))
    log.info("outside")
    lines = json_lines(captured.getvalue())
    assert sorted((line["run_id"], line["message"]) for line in lines[:2]) == [
        ("r-a", "driving r-a"),
        ("r-b", "driving r-b"),
    ]
    assert "run_id" not in lines[2] and current_context() == {}


def test_only_context_fields_may_be_set() -> None:
    with pytest.raises(ValueError, match="token"), log_context(token="x"):  # type: ignore[arg-type]
        pass


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, ("INFO", "text")),
        ({"LOG_LEVEL": "debug", "LOG_FORMAT": "JSON"}, ("DEBUG", "json")),
        ({"LOG_LEVEL": "ERROR", "LOG_FORMAT": "text"}, ("ERROR", "text")),
    ],
)
def test_log_settings_default_to_info_text_and_accept_any_case(
    variables: dict, expected: tuple, captured: io.StringIO
) -> None:
    settings = load_settings({"BLUEGREEN_OPERATORS": "U0ALICE", "BLUEGREEN_APPROVERS": "U0BOB", **variables})
    assert (settings.log_level, settings.log_format) == expected
    configure_logging(settings.log_level, settings.log_format, stream=captured)  # the values it takes


# ---------------------------------------------------------------- redaction


SHAPES = {
    "bot token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "user token": "xoxp-123456789012-1234567890123-abcdef",
    "app token": "xapp-1-A0ABCDEF-1234567890-0123456789abcdef",
    "access key id": "AKIAIOSFODNN7EXAMPLE",
}
LABELLED = {
    "secret key in a config file": ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    "secret key in JSON": ('{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "wJalrXUtnFEMI"),
    "session token": ("AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEJr//////////wEaCXVz", "IQoJb3JpZ2lu"),
    "signing secret": ("SLACK_SIGNING_SECRET=8f742231b10e8888abcd99yyyzzz85a5", "8f742231b10e"),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_token_shaped_values_are_redacted(name: str) -> None:
    assert redact(f"calling with {SHAPES[name]}, then") == f"calling with {REDACTED}, then"


@pytest.mark.parametrize("name", list(LABELLED))
def test_aws_and_signing_secrets_after_their_name_are_redacted(name: str) -> None:
    text, secret_part = LABELLED[name]
    redacted = redact(text)
    assert secret_part not in redacted and REDACTED in redacted, redacted


def test_ordinary_text_is_left_alone() -> None:
    text = "run r-1: Deregister orders-pg from orders-proxy: aws rds deregister-db-proxy-targets (ok) xoxo-kisses"
    assert redact(text) == text


def test_known_secrets_are_redacted_whatever_their_shape_in_message_arguments_and_tracebacks(
    captured: io.StringIO,
) -> None:
    signing_secret = secrets.token_hex(20)  # hex: no pattern matches it, only its value
    env = {"SLACK_SIGNING_SECRET": signing_secret, "AWS_SECRET_ACCESS_KEY": "sandbox", "PATH": "/usr/bin"}
    assert known_secrets(env) == (signing_secret,)  # "sandbox" is too short to redact safely
    configure_logging("INFO", "json", stream=captured, secrets=known_secrets(env))
    log = logging.getLogger("bot.test")
    log.info("verifying with %s", signing_secret)
    try:
        raise RuntimeError(f"bad signature; secret {signing_secret}")
    except RuntimeError:
        log.exception("verification failed")
    with log_context(run_id=f"r-{signing_secret}"):
        log.info("context too")
    text = captured.getvalue()
    assert signing_secret not in text
    first, second, third = json_lines(text)
    assert first["message"] == f"verifying with {REDACTED}"
    assert "RuntimeError: bad signature; secret [REDACTED]" in second["exception"]
    assert third["run_id"] == f"r-{REDACTED}"


# ---------------------------------------------------------------- a full run of `python -m bot serve`


async def test_json_logs_of_a_served_run_parse_carry_the_run_id_and_no_secret(
    sandbox: Sandbox, tmp_path: Path, zygote: Zygote
) -> None:
    signing_secret = secrets.token_hex(20)
    bot_token = "xoxb-" + secrets.token_hex(16)
    aws_secret = secrets.token_hex(20)
    async with SlackStandIn(signing_secret=signing_secret, bot_token=bot_token) as slack:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BLUEGREEN_", "AWS_", "LOG_"))},
            **bot_environment(tmp_path, slack.base_url),
            "SLACK_BOT_TOKEN": bot_token,
            "SLACK_SIGNING_SECRET": signing_secret,
            "AWS_ENDPOINT_URL": sandbox.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": aws_secret,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
        }
        with serve_processes(zygote, tmp_path) as start:
            serving = start(env)
            await serving.release()
            slack.app_url = f"{serving.url}/slack/events"
            store = open_store(str(tmp_path / "bluegreen.db"))
            try:
                run_id = await start_run(slack, store, ALICE, "create orders-pg")
                await slack.wait_for(
                    lambda: not store.runs.get(run_id).is_active, timeout=RUN_TIMEOUT, description="the run's end"
                )
                await slack.wait_for(
                    lambda: run_thread(slack, store, run_id).replies_starting(f"Run {run_id} "),
                    timeout=20,
                    description="the summary in the thread",
                )
                assert store.runs.get(run_id).status == "succeeded"
            finally:
                store.close()
            serving.terminate()
            assert await serving.exited() == 0, serving.output()
            output = serving.output()

    lines = json_lines(output)  # stdout and stderr both: nothing but JSON, the console sink is off
    for name, secret in (("bot token", bot_token), ("signing secret", signing_secret), ("AWS secret", aws_secret)):
        assert secret not in output, f"the {name} appears in the logs"
    messages = [line["message"] for line in lines]
    first = messages.index(f"run {run_id}: started create orders-pg")
    last = messages.index(f"run {run_id}: succeeded")
    assert any("listening" in m for m in messages[:first]) and "run_id" not in lines[0]
    during = [line for line in lines[first : last + 1] if line["logger"].startswith(("bot.", "handlers.thread."))]
    assert len(during) >= 20, during  # steps, AWS calls at DEBUG
    for line in during:
        assert line.get("run_id") == run_id and line.get("environment") == "production", line
    steps = {line["step"] for line in during if "step" in line}
    assert {"preflight_create", "detach", "create_deployment", "reattach"} <= steps, steps
    calls = [line for line in during if line["logger"] == "bot.aws.gateway"]
    mutations = [line for line in calls if not line["action"].startswith(MUTATION_PREFIXES)]
    assert "CreateBlueGreenDeployment" in {line["action"] for line in mutations}, calls
    for line in mutations:
        assert line["level"] == "DEBUG" and line["aws_request_id"] and line["step"], line
    recorded = [line for line in during if line["logger"] == "bot.workflow.steps.base"]
    assert recorded and all(line["action"] and line["aws_request_id"] and line["step"] for line in recorded), recorded
    assert {line["action"] for line in recorded} == {line["action"] for line in mutations}
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in lines)


async def test_a_cli_run_keeps_progress_on_stdout_and_json_logs_with_its_run_id_on_stderr(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = bot_env(sandbox, str(tmp_path / "bluegreen.db"), LOG_FORMAT="json")
    env = {k: v for k, v in env.items() if k != "LOG_LEVEL"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "create", "orders-pg"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = re.search(r"run (r-[0-9a-f]+) started", done.stdout).group(1)  # type: ignore[union-attr]
    assert f"[{run_id}] finished: succeeded" in done.stdout  # the console sink, for people
    lines = json_lines(done.stderr)
    assert not any(line.strip().startswith("{") for line in done.stdout.splitlines())
    ours = [line for line in lines if line["logger"].startswith("bot.")]
    assert f"run {run_id}: succeeded" in [line["message"] for line in ours]
    assert ours and all(line.get("run_id") == run_id for line in ours), ours
    assert not any(line["level"] == "DEBUG" for line in lines)  # LOG_LEVEL unset: INFO
