"""A run's messages: the thread parent with its live checklist, step reports, notices and the summary, and the
replies to `/bluegreen` commands about runs (accepted, cancelling, the list of runs)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block

from bot.workflow.events import AwsCall, DetachedProxy, RunSnapshot
from handlers.ids import RunBlockIds
from handlers.messages.formatting import (
    KIND_TITLES,
    MAX_MESSAGE_BLOCKS,
    RUN_ICONS,
    SECTION_LIMIT,
    STEP_ICONS,
    Message,
    cap_blocks,
    code,
    context,
    duration,
    escape,
    header,
    mention,
    section,
    thread_link,
    truncate,
)

if TYPE_CHECKING:
    from storage import RunRecord, StepRecord


def _step_duration(step: StepRecord, now: float) -> str:
    if step.started_at is None:
        return ""
    end = step.ended_at if step.ended_at is not None else now
    return duration(max(0.0, end - step.started_at))


def _step_line(step: StepRecord, now: float) -> str:
    icon = STEP_ICONS.get(step.status, ":grey_question:")
    line = f"{icon} {escape(step.title)}"
    took = _step_duration(step, now)
    if step.status == "running":
        line = f"{icon} *{escape(step.title)}*" + (f"  _running {took}_" if took else "")
    elif took and step.status in {"done", "failed", "cancelled"}:
        line += f"  _{took}_"
    if step.status == "skipped":
        line += "  _skipped_"
    if step.attempts > 1:
        line += f"  _(attempt {step.attempts})_"
    if step.status == "failed" and step.detail:
        line += f"\n      {escape(truncate(step.detail, 300))}"
    return line


def checklist_sections(steps: Sequence[StepRecord], *, now: float, max_blocks: int) -> list[Block]:
    """The steps as a checklist in as few sections as fit; very long lists keep the current part in view."""
    lines = [_step_line(step, now) for step in steps]
    chunks: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > SECTION_LIMIT - 100 and current:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    if len(chunks) > max_blocks:
        # Collapse the oldest chunks into one line; they are finished steps the thread already details.
        kept = chunks[len(chunks) - max_blocks + 1 :]
        hidden_lines = sum(chunk.count("\n") + 1 for chunk in chunks[: len(chunks) - max_blocks + 1])
        chunks = [f"_… {hidden_lines} earlier steps, see the thread_", *kept]
    return [
        section(chunk, block_id=f"{RunBlockIds.checklist}-{number}" if number else RunBlockIds.checklist)
        for number, chunk in enumerate(chunks)
    ]


# ---------------------------------------------------------------- run thread


def run_title(run: RunRecord) -> str:
    return f"{KIND_TITLES.get(run.kind, run.kind.title())}: {run.database}"


def run_parent(snapshot: RunSnapshot, *, now: float | None = None, links: str | None = None) -> Message:
    """The run's parent message: header, who/what, `links` (AWS console, `console_links`), the live checklist."""
    now = time.time() if now is None else now
    run = snapshot.run
    status_icon = RUN_ICONS.get(run.status, ":grey_question:")
    status = run.status.replace("_", " ")
    done = sum(1 for step in snapshot.steps if step.status in {"done", "skipped"})
    facts = [
        f"{status_icon} *{status}*",
        f"run `{run.id}`",
        f"database `{run.database}`",
        f"requested by {mention(run.requester)}",
    ]
    if run.environment and run.environment != "default":
        facts.append(f"environment `{run.environment}`")
    if run.strategy:
        facts.append(f"strategy `{run.strategy}`")
    blocks: list[Block] = [header(run_title(run), block_id=RunBlockIds.header), context(" · ".join(facts))]
    if links:
        blocks.append(context(links))
    blocks += checklist_sections(snapshot.steps, now=now, max_blocks=MAX_MESSAGE_BLOCKS - 4)
    footer = f"{done}/{len(snapshot.steps)} steps complete" if snapshot.steps else "planning…"
    if run.error and not run.is_active:
        footer += f" · {escape(truncate(run.error, 500))}"
    blocks.append(context(footer, block_id=RunBlockIds.footer))
    text = f"{run_title(run)} ({run.id}): {status}, {done}/{len(snapshot.steps)} steps complete"
    return Message(text=text, blocks=cap_blocks(blocks))


def step_report(snapshot: RunSnapshot, step_idx: int, lines: Sequence[str], aws_calls: Sequence[AwsCall]) -> Message:
    """A thread reply with what a step observed and each AWS call it made (as an `aws rds` command)."""
    step = next((item for item in snapshot.steps if item.idx == step_idx), None)
    title = step.title if step else f"Step {step_idx + 1}"
    icon = STEP_ICONS.get(step.status, "") if step else ""
    blocks: list[Block] = [section(f"{icon} *{escape(title)}*".strip())]
    if lines:
        blocks.append(section("\n".join(f"• {escape(line)}" for line in lines)))
    for call in aws_calls[: MAX_MESSAGE_BLOCKS - 4]:
        outcome = ":white_check_mark:" if call.outcome == "ok" else f":x: `{escape(call.outcome)}`"
        request = f" · request id `{call.request_id}`" if call.request_id else ""
        blocks.append(section(f"{outcome} `{call.action}`{request}\n{code([call.command])}"))
    if len(aws_calls) > MAX_MESSAGE_BLOCKS - 4:
        blocks.append(context(f"… {len(aws_calls) - (MAX_MESSAGE_BLOCKS - 4)} more AWS calls in the audit log."))
    text = f"{title}: " + ("; ".join(lines) if lines else (step.status if step else "report"))
    return Message(text=truncate(text, 3000), blocks=cap_blocks(blocks))


def notice(text: str) -> Message:
    return Message(text=text, blocks=[section(f":information_source: {escape(text)}")])


def detached_alert(
    run: RunRecord,
    number: int,
    proxies: Sequence[DetachedProxy],
    approvers: Sequence[str],
    next_in: float,
    *,
    now: float | None = None,
) -> Message:
    """The alert re-posted (broadcast) while compensation cannot give proxies their target back: which proxy, for
    how long, what AWS says, the command that fixes it by hand, and how to stop the bot once someone has."""
    now = time.time() if now is None else now
    who = " ".join(mention(approver) for approver in approvers) or "(no approvers configured)"
    names = ", ".join(f"`{escape(p.label)}`" for p in proxies)
    longest = max((now - p.detached_at for p in proxies), default=0.0)
    blocks: list[Block] = [
        section(
            f":rotating_light: *{names} {'has' if len(proxies) == 1 else 'have'} had no target for"
            f" {duration(max(0.0, longest))}*: applications behind {'it' if len(proxies) == 1 else 'them'} are cut"
            f" off. {who}"
        )
    ]
    for proxy in proxies[: MAX_MESSAGE_BLOCKS - 3]:
        latest = f" Latest: {escape(truncate(proxy.last_error, 500))}." if proxy.last_error else ""
        blocks.append(
            section(
                f"`{escape(proxy.label)}`: the bot keeps registering `{escape(proxy.database)}` with it"
                f" ({proxy.attempts} attempts so far).{latest} To register it by hand:\n{code([proxy.command])}"
            )
        )
    blocks.append(
        context(
            f"Run `{run.id}` ({run.kind} of `{escape(run.database)}`), alert {number}; next in {duration(next_in)}"
            " unless the proxy has its target again. Fixed it yourself? "
            f"`/bluegreen cancel {run.id} --abandon-proxy` (or `python -m bot cancel {run.id} --abandon-proxy`)."
        )
    )
    plain_who = " ".join(mention(approver) for approver in approvers)
    text = (
        f"ALERT {number}: {', '.join(p.label for p in proxies)} still without a target (run {run.id},"
        f" {run.kind} of {run.database}); the bot keeps registering it. {plain_who}"
    ).strip()
    return Message(text=text, blocks=cap_blocks(blocks))


def run_summary(
    snapshot: RunSnapshot, status: str, error: str | None, windows: Mapping[str, Mapping[str, float]]
) -> Message:
    """The final broadcast reply: outcome, total time, and per proxy how long it had no available target."""
    run = snapshot.run
    icon = RUN_ICONS.get(status, ":grey_question:")
    end = run.finished_at or time.time()
    lines = [f"{icon} *{run_title(run)}* `{run.id}` *{status}* in {duration(max(0.0, end - run.created_at))}."]
    if error:
        lines.append(f"*Error:* {escape(truncate(error, 1500))}")
    if windows:
        lines.append("*Time each proxy had no available target:*")
        for proxy, window in windows.items():
            seconds = window.get("seconds", 0.0)
            overhead = window.get("overhead_seconds")
            extra = f" (of which {duration(overhead)} bot overhead)" if overhead else ""
            lines.append(f"• `{escape(proxy)}`: {duration(seconds)}{extra}")
    elif status == "succeeded":
        lines.append("No proxy lost its target.")
    counts: dict[str, int] = {}
    for step in snapshot.steps:
        counts[step.status] = counts.get(step.status, 0) + 1
    blocks: list[Block] = [section("\n".join(lines))]
    if counts:
        blocks.append(context(" · ".join(f"{count} {name}" for name, count in sorted(counts.items()))))
    plain_windows = ", ".join(f"{proxy} {duration(w.get('seconds', 0.0))}" for proxy, w in windows.items())
    text = f"Run {run.id} ({run.kind} {run.database}) {status}" + (f"; no target: {plain_windows}" if windows else "")
    return Message(text=text, blocks=blocks)


# ---------------------------------------------------------------- command replies


def run_accepted(run: RunRecord) -> Message:
    where = "the thread below" if run.channel else "`/bluegreen runs`"
    text = f"Started {run.kind} of {run.database} as run {run.id}; follow it in {where}."
    return Message(
        text=text,
        blocks=[section(f":rocket: Started *{run.kind}* of `{run.database}`: run `{run.id}`. Follow it in {where}.")],
    )


def run_cancelling(run: RunRecord) -> Message:
    blocks: list[Block] = [
        section(
            f":no_entry_sign: Asked run `{run.id}` ({run.kind} of `{run.database}`) to stop safely; "
            "a detached proxy is re-attached first."
        )
    ]
    if run.status == "compensating":
        blocks.append(
            context(
                "It is compensating: it ends once every proxy it detached has its target again. If you have fixed "
                f"them yourself: `/bluegreen cancel {run.id} --abandon-proxy`."
            )
        )
    return Message(text=f"Cancelling run {run.id}", blocks=blocks)


def proxies_abandoned(run: RunRecord) -> Message:
    """The reply to `cancel <run> --abandon-proxy`: what was abandoned, and the command that registers it by hand."""
    request = run.meta.get("abandon_requested") or {}
    proxies: dict[str, str] = request.get("proxies") or {}
    names = ", ".join(f"`{escape(label)}`" for label in proxies)
    text = (
        f"Abandoned {', '.join(proxies)} of run {run.id}: the bot stops registering them. If one still has no target,"
        " register it by hand: " + "; ".join(proxies.values())
    )
    blocks: list[Block] = [
        section(
            f":warning: Abandoned {names} of run `{run.id}` ({run.kind} of `{escape(run.database)}`): the bot stops"
            " registering them and no longer watches them; the run ends as it would have. Recorded in the audit log."
        ),
        section("If a proxy still has no target, register it by hand:\n" + code(proxies.values())),
    ]
    return Message(text=truncate(text, 3000), blocks=blocks)


def run_line(run: RunRecord, now: float) -> str:
    icon = RUN_ICONS.get(run.status, ":grey_question:")
    age = duration(max(0.0, now - run.created_at))
    return (
        f"{icon} {thread_link(run, f'`{run.id}`')} *{run.kind}* `{run.database}` · "
        f"{run.status.replace('_', ' ')} · {mention(run.requester)} · {age} ago"
    )


def runs_message(runs: Sequence[RunRecord], *, now: float | None = None) -> Message:
    now = time.time() if now is None else now
    if not runs:
        return Message(text="No runs yet.", blocks=[section("No runs yet. `/bluegreen help` shows how to start one.")])
    active = [run for run in runs if run.is_active]
    recent = [run for run in runs if not run.is_active]
    blocks: list[Block] = []
    for title, group in (("Active runs", active), ("Recent runs", recent)):
        if group:
            blocks.append(section(f"*{title}*\n" + "\n".join(run_line(run, now) for run in group)))
    return Message(text=f"{len(active)} active, {len(recent)} recent runs", blocks=cap_blocks(blocks))
