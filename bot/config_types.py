"""The typed values a setting may hold, each read strictly: a wrong type, a malformed id or an out-of-range number
raises `ConfigError` naming the setting and the fix. Nothing is coerced (`"false"` is not a boolean, `300.0` is not
an int, `"C0OPS"` is not a list), so a typo cannot quietly become a default.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
USER_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")  # a user (U..., W... on Enterprise Grid) or a user group (S...)
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")  # a public (C...) or private (G..., older) channel
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")  # us-east-1, eu-central-2, us-gov-west-1, ap-southeast-5
ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov|-iso|-iso-[a-z])?:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
PROXY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
HOST_PORT = re.compile(r"^([^:\s]+):(\d{1,5})$")


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the setting (and the file it is in) and the fix."""

    def __init__(self, message: str, *, setting: str | None = None, fix: str | None = None) -> None:
        self.setting = setting
        self.problem = message
        self.fix = fix
        text = f"{setting}: {message}" if setting else message
        super().__init__(f"{text}. Fix: {fix}" if fix else text)


def refuse(setting: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(problem, setting=setting, fix=fix)


def describe(value: object) -> str:
    """A value as the operator wrote it, with its TOML type, for error messages."""
    kinds = {bool: "boolean", int: "integer", float: "float", str: "string", list: "list", dict: "table"}
    kind = next((name for python, name in kinds.items() if isinstance(value, python)), type(value).__name__)
    shown = repr(value)
    return f"the {kind} {shown if len(shown) <= 60 else shown[:57] + '...'}"


# ---- scalars


def string(value: object, setting: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise refuse(setting, f"expected a non-empty string, got {describe(value)}", f"write {example}")
    return value.strip()


def boolean(value: object, setting: str) -> bool:
    if not isinstance(value, bool):
        raise refuse(setting, f"expected true or false (unquoted), got {describe(value)}", "write true or false")
    return value


def integer(value: object, setting: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise refuse(
            setting, f"expected a whole number, got {describe(value)}", f"write a whole number {minimum}-{maximum}"
        )
    return in_range(value, setting, minimum, maximum)


def seconds(value: object, setting: str, *, minimum: float, maximum: float) -> float:
    """A number of seconds: an integer or a float, finite, within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise refuse(
            setting, f"expected a number of seconds, got {describe(value)}", f"write a number {minimum:g}-{maximum:g}"
        )
    return float(in_range(value, setting, minimum, maximum))


def in_range(value: Any, setting: str, minimum: float, maximum: float) -> Any:
    if not minimum <= value <= maximum:
        raise refuse(setting, f"{value:g} is out of range", f"use a value from {minimum:g} to {maximum:g}")
    return value


def env_seconds(text: str, setting: str, *, minimum: float, maximum: float) -> float:
    """An environment variable holding a number of seconds ("900", "2.5")."""
    try:
        number = float(text.strip())
    except ValueError:
        raise refuse(
            setting, f"expected a number of seconds, got {text!r}", f"set a number {minimum:g}-{maximum:g}"
        ) from None
    if not math.isfinite(number):
        raise refuse(
            setting, f"expected a finite number of seconds, got {text!r}", f"set a number {minimum:g}-{maximum:g}"
        )
    return float(in_range(number, setting, minimum, maximum))


def env_integer(text: str, setting: str, *, minimum: int, maximum: int) -> int:
    if not re.fullmatch(r"\d{1,10}", text.strip()):
        raise refuse(setting, f"expected a whole number, got {text!r}", f"set a whole number {minimum}-{maximum}")
    return int(in_range(int(text.strip()), setting, minimum, maximum))


def region(value: object, setting: str) -> str:
    text = string(value, setting, 'region = "eu-west-1"')
    if not REGION.match(text):
        raise refuse(setting, f"{text!r} is not an AWS region", 'write a region code such as "eu-west-1"')
    return text


def role_arn(value: object, setting: str) -> str:
    text = string(value, setting, 'role_arn = "arn:aws:iam::123456789012:role/bluegreen-bot"')
    if not ROLE_ARN.match(text):
        raise refuse(
            setting, f"{text!r} is not an IAM role ARN", 'write "arn:aws:iam::<12-digit account>:role/<role name>"'
        )
    return text


# ---- lists of Slack ids


def string_list(value: object, setting: str, example: str) -> list[str]:
    """A TOML array of strings. A bare string is refused: it is not silently split into characters."""
    if isinstance(value, str):
        raise refuse(setting, f"expected a list, got {describe(value)}", f"put it in brackets: {json.dumps([value])}")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise refuse(setting, f"expected a list of strings, got {describe(value)}", f"write {example}")
    return [item.strip() for item in value]


def comma_list(text: str) -> list[str]:
    """An environment variable holding a comma-separated list; blanks around items are ignored."""
    return [item.strip() for item in text.split(",") if item.strip()]


def user_ids(items: list[str], setting: str) -> frozenset[str]:
    for item in items:
        if not USER_ID.match(item):
            raise refuse(
                setting,
                f"{item!r} is not a Slack user id (U..., W...) or user-group id (S...)",
                "use the member id from the person's Slack profile or the user group's id, not a name",
            )
    return frozenset(items)


def channel_ids(items: list[str], setting: str) -> frozenset[str]:
    for item in items:
        if not CHANNEL_ID.match(item):
            raise refuse(
                setting,
                f"{item!r} is not a Slack channel id (C... or G...)",
                "use the id from the channel's details (bottom of the About tab), not its #name",
            )
    return frozenset(items)


# ---- proxy probes


def probes(pairs: list[tuple[str, object]], setting: str) -> dict[str, str]:
    """proxy name -> "host:port" for the connectivity check."""
    found: dict[str, str] = {}
    for proxy, address in pairs:
        match = HOST_PORT.match(address.strip()) if isinstance(address, str) else None
        if not PROXY_NAME.match(proxy.strip()) or match is None or not 0 < int(match.group(2)) < 65536:
            raise refuse(
                setting, f"{proxy}={address!r} is not proxy=host:port", 'write each entry as proxy-name = "host:port"'
            )
        found[proxy.strip()] = address.strip()  # type: ignore[union-attr]
    return found


def env_probes(text: str, setting: str) -> dict[str, str]:
    pairs: list[tuple[str, object]] = []
    for entry in comma_list(text):
        proxy, equals, address = entry.partition("=")
        if not equals:
            raise refuse(setting, f"{entry!r} is not proxy=host:port", "set proxy=host:port,proxy=host:port")
        pairs.append((proxy, address))
    return probes(pairs, setting)


def table_probes(value: object, setting: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise refuse(
            setting, f"expected a table, got {describe(value)}", 'write proxy_probes = { orders-proxy = "host:5432" }'
        )
    return probes(list(value.items()), setting)


# ---- the maintenance window


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A daily UTC window, optionally on some weekdays only: "sat,sun 02:00-04:00" or "22:00-23:30"."""

    days: frozenset[int]
    start: dt.time
    end: dt.time
    text: str

    @classmethod
    def parse(cls, text: object, *, setting: str = "maintenance_window") -> MaintenanceWindow:
        """Parse the window, or raise ConfigError naming `setting`. A window that starts when it ends is refused."""
        fix = 'write "sat,sun 02:00-04:00" or "22:00-23:30" (UTC, 24-hour clock, days mon..sun)'
        if not isinstance(text, str):
            raise refuse(setting, f"expected a string, got {describe(text)}", fix)
        match = re.fullmatch(r"\s*(?:([a-z,]+)\s+)?(\d\d):(\d\d)-(\d\d):(\d\d)\s*", text.lower())
        if not match:
            raise refuse(setting, f"cannot read {text!r}", fix)
        day_text, h1, m1, h2, m2 = match.groups()
        days = set(range(7))
        if day_text:
            days = set()
            for part in day_text.split(","):
                if part not in DAYS:
                    raise refuse(setting, f"unknown day {part!r} in {text!r}", f"use {', '.join(DAYS)}")
                days.add(DAYS.index(part))
        try:
            start, end = dt.time(int(h1), int(m1)), dt.time(int(h2), int(m2))
        except ValueError as exc:
            raise refuse(setting, f"{exc} in {text!r}", fix) from None
        if start == end:
            raise refuse(setting, f"{text!r} starts when it ends, so it never opens", fix)
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
