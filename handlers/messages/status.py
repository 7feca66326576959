"""Replies to `/bluegreen status` and `/bluegreen plan`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block, SectionBlock

from handlers.messages.formatting import (
    KIND_TITLES,
    MAX_MESSAGE_BLOCKS,
    Message,
    cap_blocks,
    code,
    context,
    escape,
    header,
    section,
    thread_link,
)
from handlers.messages.gates import gates_section

if TYPE_CHECKING:
    from bot.planning.plan import Plan
    from bot.workflow.engine import DatabaseStatus


def status_message(status: DatabaseStatus) -> Message:
    database = status.database
    lines = [
        f"*Engine:* {database.engine} {database.engine_version} · *status:* {database.status} · *{database.kind}*",
    ]
    if database.members:
        lines.append("*Members:* " + ", ".join(f"`{member}`" for member in database.members))
    if status.registrations:
        lines.append("*Proxies:* " + ", ".join(f"`{item.label}`" for item in status.registrations))
    else:
        lines.append("*Proxies:* none: this database is not a target of any RDS Proxy.")
    blocks: list[Block] = [header(f"{database.identifier}"), section("\n".join(lines))]
    if status.targets:
        target_lines = []
        for target in status.targets:
            icon = ":large_green_circle:" if target.available else ":red_circle:"
            who = target.rds_resource_id or target.tracked_cluster or target.endpoint or "?"
            reason = f" ({escape(target.reason)})" if target.reason else ""
            role = f" {target.role}" if target.role else ""
            target_lines.append(
                f"{icon} `{target.proxy}/{target.target_group}` → `{who}`{role}: {target.state}{reason}"
            )
        blocks.append(section("*Target health:*\n" + "\n".join(target_lines)))
    if status.deployment:
        deployment = status.deployment
        detail = f" ({escape(deployment.status_details)})" if deployment.status_details else ""
        green = f", green `{deployment.target_arn.rsplit(':', 1)[-1]}`" if deployment.target_arn else ""
        blocks.append(
            section(
                f"*Blue/green deployment:* `{deployment.identifier}` ({escape(deployment.name)}): "
                f"*{deployment.status}*{detail}{green}"
            )
        )
    else:
        blocks.append(section("*Blue/green deployment:* none"))
    if status.active_run:
        blocks.append(
            context(
                f"Active run: {thread_link(status.active_run)} ({status.active_run.kind}, "
                f"{status.active_run.status.replace('_', ' ')})"
            )
        )
    deployment_text = status.deployment.status if status.deployment else "none"
    text = (
        f"{database.identifier}: {database.engine} {database.engine_version}, {database.status}; "
        f"blue/green deployment: {deployment_text}"
    )
    return Message(text=text, blocks=cap_blocks(blocks))


def rehearsal_section(lines: Sequence[str], *, block_id: str | None = None) -> SectionBlock:
    """The latest rehearsal of the database and version (`bot.workflow.rehearsal_history`), for `plan` and the
    approval request."""
    body = "\n".join(escape(line) for line in lines)
    return section(f":test_tube: *Rehearsal:* {body}", block_id=block_id)


def plan_message(plan: Plan) -> Message:
    strategy = f" · strategy *{plan.strategy}*" if plan.strategy else ""
    blocks: list[Block] = [
        header(f"Plan: {KIND_TITLES.get(plan.kind, plan.kind)} for {plan.database}"),
        section(f"{escape(plan.reason)}{strategy}" if plan.reason else f"Plan{strategy}"),
    ]
    if plan.facts:
        blocks.append(
            section("*Observed:*\n" + "\n".join(f"• *{escape(k)}*: {escape(str(v))}" for k, v in plan.facts.items()))
        )
    if plan.detached_estimate:
        blocks.append(section(f":stopwatch: *Proxy detached window:* {escape(plan.detached_estimate)}"))
    prerequisites = gates_section("Prerequisites:", plan.gates)
    if prerequisites:
        blocks.append(prerequisites)
    if plan.rehearsal:
        blocks.append(rehearsal_section(plan.rehearsal))
    budget = MAX_MESSAGE_BLOCKS - len(blocks) - 1
    for number, step in enumerate(plan.steps[:budget], start=1):
        warning = " :warning: _takes a proxy target away_" if step.disruptive else ""
        body = f"*{number}. {escape(step.title)}*{warning}"
        if step.commands:
            body += "\n" + code(step.commands)
        blocks.append(section(body))
    if len(plan.steps) > budget:
        blocks.append(context(f"… {len(plan.steps) - budget} more steps."))
    else:
        blocks.append(context(f"Nothing was changed. This is what `{plan.kind}` would do now."))
    text = f"Plan for {plan.kind} of {plan.database}: {len(plan.steps)} steps" + (
        f", strategy {plan.strategy}" if plan.strategy else ""
    )
    return Message(text=text, blocks=cap_blocks(blocks))
