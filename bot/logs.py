"""The log stream: `LOG_LEVEL` and `LOG_FORMAT` (text or JSON lines), run context on every record, secrets redacted.

Log records always go to stderr. The run's progress for people is a separate stream (the console sink, the Slack
thread): `python -m bot serve` turns its console sink off with `LOG_FORMAT=json`, so that every line on its stderr is
one JSON object; the CLI keeps its progress and its answers on stdout.

Run context: the runner wraps a run, and each step, in `log_context(...)`; every record emitted meanwhile, by any
logger and without threading arguments, carries `run_id`, `environment` and `step`. Records about one AWS call pass
`action` and `aws_request_id` as `extra`. The fields live in a `contextvars.ContextVar`, so each asyncio task sees
the context it was created in (tasks copy it) and concurrent runs never mix.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
CONTEXT_FIELDS = ("run_id", "step", "action", "aws_request_id", "environment")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[REDACTED]"
# Variables whose values must never reach a log line, whatever their shape.
SECRET_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
MIN_SECRET_LENGTH = 12  # shorter values (the sandbox's "sandbox") would redact ordinary words
# Libraries whose DEBUG output is request dumps (headers, signatures, bodies): never below INFO.
LIBRARY_FLOOR = ("botocore", "aiobotocore", "boto3", "urllib3", "s3transfer", "slack_sdk", "slack_bolt")
# This program's packages: their loggers log at exactly `LOG_LEVEL`, whatever was set on them before.
OWN_PACKAGES = ("bot", "handlers", "storage")
SECRET_PATTERNS = (
    re.compile(r"\bxox[abeprs]-[A-Za-z0-9-]+"),  # Slack bot, user, app, refresh, legacy tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),  # Slack app-level tokens
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key ids, paired with a secret
    # An AWS secret or session token after its name: aws_secret_access_key=..., "SecretAccessKey": "...".
    re.compile(
        r"(?i)((?:aws_)?secret_?access_?key|(?:aws_)?session_?token|signing_?secret)([\"']?\s*[:=]\s*[\"']?)"
        r"[A-Za-z0-9/+=]{8,}"
    ),
)

_context: contextvars.ContextVar[Mapping[str, str | None]] = contextvars.ContextVar(
    "bluegreen_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Within the block (and in tasks created within it), every log record carries these fields on top of the
    current ones; a field given as None is removed. Only `CONTEXT_FIELDS` may be set."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {', '.join(sorted(unknown))}")
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    """The fields set by the enclosing `log_context` blocks (None values left out)."""
    return {key: value for key, value in _context.get().items() if value is not None}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret value, and everything shaped like a Slack token or an AWS secret, replaced."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda match: f"{match.group(1)}{match.group(2)}{REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def known_secrets(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values of `SECRET_VARIABLES` set in `env` (the process environment by default), long enough to be
    redacted safely."""
    env = os.environ if env is None else env
    return tuple(env[name] for name in SECRET_VARIABLES if len(env.get(name) or "") >= MIN_SECRET_LENGTH)


class ContextFilter(logging.Filter):
    """Puts the run context on each record; fields passed as `extra` win."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, context.get(name))
        return True


class LibraryFloor(logging.Filter):
    """Drops records below INFO from `LIBRARY_FLOOR` and their child loggers, whatever level a child was given."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or record.name.partition(".")[0] not in LIBRARY_FLOOR


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, exception text, stack and context fields with secrets redacted (see `redact`).
    The message is formatted here, once, so that no argument can carry a secret past it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, redact(value, self.secrets))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the run context fields that apply,
    and `exception` / `stack` when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [run_id=... step=...]`, for a terminal."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = [f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if getattr(record, name, None)]
        return f"{text} [{' '.join(fields)}]" if fields else text


class _BotHandler(logging.StreamHandler):
    """The handler `configure_logging` installs (marked, so that configuring again replaces it). Without a stream of
    its own it writes to whatever `sys.stderr` is at the time, as logging's last-resort handler does."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._follow_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stderr:
            self.stream = sys.stderr
        super().emit(record)


def configure_logging(
    level: str = "INFO", fmt: str = "text", *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    """Install the bot's one handler on the root logger (replacing one installed before): `level` for the bot and
    at least INFO for `LIBRARY_FLOOR`, `fmt` "text" or "json", run context on every record, `secrets` and
    token-shaped values redacted. Writes to `stream` (stderr by default). Raises ValueError for a level or format
    not in LEVELS / FORMATS (the settings are validated before, in `bot.config`).

    Every level it relies on is set here, each time: the root's and the handler's, `OWN_PACKAGES`' (their child
    loggers' own levels cleared, so that they inherit it) and `LIBRARY_FLOOR`'s (whose children the handler holds
    to INFO too). So the result does not depend on what configured logging before (an earlier call, a test, a
    library)."""
    if level not in LEVELS or fmt not in FORMATS:
        raise ValueError(f"log level {level!r} or format {fmt!r} unknown")
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _BotHandler)]:
        root.removeHandler(existing)
    handler = _BotHandler(stream)
    handler.addFilter(LibraryFloor())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactSecrets(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    numeric = logging.getLevelName(level)
    handler.setLevel(numeric)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.partition(".")[0] in OWN_PACKAGES:
            logger.setLevel(logging.NOTSET)
    for name in OWN_PACKAGES:
        logging.getLogger(name).setLevel(numeric)
    for name in LIBRARY_FLOOR:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    return handler
