"""The Slack front end: everything that knows Slack. `register` wires the listeners onto a Bolt app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.config import Settings
from bot.workflow.engine import Engine
from handlers.after_ack import AfterAck
from handlers.approvers import ApproverResolver
from handlers.listeners import app_home, approval_buttons, commands, modals


def register(app: AsyncApp, engine: Engine, settings: Settings, approvers: ApproverResolver) -> None:
    after_ack = AfterAck()
    commands.register(app, engine, settings, approvers, after_ack)
    modals.register(app, engine, settings, approvers, after_ack)
    approval_buttons.register(app, engine, after_ack)
    app_home.register(app, engine, after_ack)
