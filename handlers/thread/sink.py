"""Renders a run's events as one Slack thread: a live parent checklist, step reports, approvals, the summary.

`emit` never blocks the runner on Slack and never raises: each run has a worker task that posts in order.
Checklist edits are coalesced to about one `chat.update` a second per run; the latest state is always the one
sent, and the final state is always flushed before the summary. Slack's 429/5xx are first retried by the
client's retry handlers; if those give up, the worker tries again later instead of dropping the message.

An edit that timed out may still be applied by Slack later, over a newer one (Slack has no conditional update):
after such a timeout the worker sends the newest checklist once more, one client timeout later.

Posts are exactly-once as far as Slack lets us: every message carries metadata naming its run and a key unique
within the run (`message_metadata`). When a post may have landed although it failed (a timeout, a lost connection, a
5xx), the worker reads the thread (or, for the parent, the channel's history) back before posting again, and
adopts the message it finds. A worker that did not see its run start (a process restarted mid-run) reads the
thread once before its first post, so that what the earlier process posted is not posted again.

Each run's posting is done by its worker (`handlers.thread.worker`); the keys and tags that mark the sink's
messages are in `handlers.thread.metadata`. A run whose channel the bot can no longer post in is handled by
`handlers.thread.lost_channel`: its approval requests are withdrawn through `report_to`'s engine, and the requester
is told by direct message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError, Settings
from bot.workflow.events import ApprovalDelivery, Event
from handlers.messages.console import console_links
from handlers.messages.formatting import Message
from handlers.thread.metadata import CannotTell, message_tag
from handlers.thread.worker import RunWorker
from storage import RunRecord, Store

log = logging.getLogger(__name__)

# Reading back what landed: pages of this size, at most this many (a run's thread is far smaller).
READ_BACK_PAGE_SIZE = 200
READ_BACK_MAX_PAGES = 10

# 5xx answers: Slack may have applied the call before failing.
_SERVER_ERRORS = frozenset({500, 502, 503, 504})

# Slack errors that no retry will fix: log them and move on.
_PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "message_not_found",
        "cant_update_message",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
    }
)


class SlackThreadSink:
    def __init__(
        self,
        client: AsyncWebClient,
        store: Store,
        *,
        edit_interval: float = 1.0,
        retry_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0),
        settings: Settings | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._settings = settings  # for each environment's region, in the AWS console links
        self._approvals: ApprovalDelivery | None = None
        self._edit_interval = edit_interval
        self._retry_delays = retry_delays
        self._workers: dict[str, RunWorker] = {}
        self._workspace_url: str | None = None
        self._workspace_url_known = False

    async def emit(self, event: Event) -> None:
        try:
            run = event.snapshot.run
            if not run.channel:
                return
            worker = self._workers.get(run.id)
            if worker is None or worker.done:
                worker = self._workers[run.id] = RunWorker(self, run.id)
            worker.submit(event)
        except Exception:  # a sink must never break a run
            log.exception("slack sink: could not accept %s", type(event).__name__)

    def report_to(self, approvals: ApprovalDelivery) -> None:
        """Where to report an approval request the sink could not show (the engine): it is withdrawn there."""
        self._approvals = approvals

    async def drain(self) -> None:
        """Waits until every queued post and pending edit has been sent (tests, shutdown)."""
        for worker in list(self._workers.values()):
            await worker.idle()

    async def aclose(self, grace: float = 10.0) -> None:
        """Sends what is pending (for at most `grace` seconds), then stops the workers."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.drain()
        for worker in list(self._workers.values()):
            worker.stop()
        self._workers.clear()

    # ------------------------------------------------------------ used by the workers

    def _forget(self, run_id: str, worker: RunWorker) -> None:
        if self._workers.get(run_id) is worker:
            del self._workers[run_id]

    async def _permalink(self, channel: str, ts: str) -> str | None:
        if not self._workspace_url_known:
            try:
                response = await self._client.auth_test()
                self._workspace_url = response.get("url")
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
                log.warning("slack sink: auth.test failed (%s); threads get no permalink", _describe(error))
            self._workspace_url_known = True
        if not self._workspace_url:
            return None
        return f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

    def _console_links(self, run: RunRecord) -> str | None:
        region = None
        if self._settings is not None:
            try:
                region = self._settings.environment(run.environment).region
            except ConfigError:
                region = None
        return console_links(run.database, run.meta, region)

    async def _direct_message(self, user: str, message: Message) -> None:
        """Posts `message` to `user` directly (the app's messages with them): for what the run's channel cannot show."""
        if not user.startswith(("U", "W")):
            return  # not a Slack user (a run started from the CLI)
        try:
            await self._client.chat_postMessage(channel=user, **message.as_kwargs())
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as error:
            log.warning("slack sink: could not message %s directly: %s", user, _describe(error))

    @property
    def _late_edit_grace(self) -> float:
        """How long after a timed-out call Slack may still apply it: one client timeout (an estimate: Slack
        promises nothing; a call applied later than this can still leave a stale checklist or a duplicate)."""
        return float(self._client.timeout)

    async def _call(
        self,
        what: str,
        call: Callable[[], Awaitable[Any]],
        *,
        on_unknown_fate: Callable[[], None] | None = None,
        find_landed: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> Any | None:
        """One Slack call, tried again later if Slack stays unavailable; None when it finally failed.

        `on_refused` is told the error code when Slack refused the call for good (`not_in_channel`, ...).

        `on_unknown_fate` is told when an attempt timed out or lost its connection: Slack may apply it later.
        `find_landed` (for posts) is asked before trying again after an attempt that may have landed, once Slack
        would have applied it; what it finds is returned instead of posting again."""
        look_after: float | None = None  # when set, an attempt may have landed: look (from then on) first
        for attempt, delay in enumerate((*self._retry_delays, None)):
            try:
                if look_after is not None and find_landed is not None:
                    await asyncio.sleep(max(0.0, look_after - time.monotonic()))
                    landed = await find_landed()
                    if landed is not None:
                        log.info("slack sink: %s had landed after all; not sending it again", what)
                        return landed
                    look_after = None
                return await call()
            except SlackApiError as error:
                code = error.response.get("error")
                status = error.response.status_code
                if code in _PERMANENT_ERRORS or status not in {429, *_SERVER_ERRORS}:
                    log.warning("slack sink: %s failed: %s", what, code)
                    if on_refused is not None and code:
                        on_refused(code)
                    return None
                reason = f"HTTP {status}"
                if status in _SERVER_ERRORS:
                    look_after = time.monotonic()  # Slack answered: whatever it applied is visible already
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                reason = _describe(error)
                look_after = time.monotonic() + self._late_edit_grace
                if on_unknown_fate is not None:
                    on_unknown_fate()
            except CannotTell as error:
                reason = f"could not tell whether it landed: {error}"
            if delay is None:
                log.error("slack sink: %s failed after %d attempts (%s); giving up", what, attempt + 1, reason)
                return None
            log.warning("slack sink: %s failed (%s); trying again in %.1fs", what, reason, delay)
            await asyncio.sleep(delay)
        return None

    async def _read_back(
        self, run_id: str, channel: str, *, thread_ts: str | None = None, oldest: float | None = None
    ) -> dict[str, str]:
        """{key: ts} of the run's messages in the thread of `thread_ts`, or else in the channel's history since
        `oldest`. Raises CannotTell while Slack cannot answer; logs and returns what it has if it never will."""
        found: dict[str, str] = {}
        cursor: str | None = None
        for _ in range(READ_BACK_MAX_PAGES):
            page_args: dict[str, Any] = {
                "channel": channel,
                "include_all_metadata": True,
                "limit": READ_BACK_PAGE_SIZE,
                "cursor": cursor,
            }
            if oldest is not None:
                page_args["oldest"] = f"{oldest:.6f}"
            try:
                if thread_ts is not None:
                    page = await self._client.conversations_replies(ts=thread_ts, **page_args)
                else:
                    page = await self._client.conversations_history(**page_args)
            except SlackApiError as error:
                code = error.response.get("error")
                if code in _PERMANENT_ERRORS or error.response.status_code not in {429, *_SERVER_ERRORS}:
                    log.warning("slack sink: cannot read back run %s's messages (%s); may post twice", run_id, code)
                    return found
                raise CannotTell(f"HTTP {error.response.status_code}") from error
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                raise CannotTell(_describe(error)) from error
            for message in page.get("messages") or []:
                tagged = message_tag(message)
                if tagged is not None and tagged[0] == run_id:
                    found.setdefault(tagged[1], message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return found
        log.warning("slack sink: read back %d pages of %s and stopped; may post twice", READ_BACK_MAX_PAGES, channel)
        return found


def _describe(error: BaseException) -> str:
    return type(error).__name__ + (f": {error}" if str(error) else "")
