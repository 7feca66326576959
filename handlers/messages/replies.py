"""Generic command replies: an error with its fix, and `/bluegreen help`."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from bot.gates.model import GateResult
from handlers.messages.formatting import Message, context, section
from handlers.messages.gates import gates_section
from handlers.parsing import SYNTAX


def error(message: str, fix: str | None = None, *, gates: Sequence[GateResult] = ()) -> Message:
    """An error and its fix; with `gates` (a refused `create`), the table of every gate below it."""
    text = f"{message} {fix}" if fix else message
    body = f":warning: {message}" + (f"\n{fix}" if fix else "")
    blocks: list[Block] = [section(body)]
    table = gates_section("Prerequisites:", gates)
    if table:
        blocks.append(table)
    return Message(text=text, blocks=blocks)


def help_message() -> Message:
    descriptions = {
        "help": "this message",
        "status": "proxies, targets and their health, engine version, any blue/green deployment",
        "plan": "what `create` would do, step by step, without changing anything",
        "create": "create a blue/green deployment (no arguments: a form)",
        "upgrade": "create a blue/green deployment on a new engine version",
        "switchover": "switch to green after a second person approves; `--fix-drift` then gives the new primary"
        " old blue's deletion protection and tags",
        "cleanup": "delete the finished deployment; `--delete-old` also deletes the old databases (approval)",
        "rollback": "undo a deployment that has not switched over",
        "rehearse": "the whole cycle on a disposable clone behind its own proxy, then delete it (shows the cost"
        " estimate first; environments with `rehearsals = true`)",
        "runs": "active and recent runs",
        "cancel": "stop a run safely; `--abandon-proxy` stops a compensating run retrying a proxy you fixed by hand",
    }
    lines = [f"`/bluegreen {syntax.usage}`: {descriptions[name]}" for name, syntax in SYNTAX.items()]
    blocks: list[Block] = [
        section("*Blue/green deployments for databases behind RDS Proxy*\n" + "\n".join(lines)),
        context("`<db>` is a DB instance or Aurora cluster identifier. Runs post their progress in a thread here."),
    ]
    return Message(text="/bluegreen commands: " + ", ".join(SYNTAX), blocks=blocks)
