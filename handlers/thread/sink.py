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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.workflow.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    Notice,
    RunFinished,
    RunSnapshot,
    RunStarted,
    StepChanged,
    StepReport,
)
from handlers import blocks
from storage import Store

log = logging.getLogger(__name__)

# How many times one run's checklist is sent again after edits whose fate was unknown (see the module docstring).
MAX_RESENDS = 3

# The metadata event type on every message the sink posts; the payload holds the run id and the message's key.
MESSAGE_EVENT_TYPE = "bluegreen_message"
# Reading back what landed: pages of this size, at most this many (a run's thread is far smaller).
READ_BACK_PAGE_SIZE = 200
READ_BACK_MAX_PAGES = 10
# Read back from this long before the first attempt: Slack's clock and ours may differ a little.
READ_BACK_MARGIN_SECONDS = 300.0

PARENT_KEY = "parent"
SUMMARY_KEY = "summary"

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


@dataclass(slots=True)
class Thread:
    channel: str
    ts: str


class SlackThreadSink:
    def __init__(
        self,
        client: AsyncWebClient,
        store: Store,
        *,
        edit_interval: float = 1.0,
        retry_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0),
    ) -> None:
        self._client = client
        self._store = store
        self._edit_interval = edit_interval
        self._retry_delays = retry_delays
        self._workers: dict[str, _RunWorker] = {}
        self._workspace_url: str | None = None
        self._workspace_url_known = False

    async def emit(self, event: Event) -> None:
        try:
            run = event.snapshot.run
            if not run.channel:
                return
            worker = self._workers.get(run.id)
            if worker is None or worker.done:
                worker = self._workers[run.id] = _RunWorker(self, run.id)
            worker.submit(event)
        except Exception:  # a sink must never break a run
            log.exception("slack sink: could not accept %s", type(event).__name__)

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

    def _forget(self, run_id: str, worker: _RunWorker) -> None:
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
    ) -> Any | None:
        """One Slack call, tried again later if Slack stays unavailable; None when it finally failed.

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
                    return None
                reason = f"HTTP {status}"
                if status in _SERVER_ERRORS:
                    look_after = time.monotonic()  # Slack answered: whatever it applied is visible already
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                reason = _describe(error)
                look_after = time.monotonic() + self._late_edit_grace
                if on_unknown_fate is not None:
                    on_unknown_fate()
            except _CannotTell as error:
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
        `oldest`. Raises _CannotTell while Slack cannot answer; logs and returns what it has if it never will."""
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
                raise _CannotTell(f"HTTP {error.response.status_code}") from error
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                raise _CannotTell(_describe(error)) from error
            for message in page.get("messages") or []:
                tagged = message_tag(message)
                if tagged is not None and tagged[0] == run_id:
                    found.setdefault(tagged[1], message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return found
        log.warning("slack sink: read back %d pages of %s and stopped; may post twice", READ_BACK_MAX_PAGES, channel)
        return found


class _RunWorker:
    """Posts one run's messages in order and coalesces its checklist edits."""

    def __init__(self, sink: SlackThreadSink, run_id: str) -> None:
        self._sink = sink
        self._run_id = run_id
        self._queue: deque[Event] = deque()
        self._latest: RunSnapshot | None = None  # newest snapshot not yet shown in the parent
        self._shown: RunSnapshot | None = None  # the snapshot last sent to the parent
        self._resend_at: float | None = None  # send `_shown` again then: an earlier edit may land late
        self._resends = 0
        self._last_edit = 0.0
        self._thread: Thread | None = None
        self._saw_start = False  # this worker saw the run start: no earlier process can have posted for it
        self._posted: dict[str, str] | None = None  # key -> ts of the run's messages in its thread; None: unread
        self._notices: Counter[str] = Counter()  # notices seen in this process, by key, to tell repeats apart
        self._finished = False
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._work(), name=f"slack-thread-{run_id}")

    @property
    def done(self) -> bool:
        return self._task.done()

    def submit(self, event: Event) -> None:
        if isinstance(event, StepChanged):
            self._latest = event.snapshot
        else:
            self._queue.append(event)
        self._idle.clear()
        self._wakeup.set()

    async def idle(self) -> None:
        if not self._task.done():
            await self._idle.wait()

    def stop(self) -> None:
        self._task.cancel()

    async def _work(self) -> None:
        try:
            while True:
                if self._queue:
                    await self._handle(self._queue.popleft())
                    continue
                if self._resend_at is not None and self._latest is None:
                    wait = self._resend_at - time.monotonic()
                    if wait > 0:
                        await self._sleep_until_woken(wait)
                        continue
                    self._resend_at, self._latest = None, self._shown
                    await self._flush_parent()
                    continue
                if self._finished:
                    return
                if self._latest is not None:
                    wait = self._last_edit + self._sink._edit_interval - time.monotonic()
                    if wait <= 0:
                        await self._flush_parent()
                        continue
                    await self._sleep_until_woken(wait)
                    continue
                self._idle.set()
                await self._sleep_until_woken(None)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("slack sink: worker for run %s stopped", self._run_id)
        finally:
            self._idle.set()
            self._sink._forget(self._run_id, self)

    async def _sleep_until_woken(self, seconds: float | None) -> None:
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()

    async def _handle(self, event: Event) -> None:
        try:
            if isinstance(event, RunStarted):
                await self._on_started(event)
            elif isinstance(event, StepReport):
                message = blocks.step_report(event.snapshot, event.step_idx, event.lines, event.aws_calls)
                key = report_key(event.snapshot, event.step_idx)
                await self._reply(event.snapshot, message, key=key, what="step report")
            elif isinstance(event, Notice):
                key = self._notice_key(event)
                notice = blocks.notice(event.text)
                await self._reply(event.snapshot, notice, key=key, what="notice", broadcast=event.broadcast)
            elif isinstance(event, ApprovalRequested):
                await self._on_approval_requested(event)
            elif isinstance(event, ApprovalDecided):
                await self._on_approval_decided(event)
            elif isinstance(event, RunFinished):
                await self._on_finished(event)
        except Exception:
            log.exception("slack sink: could not render %s for run %s", type(event).__name__, self._run_id)

    # ------------------------------------------------------------ the parent message

    async def _ensure_thread(self, snapshot: RunSnapshot) -> tuple[Thread | None, bool]:
        """The run's thread: remembered, recorded in the run's meta (after a restart), found in the channel (an
        earlier process posted it but stopped before recording it), or posted now.

        The flag is True when the parent was posted now, showing `snapshot` already."""
        if self._thread is not None:
            return self._thread, False
        recorded = _recorded_thread(snapshot.run.meta)
        if recorded is None:
            stored = self._sink._store.runs.get(self._run_id)
            recorded = _recorded_thread(stored.meta) if stored else None
        if recorded is not None:
            self._thread = recorded
            return recorded, False
        channel = snapshot.run.channel
        if not channel:
            return None, False
        earlier = None if self._saw_start else await self._earlier_parent(channel, snapshot.run.created_at)
        if earlier is not None:
            await self._record_thread(earlier)
            self._latest = self._latest or snapshot  # its checklist is as old as that process left it
            return earlier, False
        posted = await self._post_parent(channel, snapshot)
        if posted is None:
            return None, False
        self._posted = {}  # a thread this worker started holds only what it posts
        self._shown = snapshot
        self._last_edit = time.monotonic()
        await self._record_thread(posted)
        return posted, True

    async def _earlier_parent(self, channel: str, run_created_at: float) -> Thread | None:
        try:
            found = await self._sink._read_back(self._run_id, channel, oldest=run_created_at - READ_BACK_MARGIN_SECONDS)
        except _CannotTell as error:
            log.warning("slack sink: cannot look for run %s's thread (%s); starting one", self._run_id, error)
            return None
        ts = found.get(PARENT_KEY)
        return Thread(channel=channel, ts=ts) if ts else None

    async def _post_parent(self, channel: str, snapshot: RunSnapshot) -> Thread | None:
        message = blocks.run_parent(snapshot)
        since = time.time() - READ_BACK_MARGIN_SECONDS

        async def find_landed() -> dict[str, Any] | None:
            found = await self._sink._read_back(self._run_id, channel, oldest=since)
            return {"channel": channel, "ts": found[PARENT_KEY]} if PARENT_KEY in found else None

        response = await self._sink._call(
            "post parent message",
            lambda: self._sink._client.chat_postMessage(
                channel=channel, metadata=message_metadata(self._run_id, PARENT_KEY), **message.as_kwargs()
            ),
            find_landed=find_landed,
        )
        if response is None:
            return None
        return Thread(channel=response.get("channel") or channel, ts=response["ts"])

    async def _record_thread(self, thread: Thread) -> None:
        self._thread = thread
        slack_meta: dict[str, str] = {"channel": thread.channel, "ts": thread.ts}
        permalink = await self._sink._permalink(thread.channel, thread.ts)
        if permalink:
            slack_meta["permalink"] = permalink
        self._sink._store.runs.merge_meta(self._run_id, {"slack": slack_meta})

    async def _flush_parent(self) -> None:
        snapshot, self._latest = self._latest, None
        if snapshot is None:
            return
        thread, posted = await self._ensure_thread(snapshot)
        if thread is None or posted:
            return
        self._last_edit = time.monotonic()
        self._shown = snapshot
        message = blocks.run_parent(snapshot)
        await self._sink._call(
            "update parent message",
            lambda: self._sink._client.chat_update(channel=thread.channel, ts=thread.ts, **message.as_kwargs()),
            on_unknown_fate=self._resend_later,
        )

    def _resend_later(self) -> None:
        """An edit timed out: if Slack applies it late, it may cover a newer checklist. Send the newest again."""
        if self._resends < MAX_RESENDS:
            self._resends += 1
            self._resend_at = time.monotonic() + self._sink._late_edit_grace

    async def _on_started(self, event: RunStarted) -> None:
        self._saw_start = self._saw_start or not event.resumed
        thread, posted = await self._ensure_thread(event.snapshot)
        if thread is None or posted:
            return
        # The thread exists already: this is a run picked up again after a restart.
        self._latest = self._latest or event.snapshot
        await self._flush_parent()
        notice = blocks.notice("Picked up again after a restart; carrying on in this thread.")
        key = f"resumed:{_progress(event.snapshot)}"
        await self._reply(event.snapshot, notice, key=key, what="resume notice")

    async def _on_finished(self, event: RunFinished) -> None:
        self._latest = event.snapshot
        wait = self._last_edit + self._sink._edit_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # keeps to about one edit a second even for the last one
        await self._flush_parent()
        summary = blocks.run_summary(event.snapshot, event.status, event.error, event.windows)
        await self._reply(event.snapshot, summary, key=SUMMARY_KEY, what="summary", broadcast=True)
        self._finished = True

    # ------------------------------------------------------------ thread replies

    async def _reply(
        self, snapshot: RunSnapshot, message: blocks.Message, *, key: str, what: str, broadcast: bool = False
    ) -> str | None:
        """Posts `message` in the thread under `key`, unless a message with that key is there already."""
        thread, _ = await self._ensure_thread(snapshot)
        if thread is None:
            return None
        posted = await self._posted_in(thread)
        if key in posted:
            log.info("slack sink: the %s %s of run %s is posted already", what, key, self._run_id)
            return posted[key]
        extra: dict[str, Any] = {"reply_broadcast": True} if broadcast else {}
        since = time.time() - READ_BACK_MARGIN_SECONDS

        async def find_landed() -> dict[str, Any] | None:
            found = await self._sink._read_back(self._run_id, thread.channel, thread_ts=thread.ts, oldest=since)
            return {"channel": thread.channel, "ts": found[key]} if key in found else None

        response = await self._sink._call(
            f"post {what}",
            lambda: self._sink._client.chat_postMessage(
                channel=thread.channel,
                thread_ts=thread.ts,
                metadata=message_metadata(self._run_id, key),
                **message.as_kwargs(),
                **extra,
            ),
            find_landed=find_landed,
        )
        if response is None:
            return None
        posted[key] = response["ts"]
        return response["ts"]

    async def _posted_in(self, thread: Thread) -> dict[str, str]:
        """The run's messages in `thread` by key: read from Slack once if an earlier process may have posted."""
        if self._posted is None:
            try:
                self._posted = await self._sink._read_back(self._run_id, thread.channel, thread_ts=thread.ts)
            except _CannotTell as error:
                log.warning("slack sink: cannot read run %s's thread (%s); may post twice", self._run_id, error)
                return {}
        return self._posted

    def _notice_key(self, event: Notice) -> str:
        """Same text at the same point of the run: the same notice, unless this process saw it already."""
        digest = hashlib.sha256(event.text.encode()).hexdigest()[:12]
        key = f"notice:{_progress(event.snapshot)}:{digest}"
        self._notices[key] += 1
        repeat = self._notices[key]
        return key if repeat == 1 else f"{key}:{repeat}"

    async def _on_approval_requested(self, event: ApprovalRequested) -> None:
        message = blocks.approval_request(
            request_id=event.request_id,
            run_id=event.snapshot.run.id,
            kind=event.kind,
            fingerprint=event.fingerprint,
            requester=event.requester,
            approvers=event.approvers,
            expires_at=event.expires_at,
            action=event.action,
            facts=event.facts,
        )
        key = f"approval:{event.request_id}"
        ts = await self._reply(event.snapshot, message, key=key, what="approval request")
        if ts is not None and self._thread is not None:
            self._sink._store.approvals.merge_meta(
                event.request_id, {"slack_ts": ts, "slack_channel": self._thread.channel, "action": event.action}
            )

    async def _on_approval_decided(self, event: ApprovalDecided) -> None:
        request = self._sink._store.approvals.get(event.request_id)
        if request is None or not request.meta.get("slack_ts"):
            log.warning("slack sink: no message recorded for approval %s", event.request_id)
            return
        channel = request.meta.get("slack_channel") or (self._thread.channel if self._thread else None)
        if channel is None:
            return
        message = blocks.approval_decided(
            request_id=event.request_id,
            run_id=event.snapshot.run.id,
            kind=request.kind,
            action=str(request.meta.get("action") or ""),
            decision=event.decision,
            user=event.user,
            at=event.at,
        )
        ts = request.meta["slack_ts"]
        await self._sink._call(
            "update approval message",
            lambda: self._sink._client.chat_update(channel=channel, ts=ts, **message.as_kwargs()),
        )


def message_metadata(run_id: str, key: str) -> dict[str, Any]:
    """The Slack message metadata the sink tags a run's message with."""
    return {"event_type": MESSAGE_EVENT_TYPE, "event_payload": {"run_id": run_id, "key": key}}


def message_tag(message: dict[str, Any]) -> tuple[str, str] | None:
    """(run id, key) of a message the sink posted, from a history or replies item read with its metadata."""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != MESSAGE_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict) or not payload.get("run_id") or not payload.get("key"):
        return None
    return str(payload["run_id"]), str(payload["key"])


def report_key(snapshot: RunSnapshot, step_idx: int) -> str:
    """A step reports once per attempt (a step checked again after the plan changed reports again)."""
    attempts = next((step.attempts for step in snapshot.steps if step.idx == step_idx), 0)
    return f"report:{step_idx}:{attempts}"


def _progress(snapshot: RunSnapshot) -> int:
    """How far the run has got, the same in every process: step attempts only ever grow."""
    return sum(step.attempts for step in snapshot.steps)


class _CannotTell(Exception):
    """Slack could not say whether a message is there (reading back failed for now)."""


def _recorded_thread(meta: dict[str, Any] | None) -> Thread | None:
    slack = (meta or {}).get("slack")
    if isinstance(slack, dict) and slack.get("channel") and slack.get("ts"):
        return Thread(channel=slack["channel"], ts=slack["ts"])
    return None


def _describe(error: BaseException) -> str:
    return type(error).__name__ + (f": {error}" if str(error) else "")
