"""The App Home tab: active and recent runs, each with a link to its thread."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block, ButtonElement, DividerBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from handlers.ids import HomeActions, HomeBlockIds
from handlers.messages.formatting import MAX_VIEW_BLOCKS, cap_blocks, context, header, section, truncate
from handlers.messages.runs import run_line

if TYPE_CHECKING:
    from storage import RunRecord


def home_view(active: Sequence[RunRecord], recent: Sequence[RunRecord], *, now: float | None = None) -> View:
    now = time.time() if now is None else now
    blocks: list[Block] = [header("Blue/green deployments")]
    for title, group, block_id in (
        ("Active runs", active, HomeBlockIds.active),
        ("Recent runs", recent, HomeBlockIds.recent),
    ):
        blocks.append(section(f"*{title}*", block_id=block_id))
        if not group:
            blocks.append(context("none"))
        for run in group:
            blocks.append(_home_run(run, now))
        blocks.append(DividerBlock())
    blocks.append(context("Start a run with `/bluegreen create <db>` in your ops channel; `/bluegreen help` for more."))
    return View(type="home", blocks=cap_blocks(blocks, MAX_VIEW_BLOCKS))


def _home_run(run: RunRecord, now: float) -> SectionBlock:
    slack = run.meta.get("slack") if isinstance(run.meta, dict) else None
    permalink = slack.get("permalink") if isinstance(slack, dict) else None
    accessory = None
    if permalink:
        accessory = ButtonElement(text="Open thread", url=permalink, action_id=f"{HomeActions.open_thread}-{run.id}")
    return SectionBlock(text=MarkdownTextObject(text=truncate(run_line(run, now))), accessory=accessory)
