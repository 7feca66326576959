"""The create modal opened by `/bluegreen create` without arguments: its views and the value of its one select."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    Block,
    InputBlock,
    Option,
    OptionGroup,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from handlers.ids import CreateModalActions, CreateModalBlockIds, CreateModalCallbacks
from handlers.messages.formatting import Message, section, truncate

if TYPE_CHECKING:
    from bot.aws.models import Database

SAME_VERSION = "same"  # create-modal option meaning "no engine upgrade"


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
