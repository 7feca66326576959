"""What an operator asks for, validated. Shared by the CLI and the Slack handlers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.errors import BadRequest

RunKind = Literal["create", "upgrade", "switchover", "cleanup", "rollback", "rehearse"]
Mode = Literal["auto", "native", "workaround"]
RUN_KINDS: tuple[RunKind, ...] = ("create", "upgrade", "switchover", "cleanup", "rollback", "rehearse")
MODES: tuple[Mode, ...] = ("auto", "native", "workaround")

# RDS identifiers: 1-63 letters, digits or hyphens; first a letter; no trailing hyphen or two hyphens in a row.
DB_IDENTIFIER = re.compile(r"^[a-zA-Z](?:[a-zA-Z0-9]|-(?!-)){0,62}(?<!-)$")
ENGINE_VERSION = re.compile(r"^\d{1,3}(?:\.\d{1,4}){0,3}(?:[.-][a-zA-Z0-9_.-]{1,40})?$")
PARAMETER_GROUP = re.compile(r"^[a-zA-Z](?:[a-zA-Z0-9]|-(?!-)){0,254}(?<!-)$")
RUN_ID = re.compile(r"^r-[a-z0-9]{4,32}$")


def check_identifier(value: str) -> str:
    if not DB_IDENTIFIER.match(value or ""):
        raise BadRequest(
            f"`{_quote(value)}` is not a valid RDS identifier.",
            fix="Give a DB instance or Aurora cluster identifier: 1-63 letters, digits or hyphens, first a letter.",
        )
    return value.lower()


def check_run_id(value: str) -> str:
    if not RUN_ID.match(value or ""):
        raise BadRequest(
            f"`{_quote(value)}` is not a run id.", fix="Run ids look like `r-1a2b3c4d`; `runs` lists them."
        )
    return value


def _quote(value: str) -> str:
    """Show user input safely inside a message: bounded, no markup or control characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_.:/=@+-]", "?", value or "")
    return cleaned[:64] + ("..." if len(cleaned) > 64 else "")


@dataclass(frozen=True, slots=True)
class RunRequest:
    kind: RunKind
    database: str
    requester: str
    environment: str = "default"
    channel: str | None = None
    engine_version: str | None = None
    parameter_group: str | None = None
    mode: Mode = "auto"
    switchover_timeout: int | None = None
    delete_old: bool = False
    fix_drift: bool = False  # switchover: restore old blue's deletion protection and tags on the new primary

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise BadRequest(f"unknown run kind {self.kind!r}", fix=f"Use one of: {', '.join(RUN_KINDS)}.")
        object.__setattr__(self, "database", check_identifier(self.database))
        if self.engine_version is not None and not ENGINE_VERSION.match(self.engine_version):
            raise BadRequest(
                f"`{_quote(self.engine_version)}` is not an engine version.", fix="For example `--engine-version 16.4`."
            )
        if self.parameter_group is not None and not PARAMETER_GROUP.match(self.parameter_group):
            raise BadRequest(f"`{_quote(self.parameter_group)}` is not a parameter group name.")
        if self.mode not in MODES:
            raise BadRequest(f"unknown mode `{_quote(self.mode)}`", fix="Use --mode auto, native or workaround.")
        if self.kind == "upgrade" and not self.engine_version:
            raise BadRequest(
                "upgrade needs the target version.", fix="For example `upgrade orders-pg --engine-version 16.4`."
            )
        if self.fix_drift and self.kind != "switchover":
            raise BadRequest(
                "--fix-drift applies to `switchover` only.", fix="For example `switchover orders-pg --fix-drift`."
            )
        timeout = self.switchover_timeout
        if timeout is not None and not 30 <= timeout <= 3600:
            raise BadRequest(
                f"switchover timeout {timeout} s is out of range.", fix="AWS accepts 30 to 3600 seconds (default 300)."
            )

    def params(self) -> dict[str, object]:
        return {
            "engine_version": self.engine_version,
            "parameter_group": self.parameter_group,
            "mode": self.mode,
            "switchover_timeout": self.switchover_timeout,
            "delete_old": self.delete_old,
            "fix_drift": self.fix_drift or None,  # recorded only when asked for
        }
