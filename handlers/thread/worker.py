"""One run's worker: posts the run's messages in its thread, in order, and coalesces its checklist edits.

Checklist edits are sent at most every `edit_interval` seconds; the latest state is always the one sent, and the final
state is always flushed before the summary. An edit that timed out may still be applied by Slack later, over a newer
one (Slack has no conditional update): after such a timeout the worker sends the newest checklist once more, one client
timeout later. A worker that did not see its run start (a process restarted mid-run) reads the thread once before its
first post, so that what the earlier process posted is not posted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.workflow.events import (
    ApprovalDecided,
    ApprovalRequested,
    DetachedAlert,
    Event,
    Notice,
    RunFinished,
    RunSnapshot,
    RunStarted,
    StepChanged,
    StepReport,
)
from handlers.messages.approvals import approval_decided, approval_request, approve_confirmation
from handlers.messages.formatting import Message
from handlers.messages.runs import detached_alert, notice, run_parent, run_summary, step_report
from handlers.thread.lost_channel import LostChannel
from handlers.thread.metadata import (
    PARENT_KEY,
    SUMMARY_KEY,
    CannotTell,
    Thread,
    message_metadata,
    progress,
    recorded_thread,
    report_key,
)

if TYPE_CHECKING:
    from handlers.thread.sink import SlackThreadSink

log = logging.getLogger(__name__)

# How many times one run's checklist is sent again after edits whose fate was unknown (see the module docstring).
MAX_RESENDS = 3

# Read back from this long before the first attempt: Slack's clock and ours may differ a little.
READ_BACK_MARGIN_SECONDS = 300.0


class RunWorker:
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
        self._lost = LostChannel(sink, run_id)  # what to do if the bot can no longer post in the run's channel
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
                message = step_report(event.snapshot, event.step_idx, event.lines, event.aws_calls)
                key = report_key(event.snapshot, event.step_idx)
                await self._reply(event.snapshot, message, key=key, what="step report")
            elif isinstance(event, Notice):
                key = self._notice_key(event)
                message = notice(event.text)
                await self._reply(event.snapshot, message, key=key, what="notice", broadcast=event.broadcast)
            elif isinstance(event, DetachedAlert):
                message = detached_alert(
                    event.snapshot.run, event.number, event.proxies, event.approvers, event.next_in
                )
                # Numbered across restarts by the runner: one message per alert, however often it is retried.
                key = f"alert:{event.number}"
                await self._reply(event.snapshot, message, key=key, what="detached alert", broadcast=True)
            elif isinstance(event, ApprovalRequested):
                await self._on_approval_requested(event)
            elif isinstance(event, ApprovalDecided):
                await self._on_approval_decided(event)
            elif isinstance(event, RunFinished):
                await self._on_finished(event)
            await self._lost.after(event)
        except Exception:
            log.exception("slack sink: could not render %s for run %s", type(event).__name__, self._run_id)

    # ------------------------------------------------------------ the parent message

    async def _ensure_thread(self, snapshot: RunSnapshot) -> tuple[Thread | None, bool]:
        """The run's thread: remembered, recorded in the run's meta (after a restart), found in the channel (an
        earlier process posted it but stopped before recording it), or posted now.

        The flag is True when the parent was posted now, showing `snapshot` already."""
        if self._thread is not None:
            return self._thread, False
        recorded = recorded_thread(snapshot.run.meta)
        if recorded is None:
            stored = self._sink._store.runs.get(self._run_id)
            recorded = recorded_thread(stored.meta) if stored else None
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
        except CannotTell as error:
            log.warning("slack sink: cannot look for run %s's thread (%s); starting one", self._run_id, error)
            return None
        ts = found.get(PARENT_KEY)
        return Thread(channel=channel, ts=ts) if ts else None

    async def _post_parent(self, channel: str, snapshot: RunSnapshot) -> Thread | None:
        message = run_parent(snapshot, links=self._sink._console_links(snapshot.run))
        since = time.time() - READ_BACK_MARGIN_SECONDS

        async def find_landed() -> dict[str, Any] | None:
            found = await self._sink._read_back(self._run_id, channel, oldest=since)
            return {"channel": channel, "ts": found[PARENT_KEY]} if PARENT_KEY in found else None

        response = await self._call(
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
        message = run_parent(snapshot, links=self._sink._console_links(snapshot.run))
        await self._call(
            "update parent message",
            lambda: self._sink._client.chat_update(channel=thread.channel, ts=thread.ts, **message.as_kwargs()),
            on_unknown_fate=self._resend_later,
        )

    def _call(self, what: str, call: Callable[[], Awaitable[Any]], **kwargs: Any) -> Awaitable[Any | None]:
        """`SlackThreadSink._call`, with Slack's final refusals reported to the run's `LostChannel`."""
        return self._sink._call(what, call, on_refused=self._lost.refused, **kwargs)

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
        message = notice("Picked up again after a restart; carrying on in this thread.")
        key = f"resumed:{progress(event.snapshot)}"
        await self._reply(event.snapshot, message, key=key, what="resume notice")

    async def _on_finished(self, event: RunFinished) -> None:
        self._latest = event.snapshot
        wait = self._last_edit + self._sink._edit_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # keeps to about one edit a second even for the last one
        await self._flush_parent()
        summary = run_summary(event.snapshot, event.status, event.error, event.windows)
        await self._reply(event.snapshot, summary, key=SUMMARY_KEY, what="summary", broadcast=True)
        self._finished = True

    # ------------------------------------------------------------ thread replies

    async def _reply(
        self, snapshot: RunSnapshot, message: Message, *, key: str, what: str, broadcast: bool = False
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

        response = await self._call(
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
            except CannotTell as error:
                log.warning("slack sink: cannot read run %s's thread (%s); may post twice", self._run_id, error)
                return {}
        return self._posted

    def _notice_key(self, event: Notice) -> str:
        """Same text at the same point of the run: the same notice, unless this process saw it already."""
        digest = hashlib.sha256(event.text.encode()).hexdigest()[:12]
        key = f"notice:{progress(event.snapshot)}:{digest}"
        self._notices[key] += 1
        repeat = self._notices[key]
        return key if repeat == 1 else f"{key}:{repeat}"

    async def _on_approval_requested(self, event: ApprovalRequested) -> None:
        message = approval_request(
            request_id=event.request_id,
            run_id=event.snapshot.run.id,
            kind=event.kind,
            fingerprint=event.fingerprint,
            requester=event.requester,
            approvers=event.approvers,
            expires_at=event.expires_at,
            action=event.action,
            facts=event.facts,
            gates=event.gates,
            rehearsal=event.rehearsal,
            confirm=approve_confirmation(event.kind, event.snapshot.run),
            links=self._sink._console_links(event.snapshot.run),
        )
        key = f"approval:{event.request_id}"
        self._lost.watch()
        ts = await self._reply(event.snapshot, message, key=key, what="approval request")
        if ts is None:
            await self._lost.approval_not_shown(event)
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
        message = approval_decided(
            request_id=event.request_id,
            run_id=event.snapshot.run.id,
            kind=request.kind,
            action=str(request.meta.get("action") or ""),
            decision=event.decision,
            user=event.user,
            at=event.at,
            reason=event.reason,
        )
        ts = request.meta["slack_ts"]
        await self._call(
            "update approval message",
            lambda: self._sink._client.chat_update(channel=channel, ts=ts, **message.as_kwargs()),
        )
