"""`python -m bot check [--environment E]`: everything an operator should verify before the first real use, one row
per check with the fix for each failure. Exit 0 when every check passes, 1 when one fails, 2 when the configuration
itself is refused (as for every command).

- the configuration (`bot/config.py`);
- Slack: `auth.test`; the scopes the token was granted (Slack's `X-OAuth-Scopes` header) against `manifest.yml`;
  that the bot is a member of each configured channel (`conversations.info` -> `channel.is_member`);
- AWS, per environment (`bot/checks.py`): who the bot is, the role it assumes, `describe-db-proxies`, and the
  actions of `iam-policy.json` where the bot may simulate its policy.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.checks import Row, aws_rows, config_row, render
from bot.config import ConfigError, Environment, Settings, load_settings
from handlers.channel_access import INVITE

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"
SLACK_TIMEOUT = 10  # seconds per call
EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2

INVITE_FIX = f"type `{INVITE}` in the channel"


def manifest_scopes(path: Path = MANIFEST) -> list[str]:
    """The bot scopes `manifest.yml` asks for (`oauth_config.scopes.bot`), read without a YAML dependency."""
    scopes: list[str] = []
    path_so_far: list[tuple[int, str]] = []  # (indent, key) of the mapping keys enclosing the current line
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        while path_so_far and path_so_far[-1][0] >= indent and not text.startswith("- "):
            path_so_far.pop()
        if text.startswith("- "):
            if [key for _, key in path_so_far][-3:] == ["oauth_config", "scopes", "bot"]:
                scopes.append(text[2:].strip())
        elif text.endswith(":"):
            path_so_far.append((indent, text[:-1]))
    return scopes


def _header(headers: Mapping[str, object], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value if isinstance(value, str) else ",".join(value)  # type: ignore[arg-type]
    return None


def _slack_failure(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, SlackApiError):
        code = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
        if code in {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}:
            return f"Slack refused the token ({code})", "copy the Bot User OAuth Token (xoxb-...) into SLACK_BOT_TOKEN"
        return f"Slack answered {code}", "see Slack's error above"
    where = os.environ.get("SLACK_API_URL") or "slack.com"
    return f"{where} is unreachable ({type(exc).__name__})", "check the network path to Slack, and SLACK_API_URL"


async def slack_rows(settings: Settings, environments: Sequence[Environment]) -> list[Row]:
    """auth.test, the granted scopes, and the bot's membership of every channel of `environments`."""
    token = settings.slack.bot_token
    if not token:
        return [Row("slack: auth.test", "fail", "SLACK_BOT_TOKEN is not set", "set it to the Bot User OAuth Token")]
    client = AsyncWebClient(
        token=token, base_url=settings.slack.api_url or AsyncWebClient.BASE_URL, timeout=SLACK_TIMEOUT
    )
    try:
        auth = await client.auth_test()
    except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        problem, fix = _slack_failure(exc)
        return [Row("slack: auth.test", "fail", problem, fix)]
    rows = [Row("slack: auth.test", "ok", f"bot {auth.get('user')} ({auth.get('user_id')}) in {auth.get('team')}")]
    rows.append(_scopes_row(_header(auth.headers, "X-OAuth-Scopes")))
    for environment in environments:
        if not environment.channels:
            rows.append(
                Row(
                    f"slack {environment.name}: channels",
                    "skip",
                    "no `channels`: the environment serves any channel; invite the bot to each one you use",
                )
            )
        for channel in sorted(environment.channels):
            rows.append(await _member_row(client, environment, channel))
    return rows


def _scopes_row(granted_header: str | None) -> Row:
    check = "slack: scopes"
    if not MANIFEST.exists():
        return Row(check, "skip", f"skipped ({MANIFEST.name} is not installed next to the package)")
    needed = manifest_scopes()
    if granted_header is None:
        return Row(check, "fail", "Slack did not report the token's scopes", "use the bot token (xoxb-...)")
    granted = {scope.strip() for scope in granted_header.split(",") if scope.strip()}
    missing = [scope for scope in needed if scope not in granted]
    if missing:
        return Row(
            check,
            "fail",
            f"missing {', '.join(missing)}",
            "add them to the app (OAuth & Permissions, or paste manifest.yml) and reinstall it to the workspace",
        )
    return Row(check, "ok", f"all {len(needed)} scopes of {MANIFEST.name} granted")


async def _member_row(client: AsyncWebClient, environment: Environment, channel: str) -> Row:
    check = f"slack {environment.name}: {channel}"
    try:
        info = await client.conversations_info(channel=channel)
    except SlackApiError as exc:
        code = exc.response.get("error")
        if code == "channel_not_found":
            return Row(check, "fail", "not found (or private, and the bot was never invited)", INVITE_FIX)
        if code == "missing_scope":
            return Row(check, "fail", "cannot look at channels (missing_scope)", "grant channels:read and groups:read")
        problem, fix = _slack_failure(exc)
        return Row(check, "fail", problem, fix)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        problem, fix = _slack_failure(exc)
        return Row(check, "fail", problem, fix)
    data = info.get("channel") or {}
    label = f"#{data.get('name')}" if data.get("name") else channel
    if data.get("is_archived"):
        return Row(check, "fail", f"{label} is archived", "unarchive it, or configure another channel")
    if not data.get("is_member"):
        return Row(check, "fail", f"the bot is not a member of {label}", INVITE_FIX)
    return Row(check, "ok", f"the bot is a member of {label}")


async def run_checks(settings: Settings, environments: Sequence[Environment]) -> list[Row]:
    """Every row after the configuration's: Slack first, then AWS per environment."""
    rows = await slack_rows(settings, environments)
    for environment in environments:
        rows += await aws_rows(environment)
    return rows


def main(argv: list[str] | None = None) -> int:
    """`python -m bot check [--environment E]`."""
    parser = argparse.ArgumentParser(prog="python -m bot check", description="Check the set-up before first use.")
    parser.add_argument("--environment", "--env", dest="environment", help="check this environment only")
    args = parser.parse_args(argv or [])
    # Failures are rows with their fix; botocore's own warnings (a failed credential refresh) would repeat them.
    for name in ("botocore", "aiobotocore"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        settings = load_settings()
        environments = (
            [settings.environment(args.environment)] if args.environment else list(settings.environments.values())
        )
    except ConfigError as exc:
        where = f"{exc.setting}: {exc.problem}" if exc.setting else exc.problem
        print(render([Row("config", "fail", where, exc.fix)]))
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    rows = [config_row(settings, os.environ.get("BLUEGREEN_CONFIG")), *asyncio.run(run_checks(settings, environments))]
    print(render(rows), flush=True)
    return EXIT_FAILED if any(row.status == "fail" for row in rows) else EXIT_OK
