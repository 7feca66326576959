"""`subteam_members_changed`: a user group's members changed, so its cached membership is dropped at once.

Without this, someone removed from an approver or operator group would keep their rights until the cache lifetime
(`handlers.approvers.CACHE_TTL`) ran out. The event carries only the change, so the group is read again on next use.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from handlers.approvers import ApproverResolver

log = logging.getLogger(__name__)


def register(app: AsyncApp, approvers: ApproverResolver) -> None:
    async def refresh_group(event: dict) -> None:
        group = event.get("subteam_id")
        if isinstance(group, str) and group:
            approvers.invalidate(group)
            log.info(
                "user group %s changed (%s added, %s removed); its membership will be read again",
                group,
                event.get("added_users_count", "?"),
                event.get("removed_users_count", "?"),
            )
        else:
            approvers.invalidate()  # an event we cannot place: forget every group rather than trust one

    app.event("subteam_members_changed")(refresh_group)
