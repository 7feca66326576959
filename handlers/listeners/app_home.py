"""The App Home tab: active and recent runs, each linking to its thread."""

from __future__ import annotations

import logging
import re

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.workflow.engine import Engine
from handlers.after_ack import AfterAck
from handlers.ids import HomeActions
from handlers.messages.home import home_view

log = logging.getLogger(__name__)

RECENT_RUNS = 15


def register(app: AsyncApp, engine: Engine, after_ack: AfterAck) -> None:
    async def publish_home(event: dict, client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            after_ack.spawn(_publish(event, client))

    async def _publish(event: dict, client: AsyncWebClient) -> None:
        runs = engine.runs(limit=50)
        active = [run for run in runs if run.is_active]
        recent = [run for run in runs if not run.is_active][:RECENT_RUNS]
        try:
            await client.views_publish(user_id=event["user"], view=home_view(active, recent))
        except SlackApiError as error:
            log.warning("views.publish failed: %s", error.response.get("error"))

    async def acknowledge_link(ack: AsyncAck) -> None:
        await ack()  # a link button still sends a click; Slack opens the URL itself

    app.event("app_home_opened")(publish_home)
    app.action(re.compile(f"^{re.escape(HomeActions.open_thread.value)}"))(acknowledge_link)
