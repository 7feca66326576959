"""One run's reaction to losing its channel: the bot was removed from it, or it was archived or deleted, so Slack
answers `not_in_channel`, `channel_not_found` or `is_archived` to the run's posts.

The run itself goes on (it does not depend on Slack) up to its next approval. An approval request that could not be
posted for that reason is withdrawn through the engine (`ApprovalDelivery`): it can no longer be approved and the run
stops at its gate, so nothing is switched over or deleted unseen. The requester is told by direct message, once when
the channel is lost, once if an approval is withdrawn, and gets the run's summary when it ends.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.workflow.events import ApprovalRequested, Event, RunFinished
from handlers.channel_access import CHANNEL_LOST_ERRORS
from handlers.messages.lost_channel import approval_withdrawn, channel_lost, withdrawal_reason
from handlers.messages.runs import run_summary

if TYPE_CHECKING:
    from handlers.thread.sink import SlackThreadSink
    from storage import RunRecord

log = logging.getLogger(__name__)


class LostChannel:
    """Watches one run's Slack refusals; the worker reports each refusal and asks after each event."""

    def __init__(self, sink: SlackThreadSink, run_id: str) -> None:
        self._sink = sink
        self._run_id = run_id
        self.code: str | None = None  # the latest channel-lost error any of the run's calls got
        self._watched: str | None = None  # the same, since `watch()`
        self._told_lost = False

    def refused(self, code: str) -> None:
        """A call for this run failed for good with Slack error `code`."""
        if code in CHANNEL_LOST_ERRORS:
            self.code = self._watched = code

    def watch(self) -> None:
        """Start noting channel-lost refusals afresh (before posting an approval request)."""
        self._watched = None

    async def approval_not_shown(self, event: ApprovalRequested) -> None:
        """The approval request of `event` could not be posted: withdraw it if the channel is why."""
        code = self._watched
        if code is None:
            return  # some other failure, already logged; the request stays pending until it expires
        run = event.snapshot.run
        delivery = self._sink._approvals
        if delivery is None:
            log.error(
                "slack sink: approval %s of run %s could not be shown and no engine takes it back",
                event.request_id,
                run.id,
            )
            return
        if await delivery.withdraw_approval(event.request_id, withdrawal_reason(run, code)):
            log.warning(
                "slack sink: withdrew approval %s of run %s: channel %s (%s)",
                event.request_id,
                run.id,
                run.channel,
                code,
            )
            await self._tell_lost(run)  # first what happened to the channel, then what it means for this run
            await self._sink._direct_message(run.requester, approval_withdrawn(run, event.request_id, code))

    async def after(self, event: Event) -> None:
        """Tell the requester what they need to know after `event` was handled."""
        if self.code is None:
            return
        run = event.snapshot.run
        await self._tell_lost(run)
        if isinstance(event, RunFinished):
            summary = run_summary(event.snapshot, event.status, event.error, event.windows)
            await self._sink._direct_message(run.requester, summary)

    async def _tell_lost(self, run: RunRecord) -> None:
        if self._told_lost or self.code is None:
            return
        self._told_lost = True
        await self._sink._direct_message(run.requester, channel_lost(run, self.code))
