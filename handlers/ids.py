"""Every action, callback and block id the bot uses: kebab-case, prefixed by feature, one file to grep."""

from __future__ import annotations

from enum import StrEnum

SLASH_COMMAND = "/bluegreen"


class ApprovalActions(StrEnum):
    approve = "approval-approve"
    reject = "approval-reject"


class ApprovalBlockIds(StrEnum):
    buttons = "approval-buttons"
    summary = "approval-summary"
    facts = "approval-facts"
    gates = "approval-gates"
    rehearsal = "approval-rehearsal"
    decision = "approval-decision"


class CreateModalCallbacks(StrEnum):
    submit = "create-modal-submit"


class CreateModalBlockIds(StrEnum):
    target = "create-modal-target"
    parameter_group = "create-modal-parameter-group"
    mode = "create-modal-mode"
    loading = "create-modal-loading"


class CreateModalActions(StrEnum):
    target = "create-modal-target-select"
    parameter_group = "create-modal-parameter-group-input"
    mode = "create-modal-mode-select"


class RunBlockIds(StrEnum):
    header = "run-header"
    checklist = "run-checklist"
    overflow = "run-checklist-overflow"
    footer = "run-footer"


class HomeActions(StrEnum):
    open_thread = "home-open-thread"


class HomeBlockIds(StrEnum):
    active = "home-active-runs"
    recent = "home-recent-runs"


class RehearsalActions(StrEnum):
    start = "rehearsal-start"
    cancel = "rehearsal-cancel"


class RehearsalBlockIds(StrEnum):
    estimate = "rehearsal-estimate"
    buttons = "rehearsal-buttons"
    note = "rehearsal-note"
