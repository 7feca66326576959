"""The `/bluegreen` grammar, pure: every subcommand and its flags, and what bad input is told to type instead."""

from __future__ import annotations

import pytest

from bot.errors import BadRequest
from handlers.parsing import ParsedCommand, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ParsedCommand("help")),
        ("HELP", ParsedCommand("help")),
        ("status Orders-PG", ParsedCommand("status", database="orders-pg")),
        (
            "plan orders-pg --engine-version 16.4 --parameter-group pg16 --mode native",
            ParsedCommand("plan", database="orders-pg", engine_version="16.4", parameter_group="pg16", mode="native"),
        ),
        ("create orders-pg --mode=workaround", ParsedCommand("create", database="orders-pg", mode="workaround")),
        ("create", ParsedCommand("create")),
        (
            "upgrade orders-pg \u2014engine-version 16.4",
            ParsedCommand("upgrade", database="orders-pg", engine_version="16.4"),
        ),
        ("switchover ledger-aurora --timeout 600", ParsedCommand("switchover", database="ledger-aurora", timeout=600)),
        ("cleanup orders-pg --delete-old", ParsedCommand("cleanup", database="orders-pg", delete_old=True)),
        ("rollback orders-pg", ParsedCommand("rollback", database="orders-pg")),
        ("runs", ParsedCommand("runs")),
        ("cancel r-1a2b3c4d", ParsedCommand("cancel", run_id="r-1a2b3c4d")),
    ],
)
def test_valid_commands(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


def test_create_without_arguments_opens_the_form_and_others_do_not() -> None:
    assert parse_command("create").opens_form
    assert not parse_command("create orders-pg").opens_form
    assert parse_command("cancel r-1a2b3c4d").changes_something and not parse_command("plan x").starts_run


def test_requests_carry_who_where_and_what() -> None:
    request = parse_command("switchover orders-pg --timeout 90").to_request(
        requester="U0ALICE", environment="production", channel="C0OPS"
    )
    assert (request.kind, request.switchover_timeout, request.requester, request.channel) == (
        "switchover",
        90,
        "U0ALICE",
        "C0OPS",
    )
    assert parse_command("plan orders-pg").to_request(requester="U", environment="e", channel=None).kind == "create"


@pytest.mark.parametrize(
    ("text", "says", "suggests"),
    [
        ("deploy orders-pg", "not a /bluegreen command", "/bluegreen help"),
        ("swtichover orders-pg", "not a /bluegreen command", "/bluegreen switchover"),
        ("status", "needs a database identifier", "/bluegreen status <db>"),
        ("status -orders", "not a /bluegreen option", "/bluegreen status <db>"),
        ("plan orders-pg --delete-old", "does not apply to `plan`", "/bluegreen plan <db>"),
        (
            "upgrade orders-pg --mode native",
            "does not apply to `upgrade`",
            "/bluegreen upgrade <db> --engine-version V",
        ),
        ("cancel run-1", "not a run id", "/bluegreen cancel <run-id>"),
        ("status <script>", "not a valid RDS identifier", "/bluegreen status <db>"),
    ],
)
def test_bad_input_says_what_was_wrong_and_what_to_type(text: str, says: str, suggests: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_command(text)
    assert says in caught.value.message
    assert suggests in (caught.value.fix or "")
    assert "<script>" not in str(caught.value)  # user input is echoed back defanged
