"""Configuration fails closed: every bad setting is refused with a message naming the file, the key and the fix, and
nothing serves (`python -m bot serve` exits 2 before opening its store or its port; every CLI command exits 2)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot import cli
from bot.config import ConfigError, load_settings
from tests.process_fixtures import Zygote, run_forked, zygote_fixture  # noqa: F401  (the `zygote` fixture)

GOOD_TOML = """
[environments.prod]
region = "eu-west-1"
role_arn = "arn:aws:iam::123456789012:role/bluegreen-bot"
channels = ["C0PROD"]
operators = ["U0ALICE", "S0DBAS"]
approvers = ["U0BOB"]
approval_ttl = 600
maintenance_window = "sat,sun 02:00-04:00"
switchover_timeout = 300
proxy_probes = { orders-proxy = "127.0.0.1:5432" }
require_probe = true

[environments.staging]
channels = ["C0STAGING", "G0PRIVATE"]
operators = ["U0ALICE"]
approvers = ["U0BOB", "U0CAROL"]
"""
WINDOW = "environments.prod.maintenance_window"
PEOPLE = {"BLUEGREEN_OPERATORS": "U0ALICE", "BLUEGREEN_APPROVERS": "U0BOB"}


@dataclass(frozen=True)
class Bad:
    """A bad configuration: a TOML file (or none) plus variables; the refusal must name `key`."""

    key: str
    toml: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def prod(body: str) -> str:
    """The prod environment of GOOD_TOML's shape with `body` as its keys (people and channel included unless given)."""
    lines = body.strip().splitlines()
    defaults = {"channels": '["C0PROD"]', "operators": '["U0ALICE"]', "approvers": '["U0BOB"]'}
    for key, value in defaults.items():
        if not any(line.split("=")[0].strip() == key for line in lines):
            lines.append(f"{key} = {value}")
    return "[environments.prod]\n" + "\n".join(lines) + "\n"


BAD = {
    "section-typo": Bad("environment", toml='[environment.prod]\nchannels = ["C0PROD"]\n'),
    "channels-as-string": Bad("environments.prod.channels", toml=prod('channels = "C0PROD"')),
    "boolean-as-string": Bad("environments.prod.require_probe", toml=prod('require_probe = "false"')),
    "float-for-int": Bad("environments.prod.switchover_timeout", toml=prod("switchover_timeout = 300.0")),
    "timeout-out-of-range": Bad("environments.prod.switchover_timeout", toml=prod("switchover_timeout = 5000")),
    "ttl-unparsable": Bad("environments.prod.approval_ttl", toml=prod('approval_ttl = "15m"')),
    "ttl-zero": Bad("environments.prod.approval_ttl", toml=prod("approval_ttl = 0")),
    "ttl-boolean": Bad("environments.prod.approval_ttl", toml=prod("approval_ttl = true")),
    "no-operators": Bad(
        "environments.prod.operators", toml='[environments.prod]\nchannels = ["C0PROD"]\napprovers = ["U0BOB"]\n'
    ),
    "empty-approvers": Bad("environments.prod.approvers", toml=prod("approvers = []")),
    "empty-channels": Bad("environments.prod.channels", toml=prod("channels = []")),
    "channel-claimed-twice": Bad(
        "environments.staging.channels",
        toml=prod('channels = ["C0OPS"]') + prod('channels = ["C0OPS"]').replace("prod", "staging"),
    ),
    "two-catch-alls": Bad(
        "environments.staging.channels",
        toml='[environments.prod]\noperators = ["U0A1"]\napprovers = ["U0B1"]\n'
        '[environments.staging]\noperators = ["U0A1"]\napprovers = ["U0B1"]\n',
    ),
    "window-unparsable": Bad(WINDOW, toml=prod('maintenance_window = "sat 2am-4am"')),
    "window-bad-day": Bad(WINDOW, toml=prod('maintenance_window = "fri-sun 02:00-04:00"')),
    "window-never-opens": Bad(WINDOW, toml=prod('maintenance_window = "03:00-03:00"')),
    "channel-name-not-id": Bad("environments.prod.channels", toml=prod('channels = ["#ops"]')),
    "role-arn-malformed": Bad("environments.prod.role_arn", toml=prod('role_arn = "arn:aws:iam::1234:role/bot"')),
    "region-malformed": Bad("environments.prod.region", toml=prod('region = "europe-west"')),
    "unknown-key": Bad("environments.prod.approver", toml=prod('approver = ["U0BOB"]')),
    "user-name-not-id": Bad("environments.prod.operators", toml=prod('operators = ["alice"]')),
    "probes-as-string": Bad("environments.prod.proxy_probes", toml=prod('proxy_probes = "orders-proxy=db:5432"')),
    "probe-bad-port": Bad("environments.prod.proxy_probes", toml=prod('proxy_probes = { orders-proxy = "db:99999" }')),
    "environment-not-a-table": Bad("environments.prod", toml='[environments]\nprod = "production"\n'),
    "no-environment": Bad("environments", toml="# nothing here\n"),
    "not-toml": Bad("bluegreen.toml", toml="[environments.prod\n"),
    "env-no-operators": Bad("BLUEGREEN_OPERATORS", env={"BLUEGREEN_APPROVERS": "U0BOB"}),
    "env-no-approvers": Bad("BLUEGREEN_APPROVERS", env={"BLUEGREEN_OPERATORS": "U0ALICE", "BLUEGREEN_APPROVERS": " "}),
    "env-ttl-unparsable": Bad("BLUEGREEN_APPROVAL_TTL", env={**PEOPLE, "BLUEGREEN_APPROVAL_TTL": "15m"}),
    "env-timeout-infinite": Bad("BLUEGREEN_TARGET_TIMEOUT", env={**PEOPLE, "BLUEGREEN_TARGET_TIMEOUT": "inf"}),
    "env-interval-zero": Bad(
        "BLUEGREEN_DETACHED_ALERT_INTERVAL", env={**PEOPLE, "BLUEGREEN_DETACHED_ALERT_INTERVAL": "0"}
    ),
    "env-grace-negative": Bad("BLUEGREEN_SHUTDOWN_GRACE", env={**PEOPLE, "BLUEGREEN_SHUTDOWN_GRACE": "-5"}),
    "env-backoff-cap-unparsable": Bad(
        "BLUEGREEN_COMPENSATION_BACKOFF_CAP", env={**PEOPLE, "BLUEGREEN_COMPENSATION_BACKOFF_CAP": "1m"}
    ),
    "env-port-out-of-range": Bad("PORT", env={**PEOPLE, "PORT": "70000"}),
    "env-variable-typo": Bad("BLUEGREEN_APPROVER", env={**PEOPLE, "BLUEGREEN_APPROVER": "U0CAROL"}),
    "env-region-malformed": Bad("AWS_REGION", env={**PEOPLE, "AWS_REGION": "us east 1"}),
    "env-probe-malformed": Bad("BLUEGREEN_PROXY_PROBES", env={**PEOPLE, "BLUEGREEN_PROXY_PROBES": "orders-proxy:5432"}),
    "env-user-name": Bad("BLUEGREEN_APPROVERS", env={"BLUEGREEN_OPERATORS": "U0ALICE", "BLUEGREEN_APPROVERS": "bob"}),
    "env-api-url-without-slash": Bad("SLACK_API_URL", env={**PEOPLE, "SLACK_API_URL": "https://slack.com/api"}),
    "env-config-missing": Bad("BLUEGREEN_CONFIG", env={**PEOPLE, "BLUEGREEN_CONFIG": "/nonexistent/bluegreen.toml"}),
    "env-log-level-unknown": Bad("LOG_LEVEL", env={**PEOPLE, "LOG_LEVEL": "LOUD"}),
    "env-log-format-unknown": Bad("LOG_FORMAT", env={**PEOPLE, "LOG_FORMAT": "xml"}),
    "env-log-level-empty": Bad("LOG_LEVEL", env={**PEOPLE, "LOG_LEVEL": ""}),
    "env-describe-rate-unparsable": Bad(
        "BLUEGREEN_AWS_DESCRIBE_RATE", env={**PEOPLE, "BLUEGREEN_AWS_DESCRIBE_RATE": "fast"}
    ),
    "env-describe-rate-out-of-range": Bad(
        "BLUEGREEN_AWS_DESCRIBE_RATE", env={**PEOPLE, "BLUEGREEN_AWS_DESCRIBE_RATE": "0.1"}
    ),
}


def variables(case: Bad, tmp_path: Path) -> dict[str, str]:
    env = {"BLUEGREEN_DB": str(tmp_path / "bluegreen.db"), **case.env}
    if case.toml is not None:
        path = tmp_path / "bluegreen.toml"
        path.write_text(case.toml)
        env["BLUEGREEN_CONFIG"] = str(path)
    return env


@pytest.mark.parametrize("name", list(BAD))
def test_bad_configuration_is_refused_naming_the_key_and_the_fix(name: str, tmp_path: Path) -> None:
    case = BAD[name]
    env = variables(case, tmp_path)
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    message = str(refused.value)
    assert case.key in message, message
    assert "Fix: " in message, message
    if case.toml is not None and "BLUEGREEN_CONFIG" not in message:
        assert env["BLUEGREEN_CONFIG"] in message, f"the file is not named: {message}"


def test_the_table_covers_at_least_fifteen_configurations() -> None:
    assert len(BAD) >= 15


def test_a_good_file_loads_with_the_types_it_declares(tmp_path: Path) -> None:
    path = tmp_path / "bluegreen.toml"
    path.write_text(GOOD_TOML)
    settings = load_settings({"BLUEGREEN_CONFIG": str(path), "BLUEGREEN_APPROVAL_TTL": "120"})
    prod, staging = settings.environment("prod"), settings.environment("staging")
    assert prod.channels == frozenset({"C0PROD"}) and staging.channels == frozenset({"C0STAGING", "G0PRIVATE"})
    assert prod.operators == frozenset({"U0ALICE", "S0DBAS"}) and prod.approvers == frozenset({"U0BOB"})
    assert prod.require_probe is True and staging.require_probe is False
    assert prod.switchover_timeout == 300 and prod.approval_ttl == 600.0
    assert staging.approval_ttl == 120.0  # from BLUEGREEN_APPROVAL_TTL
    assert prod.role_arn == "arn:aws:iam::123456789012:role/bluegreen-bot" and staging.role_arn is None
    assert prod.maintenance_window is not None and prod.maintenance_window.days == frozenset({5, 6})
    assert dict(prod.proxy_probes) == {"orders-proxy": "127.0.0.1:5432"}
    assert settings.environment_for_channel("C0STAGING") is staging
    assert settings.environment_for_channel("C0ELSEWHERE") is None


def test_without_a_file_the_default_environment_comes_from_the_variables() -> None:
    settings = load_settings({"BLUEGREEN_OPERATORS": "U0ALICE, S0DBAS", "BLUEGREEN_APPROVERS": "U0BOB"})
    env = settings.environment()
    assert env.name == "default" and env.operators == frozenset({"U0ALICE", "S0DBAS"})
    assert env.approvers == frozenset({"U0BOB"})


@pytest.mark.parametrize(
    "name",
    [
        "section-typo",
        "channels-as-string",
        "env-no-operators",
        "channel-claimed-twice",
        "env-log-level-unknown",
        "env-log-format-unknown",
    ],
)
@pytest.mark.parametrize("command", [["runs"], ["status", "orders-pg"], ["plan", "orders-pg"]])
def test_every_cli_command_exits_2_naming_the_key(
    name: str, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = BAD[name]
    for key, value in variables(case, tmp_path).items():
        monkeypatch.setenv(key, value)
    assert cli.main(command) == 2
    assert case.key in capsys.readouterr().err
    assert not (tmp_path / "bluegreen.db").exists(), "the store was opened despite the refusal"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "name",
    [
        "section-typo",
        "channels-as-string",
        "boolean-as-string",
        "env-no-approvers",
        "env-log-level-unknown",
        "env-log-format-unknown",
    ],
)
def test_serve_exits_2_without_listening(name: str, tmp_path: Path, zygote: Zygote) -> None:
    case = BAD[name]
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-not-real",
        "SLACK_SIGNING_SECRET": "not-real",
        "PORT": str(port),
        **variables(case, tmp_path),
    }
    done = run_forked(zygote, ["serve"], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert case.key in done.stderr and "Fix: " in done.stderr, done.stderr
    assert "listening" not in done.stderr + done.stdout
    assert not (tmp_path / "bluegreen.db").exists(), "the store was opened: serving had begun"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
