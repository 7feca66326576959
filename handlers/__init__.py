"""Bolt listeners. `register` wires them onto an app; each module handles one concern."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.approver_resolver import ApproverResolver
    from bot.config import Settings
    from bot.engine import Engine


def register(app: AsyncApp, engine: Engine, settings: Settings, approvers: ApproverResolver) -> None:
    # Imported here so that `handlers.ids` stays importable from `bot.blocks` without a cycle.
    from handlers import app_home, approval_buttons, commands, modals
    from handlers.after_ack import AfterAck

    after_ack = AfterAck()
    commands.register(app, engine, settings, approvers, after_ack)
    modals.register(app, engine, settings, approvers, after_ack)
    approval_buttons.register(app, engine, after_ack)
    app_home.register(app, engine, after_ack)
