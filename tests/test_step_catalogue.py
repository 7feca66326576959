"""The step catalogue is an explicit list: every step kind a plan can name, or the runner can append while a run is
under way, must have a class in `bot.workflow.steps.STEPS`, or the run would fail on reaching that step.

Plans are built with the pure planner for every workflow kind, strategy and database kind; the run-time additions
(the workaround fallback, compensation) come from the same functions the runner and the steps call. As a backstop,
every `StepSpec(...)` written in `bot/` with a literal kind is read from the source.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from bot.aws.models import Database, Deployment, ProxyTarget, Registration
from bot.errors import BadRequest
from bot.planning.plan import Observed, Plan, build_plan, compensation_steps, workaround_create_steps
from bot.planning.requests import RunRequest
from bot.workflow import runner
from bot.workflow.steps import CATALOGUE, STEPS, lookup
from bot.workflow.steps.base import Step

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "arn:aws:rds:us-east-1:123456789012"
PROXIES = [Registration("orders-proxy"), Registration("reports-proxy", "readers")]

INSTANCE = Database("orders-pg", "instance", f"{ACCOUNT}:db:orders-pg", "postgres", "15.7", "available")
CLUSTER = Database(
    "ledger-aurora",
    "cluster",
    f"{ACCOUNT}:cluster:ledger-aurora",
    "aurora-postgresql",
    "15.4",
    "available",
    members=("ledger-aurora-1", "ledger-aurora-2"),
    writer="ledger-aurora-1",
)
DATABASES = {"instance": INSTANCE, "aurora": CLUSTER}


def deployment(database: Database, status: str, strategy: str | None = None) -> Deployment:
    green = database.arn.replace(database.identifier, f"{database.identifier}-green-abc123")
    source, target = (green, database.arn) if status == "SWITCHOVER_COMPLETED" else (database.arn, green)
    tags = {"bluegreen-bot:strategy": strategy} if strategy else {}
    return Deployment(f"bgd-{database.identifier}", f"bg-{database.identifier}", source, target, status, tags=tags)


def observed(kind: str, database: Database, registrations: list[Registration], strategy: str | None) -> Observed:
    targets = [
        ProxyTarget(r.proxy, r.target_group, database.identifier, "RDS_INSTANCE", "READ_WRITE", "AVAILABLE")
        for r in registrations
    ]
    if kind == "create":
        return Observed(database, registrations, targets, deployments=[])
    if kind == "cleanup":
        return Observed(
            database, registrations, targets, [], switched_deployments=[deployment(database, "SWITCHOVER_COMPLETED")]
        )
    green = Database(f"{database.identifier}-green-abc123", database.kind, "", database.engine, "15.7", "available")
    return Observed(database, registrations, targets, [deployment(database, "AVAILABLE", strategy)], green=green)


CASES = [
    # (workflow kind, extra request fields)
    ("create", {}),
    ("create", {"engine_version": "16.4"}),
    ("upgrade", {"engine_version": "16.4"}),
    ("switchover", {}),
    ("cleanup", {"delete_old": False}),
    ("cleanup", {"delete_old": True}),
    ("rollback", {}),
]
MODES = ("auto", "native", "workaround")
PROXIED = {"proxied": PROXIES, "no proxy": []}
TAGS = (None, "native", "workaround")  # the strategy a deployment was tagged with at creation (None: made by hand)


def every_plan() -> list[tuple[str, Plan]]:
    plans = []
    for (kind, extra), (db_name, database), mode, (proxy_name, registrations), tag in itertools.product(
        CASES, DATABASES.items(), MODES, PROXIED.items(), TAGS
    ):
        request = RunRequest(kind=kind, database=database.identifier, requester="U0ALICE", mode=mode, **extra)
        plan = build_plan(request, observed(kind, database, registrations, tag))
        plans.append((f"{kind} {extra} {db_name} --mode {mode} {proxy_name} tagged {tag}", plan))
    return plans


PLANS = every_plan()


def runtime_steps() -> list[tuple[str, list[str]]]:
    """Steps the runner adds to a run while it is under way, built by the functions it calls."""
    added = []
    for (db_name, database), (proxy_name, registrations) in itertools.product(DATABASES.items(), PROXIED.items()):
        # The auto strategy falling back to the workaround (CreateDeployment's Replan).
        fallback = workaround_create_steps(registrations, database.identifier, database.kind)
        added.append((f"workaround fallback {db_name} {proxy_name}", [spec.kind for spec in fallback]))
        # A failure while proxies are detached (Runner._fail).
        compensation = compensation_steps(database.identifier, [r.label for r in registrations])
        added.append((f"compensation {db_name} {proxy_name}", [spec.kind for spec in compensation]))
    # Kinds the runner names itself.
    added.append(("runner: registering steps", sorted(runner.REGISTERING_STEPS)))
    return added


def literal_step_kinds() -> list[tuple[str, str]]:
    """(where, kind) for every `StepSpec(...)` in bot/ whose kind is written as a string literal."""
    found = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name != "StepSpec":
                continue
            kind = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "kind"), None)
            if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", kind.value))
    return found


def unregistered(kinds: list[str]) -> list[str]:
    return sorted({kind for kind in kinds if kind not in CATALOGUE})


@pytest.mark.parametrize(("label", "plan"), PLANS, ids=[label for label, _ in PLANS])
def test_every_step_of_every_plan_is_registered(label: str, plan: Plan) -> None:
    missing = unregistered([spec.kind for spec in plan.steps])
    assert missing == [], f"{label}: no step class for {missing} (add it to bot.workflow.steps.STEPS)"


@pytest.mark.parametrize(("label", "kinds"), runtime_steps(), ids=[label for label, _ in runtime_steps()])
def test_every_step_the_runner_adds_is_registered(label: str, kinds: list[str]) -> None:
    missing = unregistered(kinds)
    assert missing == [], f"{label}: no step class for {missing} (add it to bot.workflow.steps.STEPS)"


def test_every_literal_step_kind_in_the_source_is_registered() -> None:
    sites = literal_step_kinds()
    assert len(sites) >= 10, "the source scan found almost no StepSpec(...) calls: is it still reading bot/?"
    missing = [f"{where} {kind!r}" for where, kind in sites if kind not in CATALOGUE]
    assert missing == [], f"no step class for: {missing} (add it to bot.workflow.steps.STEPS)"


def test_the_plans_cover_every_workflow_and_strategy() -> None:
    """Guards the enumeration above: if planning changed so that a strategy were never reached, say so."""
    covered = {(plan.kind, plan.strategy) for _, plan in PLANS}
    for strategy in ("native", "workaround", "direct"):
        assert ("create", strategy) in covered
        assert ("switchover", strategy) in covered
    assert {kind for kind, _ in covered} == {"create", "upgrade", "switchover", "cleanup", "rollback"}
    kinds = {spec.kind for _, plan in PLANS for spec in plan.steps}
    assert {"delete_old_blue", "wait_old_blue_gone", "ensure_registered", "verify_native_targets"} <= kinds


def test_the_catalogue_maps_each_kind_to_its_class_once() -> None:
    assert len(CATALOGUE) == len(STEPS), "two step classes share a kind"
    for kind, cls in CATALOGUE.items():
        assert issubclass(cls, Step) and cls.kind == kind
        assert isinstance(lookup(kind), cls)
    with pytest.raises(BadRequest, match="unknown step kind 'no_such_step'"):
        lookup("no_such_step")
