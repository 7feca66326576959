"""Pure Block Kit builders on `slack_sdk.models.blocks`: data in, a message (text fallback + blocks) out. No I/O.

Slack's limits are enforced here: at most 50 blocks a message (long checklists collapse), 3000 characters a
section (long text is cut with a note), 150 characters a header.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    OptionGroup,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.workflow.events import AwsCall, RunSnapshot
from handlers.ids import (
    ApprovalActions,
    ApprovalBlockIds,
    CreateModalActions,
    CreateModalBlockIds,
    CreateModalCallbacks,
    HomeActions,
    HomeBlockIds,
    RunBlockIds,
)

if TYPE_CHECKING:
    from bot.aws.models import Database
    from bot.planning.plan import Plan
    from bot.workflow.engine import DatabaseStatus
    from storage import RunRecord, StepRecord

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
CONTEXT_LIMIT = 2000  # per context element
SAME_VERSION = "same"  # create-modal option meaning "no engine upgrade"

STEP_ICONS = {
    "waiting": ":white_circle:",
    "running": ":hourglass_flowing_sand:",
    "done": ":white_check_mark:",
    "failed": ":x:",
    "skipped": ":fast_forward:",
    "cancelled": ":no_entry_sign:",
}
RUN_ICONS = {
    "pending": ":white_circle:",
    "running": ":arrows_counterclockwise:",
    "waiting_approval": ":raised_hand:",
    "waiting_window": ":calendar:",
    "compensating": ":leftwards_arrow_with_hook:",
    "succeeded": ":large_green_circle:",
    "failed": ":red_circle:",
    "cancelled": ":no_entry_sign:",
    "rejected": ":no_entry:",
    "expired": ":hourglass:",
}
KIND_TITLES = {
    "create": "Create blue/green deployment",
    "upgrade": "Engine upgrade",
    "switchover": "Switchover",
    "cleanup": "Clean up",
    "rollback": "Roll back",
}


@dataclass(frozen=True, slots=True)
class Message:
    """What `chat.postMessage` / `chat.update` / `respond` need: a fallback text and the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": [block.to_dict() for block in self.blocks]}


@dataclass(frozen=True, slots=True)
class ApprovalButtonValue:
    """The typed payload carried in an Approve/Reject button's `value`."""

    request_id: str
    run_id: str
    fingerprint: str

    def encode(self) -> str:
        return json.dumps(
            {"request_id": self.request_id, "run_id": self.run_id, "fingerprint": self.fingerprint},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, value: str) -> ApprovalButtonValue:
        """Raises ValueError when the value is not one of ours."""
        try:
            data = json.loads(value)
        except (TypeError, json.JSONDecodeError):
            raise ValueError("approval button value is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError("approval button value is not an object")
        fields = {name: data.get(name) for name in ("request_id", "run_id", "fingerprint")}
        if not all(isinstance(item, str) and item for item in fields.values()):
            raise ValueError("approval button value lacks request_id, run_id or fingerprint")
        return cls(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- small helpers


def truncate(text: str, limit: int = SECTION_LIMIT, note: str = "truncated") -> str:
    if len(text) <= limit:
        return text
    suffix = f"\n… ({note}: {len(text) - limit} more characters)"
    cut = text[: max(0, limit - len(suffix) - 3)]
    if cut.count("```") % 2:  # do not leave a code block open
        cut += "```"
    return cut + suffix


def mention(slack_id: str) -> str:
    """`<@U..>` for users, `<!subteam^S..>` for user groups."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def clock(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M UTC")


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str, *, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text)), block_id=block_id)


def context(*parts: str, block_id: str | None = None) -> ContextBlock:
    elements = [MarkdownTextObject(text=truncate(part, CONTEXT_LIMIT)) for part in parts if part][:10]
    return ContextBlock(elements=elements, block_id=block_id)


def header(text: str, *, block_id: str | None = None) -> HeaderBlock:
    if len(text) > HEADER_LIMIT:
        text = text[: HEADER_LIMIT - 1] + "…"
    return HeaderBlock(text=PlainTextObject(text=text, emoji=True), block_id=block_id)


def code(lines: Iterable[str]) -> str:
    body = "\n".join(lines).replace("```", "'''")
    return f"```{body}```"


def thread_link(run: RunRecord, label: str | None = None) -> str:
    """A link to the run's thread when the sink recorded one, else the channel, else just the run id."""
    slack = run.meta.get("slack") if isinstance(run.meta, dict) else None
    label = label or run.id
    if isinstance(slack, dict) and slack.get("permalink"):
        return f"<{slack['permalink']}|{label}>"
    if run.channel:
        return f"{label} in <#{run.channel}>"
    return label


def _cap_blocks(blocks: list[Block], limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    if len(blocks) <= limit:
        return blocks
    hidden = len(blocks) - limit + 1
    return [*blocks[: limit - 1], context(f"… {hidden} more blocks not shown (Slack's {limit}-block limit).")]


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


def run_parent(snapshot: RunSnapshot, *, now: float | None = None) -> Message:
    """The run's parent message: header, who/what, and the live checklist of steps."""
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
    blocks += checklist_sections(snapshot.steps, now=now, max_blocks=MAX_MESSAGE_BLOCKS - 4)
    footer = f"{done}/{len(snapshot.steps)} steps complete" if snapshot.steps else "planning…"
    if run.error and not run.is_active:
        footer += f" · {escape(truncate(run.error, 500))}"
    blocks.append(context(footer, block_id=RunBlockIds.footer))
    text = f"{run_title(run)} ({run.id}): {status}, {done}/{len(snapshot.steps)} steps complete"
    return Message(text=text, blocks=_cap_blocks(blocks))


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
    return Message(text=truncate(text, 3000), blocks=_cap_blocks(blocks))


def notice(text: str) -> Message:
    return Message(text=text, blocks=[section(f":information_source: {escape(text)}")])


def approval_request(
    *,
    request_id: str,
    run_id: str,
    kind: str,
    fingerprint: str,
    requester: str,
    approvers: Sequence[str],
    expires_at: float,
    action: str,
    facts: Mapping[str, str],
) -> Message:
    """The approval request: who may approve, what will happen, what it was checked against, two buttons."""
    what = "switchover" if kind == "switchover" else "deletion of the old databases"
    who = ", ".join(mention(item) for item in approvers) or "any approver"
    value = ApprovalButtonValue(request_id=request_id, run_id=run_id, fingerprint=fingerprint).encode()
    fact_lines = "\n".join(f"• *{escape(name)}*: {escape(str(item))}" for name, item in facts.items())
    blocks: list[Block] = [
        section(
            f":raised_hand: {who}: approval needed for the *{what}* requested by {mention(requester)}.\n"
            f"*What will happen:* {escape(action)}",
            block_id=ApprovalBlockIds.summary,
        ),
    ]
    if fact_lines:
        blocks.append(section(f"*Checked against:*\n{fact_lines}", block_id=ApprovalBlockIds.facts))
    blocks += [
        context(f"Expires at {clock(expires_at)} · the requester cannot approve · request `{request_id}`"),
        ActionsBlock(
            block_id=ApprovalBlockIds.buttons,
            elements=[
                ButtonElement(text="Approve", action_id=ApprovalActions.approve, value=value, style="primary"),
                ButtonElement(text="Reject", action_id=ApprovalActions.reject, value=value, style="danger"),
            ],
        ),
    ]
    text = f"Approval needed for the {what} of run {run_id}: {action}"
    return Message(text=text, blocks=blocks)


DECISION_WORDING = {
    "approved": (":white_check_mark:", "Approved"),
    "rejected": (":no_entry:", "Rejected"),
    "expired": (":hourglass:", "Expired"),
    "superseded": (":recycle:", "Superseded by a newer request"),
}


def approval_decided(
    *,
    request_id: str,
    run_id: str,
    kind: str,
    action: str,
    decision: str,
    user: str | None,
    at: float,
) -> Message:
    """Replaces the approval request once decided: the buttons give way to who decided and when."""
    icon, word = DECISION_WORDING.get(decision, (":grey_question:", decision.title()))
    by = f" by {mention(user)}" if user and decision in {"approved", "rejected"} else ""
    outcome = f"{icon} *{word}*{by} at {clock(at)}"
    what = "switchover" if kind == "switchover" else "deletion of the old databases"
    blocks: list[Block] = [
        section(
            f"Approval for the *{what}* of run `{run_id}`.\n*What it covered:* {escape(action)}",
            block_id=ApprovalBlockIds.summary,
        ),
        section(outcome, block_id=ApprovalBlockIds.decision),
        context(f"request `{request_id}`"),
    ]
    plain_by = f" by <@{user}>" if by else ""
    return Message(text=f"{word}{plain_by} at {clock(at)}: {what} of run {run_id}", blocks=blocks)


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


def error(message: str, fix: str | None = None) -> Message:
    text = f"{message} {fix}" if fix else message
    body = f":warning: {message}" + (f"\n{fix}" if fix else "")
    return Message(text=text, blocks=[section(body)])


def help_message() -> Message:
    from handlers.parsing import SYNTAX

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
        "cancel": "stop a run safely",
    }
    lines = [f"`/bluegreen {syntax.usage}`: {descriptions[name]}" for name, syntax in SYNTAX.items()]
    blocks: list[Block] = [
        section("*Blue/green deployments for databases behind RDS Proxy*\n" + "\n".join(lines)),
        context("`<db>` is a DB instance or Aurora cluster identifier. Runs post their progress in a thread here."),
    ]
    return Message(text="/bluegreen commands: " + ", ".join(SYNTAX), blocks=blocks)


def run_accepted(run: RunRecord) -> Message:
    where = "the thread below" if run.channel else "`/bluegreen runs`"
    text = f"Started {run.kind} of {run.database} as run {run.id}; follow it in {where}."
    return Message(
        text=text,
        blocks=[section(f":rocket: Started *{run.kind}* of `{run.database}`: run `{run.id}`. Follow it in {where}.")],
    )


def run_cancelling(run: RunRecord) -> Message:
    return Message(
        text=f"Cancelling run {run.id}",
        blocks=[
            section(
                f":no_entry_sign: Asked run `{run.id}` ({run.kind} of `{run.database}`) to stop safely; "
                "a detached proxy is re-attached first."
            )
        ],
    )


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
    return Message(text=text, blocks=_cap_blocks(blocks))


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
    return Message(text=text, blocks=_cap_blocks(blocks))


def _run_line(run: RunRecord, now: float) -> str:
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
            blocks.append(section(f"*{title}*\n" + "\n".join(_run_line(run, now) for run in group)))
    return Message(text=f"{len(active)} active, {len(recent)} recent runs", blocks=_cap_blocks(blocks))


# ---------------------------------------------------------------- App Home and the create modal


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
    return View(type="home", blocks=_cap_blocks(blocks, MAX_VIEW_BLOCKS))


def _home_run(run: RunRecord, now: float) -> SectionBlock:
    slack = run.meta.get("slack") if isinstance(run.meta, dict) else None
    permalink = slack.get("permalink") if isinstance(slack, dict) else None
    accessory = None
    if permalink:
        accessory = ButtonElement(text="Open thread", url=permalink, action_id=f"{HomeActions.open_thread}-{run.id}")
    return SectionBlock(text=MarkdownTextObject(text=truncate(_run_line(run, now))), accessory=accessory)


def create_modal_loading(channel: str | None) -> View:
    return View(
        type="modal",
        callback_id=CreateModalCallbacks.submit,
        title="Blue/green create",
        close="Cancel",
        private_metadata=json.dumps({"channel": channel}),
        blocks=[
            section(
                ":hourglass_flowing_sand: Looking up databases and upgrade targets…",
                block_id=CreateModalBlockIds.loading,
            )
        ],
    )


def create_modal_target_value(database: str, engine_version: str | None) -> str:
    return f"{database}|{engine_version or SAME_VERSION}"


def parse_create_modal_target(value: str) -> tuple[str, str | None]:
    """The database and engine version (None: same version) chosen in the create modal."""
    database, _, version = value.partition("|")
    return database, (None if version in {"", SAME_VERSION} else version)


def create_modal(*, channel: str | None, choices: Sequence[tuple[Database, Sequence[str]]]) -> View:
    """The create form: one select listing each database with its valid upgrade targets, then parameter group and
    mode. One select keeps database and version consistent without a round trip per choice."""
    metadata = json.dumps({"channel": channel})
    if not choices:
        return View(
            type="modal",
            callback_id=CreateModalCallbacks.submit,
            title="Blue/green create",
            close="Close",
            private_metadata=metadata,
            blocks=[section("No databases found in this environment's region.")],
        )
    groups = []
    for database, targets in choices[:100]:
        options = [
            Option(
                value=create_modal_target_value(database.identifier, None),
                text=truncate(f"{database.identifier}: same version ({database.engine_version})", 75, "cut"),
            )
        ]
        options += [
            Option(
                value=create_modal_target_value(database.identifier, target),
                text=truncate(f"{database.identifier}: upgrade to {target}", 75, "cut"),
            )
            for target in list(targets)[:99]
        ]
        label = truncate(f"{database.identifier} ({database.engine} {database.engine_version})", 75, "cut")
        groups.append(OptionGroup(label=label, options=options))
    mode_options = [
        Option(value="auto", text="auto: native if supported, else workaround"),
        Option(value="native", text="native: RDS Proxy support in blue/green"),
        Option(value="workaround", text="workaround: detach proxies around it"),
    ]
    blocks: list[Block] = [
        InputBlock(
            block_id=CreateModalBlockIds.target,
            label="Database and green's engine version",
            element=StaticSelectElement(
                action_id=CreateModalActions.target, option_groups=groups, placeholder="Choose a database"
            ),
        ),
        InputBlock(
            block_id=CreateModalBlockIds.parameter_group,
            label="Parameter group for green",
            optional=True,
            element=PlainTextInputElement(
                action_id=CreateModalActions.parameter_group, placeholder="keep the current one"
            ),
        ),
        InputBlock(
            block_id=CreateModalBlockIds.mode,
            label="Proxy handling",
            element=StaticSelectElement(
                action_id=CreateModalActions.mode, options=mode_options, initial_option=mode_options[0]
            ),
        ),
    ]
    return View(
        type="modal",
        callback_id=CreateModalCallbacks.submit,
        title="Blue/green create",
        submit="Create",
        close="Cancel",
        private_metadata=metadata,
        blocks=blocks,
    )


def create_modal_problem(channel: str | None, message: Message) -> View:
    """The create modal when the form cannot be shown (no access, AWS unavailable...)."""
    return View(
        type="modal",
        callback_id=CreateModalCallbacks.submit,
        title="Blue/green create",
        close="Close",
        private_metadata=json.dumps({"channel": channel}),
        blocks=message.blocks,
    )
