"""The `/bluegreen` grammar. Pure: text in, a typed command out, or a BadRequest saying what to type instead."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from bot.errors import BadRequest
from bot.planning.requests import MODES, RUN_KINDS, Mode, RunKind, RunRequest, check_identifier, check_run_id

Subcommand = Literal[
    "help", "status", "plan", "create", "upgrade", "switchover", "cleanup", "rollback", "rehearse", "runs", "cancel"
]
FlagName = Literal["engine_version", "parameter_group", "mode", "timeout", "delete_old", "abandon_proxy", "fix_drift"]


@dataclass(frozen=True, slots=True)
class Syntax:
    usage: str
    argument: Literal["database", "run_id"] | None
    flags: frozenset[FlagName] = frozenset()


_PLAN_FLAGS: frozenset[FlagName] = frozenset({"engine_version", "parameter_group", "mode"})
SYNTAX: dict[Subcommand, Syntax] = {
    "help": Syntax("help", None),
    "status": Syntax("status <db>", "database"),
    "plan": Syntax("plan <db> [--engine-version V] [--parameter-group G] [--mode auto|native|workaround]",
                   "database", _PLAN_FLAGS),
    "create": Syntax("create <db> [--engine-version V] [--parameter-group G] [--mode auto|native|workaround]",
                     "database", _PLAN_FLAGS),
    "upgrade": Syntax("upgrade <db> --engine-version V", "database", frozenset({"engine_version"})),
    "switchover": Syntax("switchover <db> [--timeout SECONDS] [--fix-drift]", "database",
                         frozenset({"timeout", "fix_drift"})),
    "cleanup": Syntax("cleanup <db> [--delete-old]", "database", frozenset({"delete_old"})),
    "rollback": Syntax("rollback <db>", "database"),
    "rehearse": Syntax("rehearse <db> [--engine-version V] [--parameter-group G] [--mode auto|native|workaround]",
                       "database", _PLAN_FLAGS),
    "runs": Syntax("runs", None),
    "cancel": Syntax("cancel <run-id> [--abandon-proxy]", "run_id", frozenset({"abandon_proxy"})),
}  # fmt: skip

_VALUE_FLAGS: dict[str, FlagName] = {
    "--engine-version": "engine_version",
    "--parameter-group": "parameter_group",
    "--mode": "mode",
    "--timeout": "timeout",
}
_SWITCH_FLAGS: dict[str, FlagName] = {
    "--delete-old": "delete_old",
    "--abandon-proxy": "abandon_proxy",
    "--fix-drift": "fix_drift",
}

# Slack clients may turn "--" into an en or em dash, and quotes into curly ones.
_DASHES = re.compile(r"^[\u2013\u2014]+")
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    name: Subcommand
    database: str | None = None
    run_id: str | None = None
    engine_version: str | None = None
    parameter_group: str | None = None
    mode: Mode = "auto"
    timeout: int | None = None
    delete_old: bool = False
    abandon_proxy: bool = False  # cancel: stop compensating proxies an operator fixed by hand
    fix_drift: bool = False  # switchover: old blue's deletion protection and tags on the new primary afterwards

    @property
    def starts_run(self) -> bool:
        return self.name in RUN_KINDS

    @property
    def opens_form(self) -> bool:
        """`/bluegreen create` with no arguments opens the create modal."""
        return self.name == "create" and self.database is None

    @property
    def changes_something(self) -> bool:
        """Commands that only operators may use: starting or cancelling a run."""
        return self.starts_run or self.name == "cancel"

    def to_request(self, *, requester: str, environment: str, channel: str | None) -> RunRequest:
        """The run this command asks for (`plan` describes a create). Raises BadRequest on invalid values."""
        kind: RunKind = "create" if self.name == "plan" else self.name  # type: ignore[assignment]
        if kind not in RUN_KINDS or self.database is None:
            raise BadRequest(f"`{self.name}` does not start a run.")
        return RunRequest(
            kind=kind,
            database=self.database,
            requester=requester,
            environment=environment,
            channel=channel,
            engine_version=self.engine_version,
            parameter_group=self.parameter_group,
            mode=self.mode,
            switchover_timeout=self.timeout,
            delete_old=self.delete_old,
            fix_drift=self.fix_drift,
        )


def usage(name: Subcommand) -> str:
    return f"/bluegreen {SYNTAX[name].usage}"


def parse_command(text: str) -> ParsedCommand:
    """Parses the text after `/bluegreen`. Empty text means help."""
    words = [_normalise(word) for word in (text or "").translate(_QUOTES).split()]
    if not words:
        return ParsedCommand("help")
    name_text, rest = words[0].lower(), words[1:]
    if name_text not in SYNTAX:
        raise BadRequest(f"`{_shown(name_text)}` is not a /bluegreen command.", fix=_suggestion(name_text))
    name: Subcommand = name_text  # type: ignore[assignment]
    if name == "create" and not rest:
        return ParsedCommand("create")  # no arguments: the create form
    syntax = SYNTAX[name]
    positionals, flags = _split_flags(name, rest)
    values: dict[str, object] = {}
    if syntax.argument is None:
        if positionals:
            raise _wrong(name, f"`{name}` takes no argument, got `{_shown(positionals[0])}`.")
    else:
        if not positionals:
            what = "a database identifier" if syntax.argument == "database" else "a run id"
            raise _wrong(name, f"`{name}` needs {what}.")
        if len(positionals) > 1:
            raise _wrong(name, f"`{name}` takes one {syntax.argument.replace('_', ' ')}, got {len(positionals)}.")
        values[syntax.argument] = _checked(name, syntax.argument, positionals[0])
    values.update(flags)
    if name == "upgrade" and "engine_version" not in values:
        raise _wrong(name, "`upgrade` needs the target version.")
    command = ParsedCommand(name, **values)  # type: ignore[arg-type]
    if command.starts_run or name == "plan":
        # RunRequest holds the value rules (version and parameter group formats, timeout range).
        try:
            command.to_request(requester="U0PARSER", environment="default", channel=None)
        except BadRequest as error:
            fix = f"{error.fix} Type `{usage(name)}`." if error.fix else f"Type `{usage(name)}`."
            raise BadRequest(error.message, fix=fix) from None
    return command


def _split_flags(name: Subcommand, words: list[str]) -> tuple[list[str], dict[FlagName, object]]:
    allowed = SYNTAX[name].flags
    positionals: list[str] = []
    flags: dict[FlagName, object] = {}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-"):
            positionals.append(word)
            continue
        flag, _, inline_value = word.partition("=")
        flag = flag.lower()
        flag_name = _VALUE_FLAGS.get(flag) or _SWITCH_FLAGS.get(flag)
        if flag_name is None:
            raise _wrong(name, f"`{_shown(flag)}` is not a /bluegreen option.")
        if flag_name not in allowed:
            raise _wrong(name, f"`{flag}` does not apply to `{name}`.")
        if flag_name in flags:
            raise _wrong(name, f"`{flag}` is given twice.")
        if flag in _SWITCH_FLAGS:
            if inline_value:
                raise _wrong(name, f"`{flag}` takes no value.")
            flags[flag_name] = True
            continue
        value = inline_value
        if not value:
            if index >= len(words) or words[index].startswith("--"):
                raise _wrong(name, f"`{flag}` needs a value.")
            value = words[index]
            index += 1
        flags[flag_name] = _flag_value(name, flag_name, value)
    return positionals, flags


def _flag_value(name: Subcommand, flag: FlagName, value: str) -> object:
    if flag == "timeout":
        if not value.isdigit():
            raise _wrong(name, f"`--timeout` expects whole seconds, got `{_shown(value)}`.")
        return int(value)
    if flag == "mode":
        mode = value.lower()
        if mode not in MODES:
            raise _wrong(name, f"`{_shown(value)}` is not a mode; use {', '.join(MODES)}.")
        return mode
    return value


def _checked(name: Subcommand, argument: str, value: str) -> str:
    try:
        return check_identifier(value) if argument == "database" else check_run_id(value)
    except BadRequest as error:
        raise BadRequest(error.message, fix=f"{error.fix} Type `{usage(name)}`.") from None


def _wrong(name: Subcommand, message: str) -> BadRequest:
    return BadRequest(message, fix=f"Type `{usage(name)}`.")


def _suggestion(word: str) -> str:
    close = difflib.get_close_matches(word, list(SYNTAX), n=1, cutoff=0.6)
    if close:
        return f"Did you mean `/bluegreen {close[0]}`? `/bluegreen help` lists every command."
    return "Type `/bluegreen help` to see every command."


def _normalise(word: str) -> str:
    return _DASHES.sub("--", word)


def _shown(value: str) -> str:
    """User input echoed back: bounded and stripped of markup."""
    cleaned = re.sub(r"[^A-Za-z0-9_.:/=@+-]", "?", value)
    return cleaned[:40] + ("..." if len(cleaned) > 40 else "")


__all__ = ["SYNTAX", "FlagName", "ParsedCommand", "Subcommand", "parse_command", "usage"]
