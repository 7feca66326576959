"""Generic command replies: an error with its fix, and `/bluegreen help`."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from handlers.messages.formatting import Message, context, section
from handlers.parsing import SYNTAX


def error(message: str, fix: str | None = None) -> Message:
    text = f"{message} {fix}" if fix else message
    body = f":warning: {message}" + (f"\n{fix}" if fix else "")
    return Message(text=text, blocks=[section(body)])


def help_message() -> Message:
    descriptions = {
        "help": "this message",
        "status": "proxies, targets and their health, engine version, any blue/green deployment",
        "plan": "what `create` would do, step by step, without changing anything",
        "create": "create a blue/green deployment (no arguments: a form)",
        "upgrade": "create a blue/green deployment on a new engine version",
        "switchover": "switch to green after a second person approves",
        "cleanup": "delete the finished deployment; `--delete-old` also deletes the old databases (approval)",
        "rollback": "undo a deployment that has not switched over",
        "runs": "active and recent runs",
        "cancel": "stop a run safely; `--abandon-proxy` stops a compensating run retrying a proxy you fixed by hand",
    }
    lines = [f"`/bluegreen {syntax.usage}`: {descriptions[name]}" for name, syntax in SYNTAX.items()]
    blocks: list[Block] = [
        section("*Blue/green deployments for databases behind RDS Proxy*\n" + "\n".join(lines)),
        context("`<db>` is a DB instance or Aurora cluster identifier. Runs post their progress in a thread here."),
    ]
    return Message(text="/bluegreen commands: " + ", ".join(SYNTAX), blocks=blocks)
