"""The TOML file of environments (`BLUEGREEN_CONFIG`), read strictly: an unknown section or key, a value of the wrong
type, an empty list, a malformed id, ARN, region or window, an out-of-range number is refused naming the file, the key
and the fix. `read_environments` returns each environment's settings as written; `bot/config.py` fills in the
defaults and checks the environments against each other.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable
from typing import Any

from bot import config_types as types
from bot.config_types import ConfigError, MaintenanceWindow, refuse

ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
APPROVAL_TTL_RANGE = (1.0, 86400.0)  # seconds: an approval request valid for more than a day is a standing grant
SWITCHOVER_TIMEOUT_RANGE = (30, 3600)  # AWS's bounds for SwitchoverTimeout
DESCRIBE_RATE_RANGE = (0.5, 1000.0)  # calls a second: below 0.5 a scan of a large account takes hours

Reader = Callable[[object, str], Any]

# Every key an environment may set: its reader, and its type as the README shows it.
KEYS: dict[str, tuple[Reader, str]] = {
    "region": (types.region, "string, an AWS region code"),
    "role_arn": (types.role_arn, "string, an IAM role ARN"),
    "channels": (
        lambda v, s: types.channel_ids(_non_empty(types.string_list(v, s, '["C0123ABC"]'), s, "channels"), s),
        "list of channel ids",
    ),
    "operators": (
        lambda v, s: types.user_ids(_non_empty(types.string_list(v, s, '["U0123ABC", "S0DBAS"]'), s, "operators"), s),
        "list of user / user-group ids",
    ),
    "approvers": (
        lambda v, s: types.user_ids(_non_empty(types.string_list(v, s, '["S0SRELEADS"]'), s, "approvers"), s),
        "list of user / user-group ids",
    ),
    "approval_ttl": (
        lambda v, s: types.seconds(v, s, minimum=APPROVAL_TTL_RANGE[0], maximum=APPROVAL_TTL_RANGE[1]),
        "number of seconds, 1-86400",
    ),
    "maintenance_window": (lambda v, s: MaintenanceWindow.parse(v, setting=s), 'string, "sat,sun 02:00-04:00"'),
    "switchover_timeout": (
        lambda v, s: types.integer(v, s, minimum=SWITCHOVER_TIMEOUT_RANGE[0], maximum=SWITCHOVER_TIMEOUT_RANGE[1]),
        "integer seconds, 30-3600",
    ),
    "proxy_probes": (types.table_probes, 'table, proxy = "host:port"'),
    "require_probe": (types.boolean, "boolean"),
    "max_replica_lag": (lambda v, s: types.seconds(v, s, minimum=0, maximum=86400), "number of seconds"),
    "lag_wait": (lambda v, s: types.seconds(v, s, minimum=0, maximum=86400), "number of seconds"),
    "fix_drift": (types.boolean, "boolean"),
    "rehearsals": (types.boolean, "boolean"),
    "aws_describe_rate": (
        lambda v, s: _rate(v, s, *DESCRIBE_RATE_RANGE),
        "number of RDS describe calls a second, 0.5-1000",
    ),
}
EMPTY_LIST_FIXES = {
    "channels": "list the channel ids, or leave `channels` out to accept every channel",
    "operators": "list who may start runs (user or user-group ids)",
    "approvers": "list who may approve switchovers (user or user-group ids)",
}


def _rate(value: object, setting: str, minimum: float, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise refuse(
            setting,
            f"expected a number of calls a second, got {types.describe(value)}",
            f"write a number {minimum:g}-{maximum:g}",
        )
    return float(types.in_range(value, setting, minimum, maximum))


def _non_empty(items: list[str], setting: str, key: str) -> list[str]:
    if not items:
        raise refuse(setting, "the list is empty", EMPTY_LIST_FIXES[key])
    return items


def _suggest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def read_environments(path: str) -> dict[str, dict[str, Any]]:
    """Each environment's settings as written in `path`, validated one by one. Raises ConfigError."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise refuse("BLUEGREEN_CONFIG", f"no such file {path!r}", "point it at the TOML file, or unset it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse("BLUEGREEN_CONFIG", f"cannot read {path!r}: {exc}", "check the path and its permissions") from None
    except tomllib.TOMLDecodeError as exc:
        raise refuse(path, f"not valid TOML: {exc}", "correct the syntax at that line") from None
    for section in data:
        if section != "environments":
            raise refuse(
                f"{path}: {section}",
                "unknown section (the file holds only [environments.NAME] tables)",
                f"{_suggest(section, ['environments'])}rename or remove it",
            )
    environments = data.get("environments")
    if not isinstance(environments, dict) or not environments:
        raise refuse(
            f"{path}: environments",
            "no environment is defined",
            "add at least one [environments.NAME] table with channels, operators and approvers",
        )
    return {name: _read_environment(path, name, table) for name, table in environments.items()}


def _read_environment(path: str, name: str, table: object) -> dict[str, Any]:
    where = f"{path}: environments.{name}"
    if not ENVIRONMENT_NAME.match(name):
        raise refuse(where, f"{name!r} is not a usable environment name", "use letters, digits, - and _ (at most 64)")
    if not isinstance(table, dict):
        raise refuse(where, f"expected a table, got {types.describe(table)}", f"write it as [environments.{name}]")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key not in KEYS:
            raise refuse(
                f"{where}.{key}",
                "unknown setting",
                f"{_suggest(key, list(KEYS))}use one of: {', '.join(KEYS)}",
            )
        reader, _ = KEYS[key]
        settings[key] = reader(value, f"{where}.{key}")
    return settings


__all__ = ["KEYS", "ConfigError", "read_environments"]
