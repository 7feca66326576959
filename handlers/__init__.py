"""The Slack front end: everything that knows Slack. `register` wires the listeners onto a Bolt app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.config import Settings
from bot.workflow.engine import Engine
from handlers.after_ack import AfterAck
from handlers.approvers import ApproverResolver
from handlers.channel_access import ChannelAccess
from handlers.listeners import app_home, approval_buttons, commands, modals, rehearsal_buttons, usergroups


def register(
    app: AsyncApp, engine: Engine, settings: Settings, approvers: ApproverResolver, after_ack: AfterAck | None = None
) -> None:
    after_ack = after_ack or AfterAck()
    channel_access = ChannelAccess(app.client)
    commands.register(app, engine, settings, approvers, after_ack, channel_access=channel_access)
    modals.register(app, engine, settings, approvers, after_ack, channel_access=channel_access)
    approval_buttons.register(app, engine, after_ack)
    rehearsal_buttons.register(app, engine, settings, approvers, after_ack, channel_access=channel_access)
    app_home.register(app, engine, after_ack)
    usergroups.register(app, approvers)
