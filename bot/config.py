"""Settings from the environment and an optional TOML file. A missing or bad setting stops start-up, naming it.

Environment variables: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN (Socket Mode), SLACK_API_URL, PORT,
BLUEGREEN_DB, BLUEGREEN_OPERATORS, BLUEGREEN_APPROVERS, BLUEGREEN_CONFIG, BLUEGREEN_PROXY_PROBES
("proxy=host:port,..."), BLUEGREEN_APPROVAL_TTL (seconds), plus AWS's own (AWS_REGION, AWS_ENDPOINT_URL, ...).

The TOML file adds environments:

    [environments.production]
    region = "eu-west-1"
    role_arn = "arn:aws:iam::123456789012:role/bluegreen-bot"
    channels = ["C0PRODOPS"]
    operators = ["U0ALICE", "S0DBAS"]
    approvers = ["S0SRELEADS"]
    approval_ttl = 900
    maintenance_window = "sat,sun 02:00-04:00"
    switchover_timeout = 300
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ID_PATTERN = re.compile(r"^[UWS][A-Z0-9]{2,}$")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A daily UTC window, optionally on some weekdays only: "sat,sun 02:00-04:00" or "22:00-23:30"."""

    days: frozenset[int]
    start: dt.time
    end: dt.time
    text: str

    @classmethod
    def parse(cls, text: str, *, setting: str = "maintenance_window") -> MaintenanceWindow:
        match = re.fullmatch(r"\s*(?:([a-z,\-]+)\s+)?(\d\d):(\d\d)-(\d\d):(\d\d)\s*", text.lower())
        if not match:
            raise ConfigError(f"{setting}: expected 'mon,tue HH:MM-HH:MM' or 'HH:MM-HH:MM' (UTC), got {text!r}")
        day_text, h1, m1, h2, m2 = match.groups()
        days = set(range(7))
        if day_text:
            days = set()
            for part in day_text.split(","):
                if part not in DAYS:
                    raise ConfigError(f"{setting}: unknown day {part!r}; use {', '.join(DAYS)}")
                days.add(DAYS.index(part))
        try:
            start, end = dt.time(int(h1), int(m1)), dt.time(int(h2), int(m2))
        except ValueError as exc:
            raise ConfigError(f"{setting}: {exc} in {text!r}") from None
        return cls(days=frozenset(days), start=start, end=end, text=text)

    def contains(self, moment: dt.datetime) -> bool:
        moment = moment.astimezone(dt.UTC)
        clock = moment.time().replace(tzinfo=None)
        if self.start <= self.end:
            return moment.weekday() in self.days and self.start <= clock < self.end
        # Crosses midnight: the part after midnight belongs to the previous day's window.
        if clock >= self.start:
            return moment.weekday() in self.days
        return clock < self.end and (moment.weekday() - 1) % 7 in self.days

    def next_opening(self, moment: dt.datetime) -> dt.datetime:
        moment = moment.astimezone(dt.UTC)
        for offset in range(8):
            day = (moment + dt.timedelta(days=offset)).date()
            opening = dt.datetime.combine(day, self.start, tzinfo=dt.UTC)
            if opening.weekday() in self.days and opening >= moment:
                return opening
        return moment


@dataclass(frozen=True, slots=True)
class Environment:
    name: str = "default"
    region: str | None = None
    role_arn: str | None = None
    channels: frozenset[str] = frozenset()  # empty: any channel
    operators: frozenset[str] = frozenset()  # empty: anyone may start runs
    approvers: frozenset[str] = frozenset()
    approval_ttl: float = 900.0
    maintenance_window: MaintenanceWindow | None = None
    switchover_timeout: int = 300
    proxy_probes: Mapping[str, str] = field(default_factory=dict)  # proxy name -> host:port for the TCP check
    require_probe: bool = False
    target_timeout: float = 900.0  # how long a registration may take to become AVAILABLE
    native_follow_timeout: float = 300.0  # native strategy: how long AWS may take to move the proxy


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

    def environment(self, name: str | None = None) -> Environment:
        if name is None:
            return next(iter(self.environments.values()))
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments)
            raise ConfigError(f"unknown environment {name!r}; configured: {known}") from None

    def environment_for_channel(self, channel: str | None) -> Environment | None:
        """The environment a channel may use: the one listing it, else one with no channel restriction."""
        for env in self.environments.values():
            if channel and channel in env.channels:
                return env
        for env in self.environments.values():
            if not env.channels:
                return env
        return None


def _id_list(value: str | list[str] | None, setting: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = value if isinstance(value, list) else [part.strip() for part in value.split(",")]
    items = [item for item in items if item]
    for item in items:
        if not ID_PATTERN.match(item):
            raise ConfigError(f"{setting}: {item!r} is not a Slack user id (U...) or user-group id (S...)")
    return frozenset(items)


def _probes(value: str | Mapping[str, str] | None, setting: str) -> dict[str, str]:
    if not value:
        return {}
    pairs = value.items() if isinstance(value, Mapping) else (p.split("=", 1) for p in value.split(",") if p)
    probes: dict[str, str] = {}
    for pair in pairs:
        if len(pair) != 2 or not re.fullmatch(r"[^:\s]+:\d+", pair[1].strip()):
            raise ConfigError(f"{setting}: expected proxy=host:port entries, got {pair!r}")
        probes[pair[0].strip()] = pair[1].strip()
    return probes


def _number(value: object, setting: str, *, minimum: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{setting}: expected a number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{setting}: must be at least {minimum:g}, got {number:g}")
    return number


def load_settings(
    env: Mapping[str, str] | None = None, *, require_slack: bool = False, socket_mode: bool = False
) -> Settings:
    env = os.environ if env is None else env
    base = Environment(
        name="default",
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        operators=_id_list(env.get("BLUEGREEN_OPERATORS"), "BLUEGREEN_OPERATORS"),
        approvers=_id_list(env.get("BLUEGREEN_APPROVERS"), "BLUEGREEN_APPROVERS"),
        approval_ttl=_number(env.get("BLUEGREEN_APPROVAL_TTL", "900"), "BLUEGREEN_APPROVAL_TTL", minimum=1),
        proxy_probes=_probes(env.get("BLUEGREEN_PROXY_PROBES"), "BLUEGREEN_PROXY_PROBES"),
        target_timeout=_number(env.get("BLUEGREEN_TARGET_TIMEOUT", "900"), "BLUEGREEN_TARGET_TIMEOUT", minimum=1),
        native_follow_timeout=_number(
            env.get("BLUEGREEN_NATIVE_FOLLOW_TIMEOUT", "300"), "BLUEGREEN_NATIVE_FOLLOW_TIMEOUT", minimum=1
        ),
    )
    environments: dict[str, Environment] = {}
    config_path = env.get("BLUEGREEN_CONFIG")
    if config_path:
        environments = _load_environments(config_path, base)
    if not environments:
        environments = {"default": base}

    port_text = env.get("PORT", "3000")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"PORT: expected a TCP port number, got {port_text!r}")
    slack = SlackSettings(
        bot_token=env.get("SLACK_BOT_TOKEN"),
        signing_secret=env.get("SLACK_SIGNING_SECRET"),
        app_token=env.get("SLACK_APP_TOKEN"),
        api_url=env.get("SLACK_API_URL"),
        port=int(port_text),
    )
    if require_slack:
        needed = ["SLACK_BOT_TOKEN"] + (["SLACK_APP_TOKEN"] if socket_mode else ["SLACK_SIGNING_SECRET"])
        missing = [name for name in needed if not env.get(name)]
        if missing:
            raise ConfigError(f"missing setting: {', '.join(missing)} (see README, 'Configuration')")
        if not slack.bot_token.startswith("xoxb-"):  # type: ignore[union-attr]
            raise ConfigError("SLACK_BOT_TOKEN: expected a bot token starting with xoxb-")
        if socket_mode and not slack.app_token.startswith("xapp-"):  # type: ignore[union-attr]
            raise ConfigError("SLACK_APP_TOKEN: expected an app-level token starting with xapp-")
    return Settings(db_path=env.get("BLUEGREEN_DB", "bluegreen.db"), environments=environments, slack=slack)


def _load_environments(path: str, base: Environment) -> dict[str, Environment]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"BLUEGREEN_CONFIG: no such file {path!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"BLUEGREEN_CONFIG: {path} is not valid TOML: {exc}") from None
    environments: dict[str, Environment] = {}
    for name, table in (data.get("environments") or {}).items():
        where = f"{path}: environments.{name}"
        known = {
            "region", "role_arn", "channels", "operators", "approvers", "approval_ttl",
            "maintenance_window", "switchover_timeout", "proxy_probes", "require_probe",
        }  # fmt: skip
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        window = table.get("maintenance_window")
        timeout = int(_number(table.get("switchover_timeout", 300), f"{where}.switchover_timeout", minimum=30))
        if timeout > 3600:
            raise ConfigError(f"{where}.switchover_timeout: AWS allows at most 3600 seconds")
        environments[name] = Environment(
            name=name,
            region=table.get("region", base.region),
            role_arn=table.get("role_arn"),
            channels=frozenset(table.get("channels", [])),
            operators=_id_list(table.get("operators"), f"{where}.operators") or base.operators,
            approvers=_id_list(table.get("approvers"), f"{where}.approvers") or base.approvers,
            approval_ttl=_number(table.get("approval_ttl", base.approval_ttl), f"{where}.approval_ttl", minimum=1),
            maintenance_window=MaintenanceWindow.parse(window, setting=f"{where}.maintenance_window")
            if window
            else None,
            switchover_timeout=timeout,
            proxy_probes=_probes(table.get("proxy_probes"), f"{where}.proxy_probes") or base.proxy_probes,
            require_probe=bool(table.get("require_probe", False)),
            target_timeout=base.target_timeout,
            native_follow_timeout=base.native_follow_timeout,
        )
    return environments
