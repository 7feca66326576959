"""Settings from the environment and an optional TOML file, read strictly: any missing, unknown or malformed setting
stops start-up (and every CLI command) with a `ConfigError` naming the setting, where it was written, and the fix.

Environment variables: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN (Socket Mode), SLACK_API_URL, PORT,
METRICS_PORT (Socket Mode's /metrics, /healthz and /readyz listener; default 9102),
BLUEGREEN_DB, BLUEGREEN_OPERATORS, BLUEGREEN_APPROVERS, BLUEGREEN_CONFIG, BLUEGREEN_PROXY_PROBES
("proxy=host:port,..."), BLUEGREEN_APPROVAL_TTL, BLUEGREEN_TARGET_TIMEOUT, BLUEGREEN_NATIVE_FOLLOW_TIMEOUT,
BLUEGREEN_COMPENSATION_BACKOFF_CAP, BLUEGREEN_DETACHED_ALERT_INTERVAL, BLUEGREEN_SHUTDOWN_GRACE (seconds),
BLUEGREEN_AWS_DESCRIBE_RATE (RDS describe calls a second, for each environment; a file's `aws_describe_rate` wins),
LOG_LEVEL (DEBUG, INFO, WARNING, ERROR), LOG_FORMAT (text, json), plus AWS's own (AWS_REGION, AWS_ENDPOINT_URL,
...). Any other BLUEGREEN_* variable is refused as a likely typo.

The TOML file (`bot/config_file.py`) defines the environments:

    [environments.production]
    region = "eu-west-1"
    role_arn = "arn:aws:iam::123456789012:role/bluegreen-bot"
    channels = ["C0PRODOPS"]
    operators = ["U0ALICE", "S0DBAS"]
    approvers = ["S0SRELEADS"]
    approval_ttl = 900
    maintenance_window = "sat,sun 02:00-04:00"
    switchover_timeout = 300

Without it, one environment, "default", is built from the variables. Every environment must name its operators and
its approvers (an empty list would let anyone start runs, and no one approve them); no channel may belong to two
environments, and at most one environment may leave `channels` out (it then serves every other channel).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot import config_types as types
from bot.config_file import APPROVAL_TTL_RANGE, DESCRIBE_RATE_RANGE, read_environments
from bot.config_types import DAYS, USER_ID, ConfigError, MaintenanceWindow, refuse
from bot.logs import FORMATS, LEVELS

__all__ = [
    "DAYS",
    "ID_PATTERN",
    "ConfigError",
    "Environment",
    "MaintenanceWindow",
    "Settings",
    "SlackSettings",
    "load_settings",
]

ID_PATTERN = USER_ID
TIMEOUT_RANGE = (1.0, 86400.0)  # seconds, for the waits below
# Read outside this module, but still this program's: not typos.
OTHER_VARIABLES = frozenset({"BLUEGREEN_FAILPOINT", "BLUEGREEN_USER"})


@dataclass(frozen=True, slots=True)
class Environment:
    name: str = "default"
    region: str | None = None
    role_arn: str | None = None
    channels: frozenset[str] = frozenset()  # empty: any channel not listed by another environment
    operators: frozenset[str] = frozenset()  # never empty once loaded
    approvers: frozenset[str] = frozenset()  # never empty once loaded
    approval_ttl: float = 900.0
    maintenance_window: MaintenanceWindow | None = None
    switchover_timeout: int = 300
    proxy_probes: Mapping[str, str] = field(default_factory=dict)  # proxy name -> host:port for the TCP check
    require_probe: bool = False
    target_timeout: float = 900.0  # how long a registration may take to become AVAILABLE
    native_follow_timeout: float = 300.0  # native strategy: how long AWS may take to move the proxy
    compensation_backoff_cap: float = 60.0  # compensation retries registering at least this often
    detached_alert_interval: float = 600.0  # while compensating: alert the thread this often
    max_replica_lag: float = 30.0  # readiness gate: green's replica lag must be under this (seconds)
    lag_wait: float = 300.0  # right before detaching: how long a failing lag gate waits, re-checking
    fix_drift: bool = False  # after a switchover: restore deletion protection and tags on the new primary
    aws_describe_rate: float = 10.0  # RDS describe calls a second, for the whole environment (bot/aws/describe_budget)
    rehearsals: bool = False  # `rehearse` may restore disposable clones of this environment's databases (costs money)


@dataclass(frozen=True, slots=True)
class SlackSettings:
    bot_token: str | None
    signing_secret: str | None
    app_token: str | None
    api_url: str | None
    port: int


@dataclass(frozen=True, slots=True)
class Settings:
    db_path: str
    environments: Mapping[str, Environment]
    slack: SlackSettings
    shutdown_grace: float = 20.0  # after SIGTERM: how long runs with a proxy detached may take to hand over cleanly
    metrics_port: int = 9102  # Socket Mode: the listener for /metrics, /healthz and /readyz
    log_level: str = "INFO"  # LOG_LEVEL, one of bot.logs.LEVELS
    log_format: str = "text"  # LOG_FORMAT, one of bot.logs.FORMATS

    def environment(self, name: str | None = None) -> Environment:
        if name is None:
            return next(iter(self.environments.values()))
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments)
            raise ConfigError(f"unknown environment {name!r}; configured: {known}") from None

    def environment_for_channel(self, channel: str | None) -> Environment | None:
        """The environment a channel may use: the one listing it, else the one with no channel restriction."""
        for env in self.environments.values():
            if channel and channel in env.channels:
                return env
        for env in self.environments.values():
            if not env.channels:
                return env
        return None


class _ReadVariables(Mapping[str, str]):
    """The process environment, remembering which variables were looked at (so that the rest can be refused)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self._env[key]

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return self._env.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


def _seconds(
    env: Mapping[str, str], name: str, default: float, *, minimum: float = 1.0, maximum: float = TIMEOUT_RANGE[1]
) -> float:
    text = env.get(name)
    if text is None:
        return default
    return types.env_seconds(text, name, minimum=minimum, maximum=maximum)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds above 0 (fractions allowed, so that tests can run fast)."""
    value = _seconds(env, name, default, minimum=0.0)
    if value <= 0:
        raise refuse(name, f"must be more than 0 seconds, got {env.get(name)!r}", "set a number of seconds above 0")
    return value


def _rate(env: Mapping[str, str], name: str, default: float) -> float:
    """Calls a second, within `DESCRIBE_RATE_RANGE`."""
    text = env.get(name)
    if text is None:
        return default
    low, high = DESCRIBE_RATE_RANGE
    try:
        number = float(text.strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise refuse(name, f"expected a number of calls a second, got {text!r}", f"set a number {low:g}-{high:g}")
    return float(types.in_range(number, name, low, high))


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name)
    if text is None:
        return default
    if text.strip().lower() in {"true", "1", "yes"}:
        return True
    if text.strip().lower() in {"false", "0", "no"}:
        return False
    raise refuse(name, f"expected true or false, got {text!r}", "set it to true or false")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices`, in any case; refused otherwise (an empty value too)."""
    text = env.get(name)
    if text is None:
        return default
    if text.strip().lower() not in {choice.lower() for choice in choices}:
        raise refuse(name, f"{text!r} is not one of {', '.join(choices)}", f"set it to one of {', '.join(choices)}")
    return text.strip()


def _ids(env: Mapping[str, str], name: str) -> frozenset[str]:
    text = env.get(name)
    return types.user_ids(types.comma_list(text), name) if text else frozenset()


def _env_region(env: Mapping[str, str]) -> str | None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(name):
            return types.region(env[name], name)
    return None


def load_settings(
    env: Mapping[str, str] | None = None, *, require_slack: bool = False, socket_mode: bool = False
) -> Settings:
    """Read and validate every setting. Raises ConfigError (message: the setting, where, the fix) on the first
    problem; with `require_slack`, the tokens `python -m bot serve` needs are required too."""
    variables = _ReadVariables(os.environ if env is None else env)
    base = Environment(
        name="default",
        region=_env_region(variables),
        operators=_ids(variables, "BLUEGREEN_OPERATORS"),
        approvers=_ids(variables, "BLUEGREEN_APPROVERS"),
        approval_ttl=_seconds(variables, "BLUEGREEN_APPROVAL_TTL", 900.0, maximum=APPROVAL_TTL_RANGE[1]),
        proxy_probes=types.env_probes(variables.get("BLUEGREEN_PROXY_PROBES") or "", "BLUEGREEN_PROXY_PROBES"),
        target_timeout=_seconds(variables, "BLUEGREEN_TARGET_TIMEOUT", 900.0),
        native_follow_timeout=_seconds(variables, "BLUEGREEN_NATIVE_FOLLOW_TIMEOUT", 300.0),
        compensation_backoff_cap=_positive(variables, "BLUEGREEN_COMPENSATION_BACKOFF_CAP", 60.0),
        detached_alert_interval=_positive(variables, "BLUEGREEN_DETACHED_ALERT_INTERVAL", 600.0),
        max_replica_lag=_seconds(variables, "BLUEGREEN_MAX_REPLICA_LAG", 30.0, minimum=0.0),
        lag_wait=_seconds(variables, "BLUEGREEN_LAG_WAIT", 300.0, minimum=0.0),
        fix_drift=_flag(variables, "BLUEGREEN_FIX_DRIFT", False),
        rehearsals=_flag(variables, "BLUEGREEN_REHEARSALS", False),
        aws_describe_rate=_rate(variables, "BLUEGREEN_AWS_DESCRIBE_RATE", 10.0),
    )
    config_path = variables.get("BLUEGREEN_CONFIG")
    if config_path:
        environments = _from_file(config_path, base)
    else:
        environments = {"default": base}
        _require_people(base, "BLUEGREEN_OPERATORS", "BLUEGREEN_APPROVERS", "set it (or use BLUEGREEN_CONFIG)")
    slack = _slack_settings(variables, require_slack=require_slack, socket_mode=socket_mode)
    db_path = variables.get("BLUEGREEN_DB") or "bluegreen.db"
    shutdown_grace = _seconds(variables, "BLUEGREEN_SHUTDOWN_GRACE", 20.0, minimum=0.0)
    log_level = _choice(variables, "LOG_LEVEL", LEVELS, "INFO").upper()
    log_format = _choice(variables, "LOG_FORMAT", FORMATS, "text").lower()
    metrics_text = variables.get("METRICS_PORT")
    metrics_port = (
        9102 if metrics_text is None else types.env_integer(metrics_text, "METRICS_PORT", minimum=1, maximum=65535)
    )
    unknown = sorted(
        name
        for name in variables
        if name.startswith("BLUEGREEN_") and name not in variables.read and name not in OTHER_VARIABLES
    )
    if unknown:
        raise refuse(
            unknown[0],
            "unknown variable (not a bluegreen-bot setting)",
            "correct its name or unset it; the settings are listed in the README, 'Configuration'",
        )
    return Settings(
        db_path=db_path,
        environments=environments,
        slack=slack,
        shutdown_grace=shutdown_grace,
        metrics_port=metrics_port,
        log_level=log_level,
        log_format=log_format,
    )


def _require_people(env: Environment, operators_setting: str, approvers_setting: str, how: str) -> None:
    if not env.operators:
        raise refuse(
            operators_setting,
            f"environment {env.name!r} has no operators, so anyone could start runs",
            f"{how}: the Slack user or user-group ids who may start runs",
        )
    if not env.approvers:
        raise refuse(
            approvers_setting,
            f"environment {env.name!r} has no approvers, so no switchover could ever be approved",
            f"{how}: the Slack user or user-group ids who may approve",
        )


def _from_file(path: str, base: Environment) -> dict[str, Environment]:
    environments: dict[str, Environment] = {}
    owners: dict[str, str] = {}
    catch_all: str | None = None
    for name, written in read_environments(path).items():
        where = f"{path}: environments.{name}"
        env = replace(base, name=name, **written)
        _require_people(
            env, f"{where}.operators", f"{where}.approvers", "add the key here (or set BLUEGREEN_OPERATORS/APPROVERS)"
        )
        for channel in sorted(env.channels):
            if channel in owners:
                raise refuse(
                    f"{where}.channels",
                    f"channel {channel} is also claimed by environments.{owners[channel]}",
                    "give each channel to one environment only",
                )
            owners[channel] = name
        if not env.channels:
            if catch_all is not None:
                raise refuse(
                    f"{where}.channels",
                    f"missing here and in environments.{catch_all}, so both would claim every other channel",
                    "list this environment's channels (at most one environment may leave `channels` out)",
                )
            catch_all = name
        environments[name] = env
    return environments


def _slack_settings(env: Mapping[str, str], *, require_slack: bool, socket_mode: bool) -> SlackSettings:
    port_text = env.get("PORT")
    port = 3000 if port_text is None else types.env_integer(port_text, "PORT", minimum=1, maximum=65535)
    api_url = env.get("SLACK_API_URL") or None
    if api_url is not None and (not api_url.startswith(("https://", "http://")) or not api_url.endswith("/")):
        raise refuse(
            "SLACK_API_URL",
            f"{api_url!r} is not a Web API base URL",
            "write it like https://slack.com/api/ (with the /)",
        )
    slack = SlackSettings(
        bot_token=env.get("SLACK_BOT_TOKEN") or None,
        signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        app_token=env.get("SLACK_APP_TOKEN") or None,
        api_url=api_url,
        port=port,
    )
    if slack.bot_token is not None and not slack.bot_token.startswith("xoxb-"):
        raise refuse("SLACK_BOT_TOKEN", "not a bot token", "use the Bot User OAuth Token, which starts with xoxb-")
    if slack.app_token is not None and not slack.app_token.startswith("xapp-"):
        raise refuse("SLACK_APP_TOKEN", "not an app-level token", "create an app-level token (it starts with xapp-)")
    if require_slack:
        needed = ["SLACK_BOT_TOKEN"] + (["SLACK_APP_TOKEN"] if socket_mode else ["SLACK_SIGNING_SECRET"])
        missing = [name for name in needed if not env.get(name)]
        if missing:
            raise refuse(", ".join(missing), "missing", "set it (see README, 'Configuration')")
    return slack
