"""Pure Block Kit builders: content, typed button payloads, and Slack's limits."""

from __future__ import annotations

import json

import pytest

from bot.workflow.events import AwsCall, RunSnapshot
from handlers.ids import ApprovalActions
from handlers.messages import replies
from handlers.messages.approvals import (
    ApprovalButtonValue,
    approval_decided,
    approval_request,
    approve_confirmation,
)
from handlers.messages.formatting import MAX_MESSAGE_BLOCKS, Message, truncate
from handlers.messages.home import home_view
from handlers.messages.runs import notice, run_parent, run_summary, runs_message, step_report
from storage import RunRecord, StepRecord

T0 = 1_700_000_000.0


def run(**overrides: object) -> RunRecord:
    fields: dict = dict(
        id="r-1a2b3c4d",
        kind="create",
        database="orders-pg",
        params={},
        strategy="workaround",
        status="running",
        requester="U0ALICE",
        environment="production",
        channel="C0OPS",
        plan_version=1,
        plan_fingerprint=None,
        created_at=T0,
        updated_at=T0,
        finished_at=None,
        error=None,
        summary={},
        meta={},
    )
    fields.update(overrides)
    return RunRecord(**fields)


def step(idx: int, status: str, title: str | None = None, **overrides: object) -> StepRecord:
    fields: dict = dict(
        run_id="r-1a2b3c4d",
        idx=idx,
        name=f"step{idx}",
        title=title or f"Step number {idx}",
        status=status,
        attempts=1,
        started_at=T0 + idx,
        ended_at=T0 + idx + 2.5 if status in {"done", "failed"} else None,
        observed={},
        state={},
        aws_calls=[],
        detail=None,
    )
    fields.update(overrides)
    return StepRecord(**fields)


def as_json(message: Message) -> str:
    return json.dumps(message.as_kwargs())


def test_parent_checklist_shows_each_status_and_duration() -> None:
    steps = [
        step(0, "done"),
        step(1, "failed", detail="AccessDenied on rds:Deregister"),
        step(2, "running"),
        step(3, "waiting"),
        step(4, "skipped"),
    ]
    message = run_parent(RunSnapshot(run(), steps), now=T0 + 10)
    rendered = as_json(message)
    for icon in (":white_check_mark:", ":x:", ":hourglass_flowing_sand:", ":white_circle:", ":fast_forward:"):
        assert icon in rendered
    assert "2.5s" in rendered and "running 8.0s" in rendered and "AccessDenied" in rendered
    assert "r-1a2b3c4d" in rendered and "<@U0ALICE>" in rendered and "orders-pg" in rendered
    assert message.text.startswith("Create blue/green deployment: orders-pg")
    assert message.blocks[0].type == "header"


def test_a_long_checklist_stays_within_fifty_blocks_and_3000_characters() -> None:
    steps = [step(i, "done", title="x" * 140) for i in range(1200)] + [step(1200, "running", title="the current one")]
    message = run_parent(RunSnapshot(run(), steps), now=T0 + 500)
    payload = message.as_kwargs()
    assert len(payload["blocks"]) <= MAX_MESSAGE_BLOCKS
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in payload["blocks"])
    assert "the current one" in json.dumps(payload)
    assert "earlier steps" in json.dumps(payload)


def test_long_text_is_truncated_with_a_note_and_code_blocks_closed() -> None:
    text = "```" + "a" * 5000
    cut = truncate(text)
    assert len(cut) <= 3000 and "truncated" in cut and cut.count("```") % 2 == 0


def test_step_report_lists_observations_and_aws_commands() -> None:
    call = AwsCall(
        "DeregisterDBProxyTargets",
        "aws rds deregister-db-proxy-targets --db-proxy-name orders-proxy",
        "0f1e-req",
        "ok",
        T0,
    )
    failed = AwsCall("CreateBlueGreenDeployment", "aws rds create-blue-green-deployment", None, "InvalidParameter", T0)
    message = step_report(RunSnapshot(run(), [step(0, "done")]), 0, ["target was AVAILABLE"], [call, failed])
    rendered = as_json(message)
    assert "```aws rds deregister-db-proxy-targets --db-proxy-name orders-proxy```" in rendered
    assert "0f1e-req" in rendered and "InvalidParameter" in rendered and "target was AVAILABLE" in rendered


def test_approval_request_mentions_approvers_and_carries_a_typed_payload() -> None:
    message = approval_request(
        request_id="a-12345678",
        run_id="r-1a2b3c4d",
        kind="switchover",
        fingerprint="fp-9",
        requester="U0ALICE",
        approvers=["U0BOB", "S0SRE"],
        expires_at=T0 + 900,
        action="Switch orders-pg to green (16.4)",
        facts={"deployment status": "AVAILABLE", "green version": "16.4"},
        confirm=approve_confirmation("switchover", run(kind="switchover")),
    )
    payload = message.as_kwargs()
    rendered = json.dumps(payload)
    assert "<@U0BOB>" in rendered and "<!subteam^S0SRE>" in rendered and "deployment status" in rendered
    (actions,) = [block for block in payload["blocks"] if block["type"] == "actions"]
    approve, reject = actions["elements"]
    assert (approve["action_id"], approve["style"]) == (ApprovalActions.approve, "primary")
    assert approve["confirm"]["title"]["text"] == "Switch over orders-pg?"
    assert reject["action_id"] == ApprovalActions.reject and "style" not in reject  # neutral: withdrawing is safe
    value = ApprovalButtonValue.decode(approve["value"])
    assert value == ApprovalButtonValue("a-12345678", "r-1a2b3c4d", "fp-9")
    assert message.text


@pytest.mark.parametrize(
    "value", ["", "not json", "[]", '{"request_id": "a-1"}', '{"request_id": 1, "run_id": "r", "fingerprint": "f"}']
)
def test_foreign_button_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        ApprovalButtonValue.decode(value)


@pytest.mark.parametrize(
    ("decision", "user", "expected"),
    [
        ("approved", "U0BOB", "Approved* by <@U0BOB> at 22:13 UTC"),
        ("rejected", "U0BOB", "Rejected* by <@U0BOB>"),
        ("expired", None, "Expired* at 22:13 UTC"),
        ("superseded", None, "Superseded"),
    ],
)
def test_decided_approval_replaces_the_buttons(decision: str, user: str | None, expected: str) -> None:
    message = approval_decided(
        request_id="a-1", run_id="r-1", kind="switchover", action="Switch", decision=decision, user=user, at=T0
    )
    rendered = as_json(message)
    assert expected in rendered and '"actions"' not in rendered


def test_summary_states_each_proxys_time_without_a_target() -> None:
    finished = run(status="succeeded", finished_at=T0 + 125)
    windows = {"orders-proxy": {"seconds": 4.25, "overhead_seconds": 0.5}, "billing-proxy": {"seconds": 12.0}}
    message = run_summary(RunSnapshot(finished, [step(0, "done")]), "succeeded", None, windows)
    rendered = as_json(message)
    assert "`orders-proxy`: 4.2s (of which 0.5s bot overhead)" in rendered and "`billing-proxy`: 12s" in rendered
    assert "2m 05s" in rendered and "orders-proxy" in message.text


def test_runs_list_and_home_link_to_threads() -> None:
    linked = run(
        meta={"slack": {"channel": "C0OPS", "ts": "1.2", "permalink": "https://x.slack.com/archives/C0OPS/p12"}}
    )
    done = run(id="r-99999999", status="succeeded")
    rendered = as_json(runs_message([linked, done], now=T0 + 60))
    assert "<https://x.slack.com/archives/C0OPS/p12|`r-1a2b3c4d`>" in rendered and "Recent runs" in rendered
    home = home_view([linked], [done], now=T0 + 60).to_dict()
    assert home["type"] == "home" and "https://x.slack.com/archives/C0OPS/p12" in json.dumps(home)


def test_help_and_errors_have_a_text_fallback() -> None:
    for message in (replies.help_message(), replies.error("Bad thing.", "Do this."), notice("hello")):
        payload = message.as_kwargs()
        assert payload["text"] and payload["blocks"]
