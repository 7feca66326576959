"""Crash tests of rehearsals: `python -m bot rehearse` SIGKILLed at step boundaries, then `python -m bot resume`.

Each process is real (forked from the warm interpreter of tests/process_fixtures.py) and dies by its own failpoint
(`BLUEGREEN_FAILPOINT`, bot/workflow/failpoints.py). To afford every boundary of a rehearsal in CI's budget, a case is
a chain: the rehearsal is killed at a boundary, a `resume` is killed at the next one, and so on (`next-boundary`:
whatever the next boundary is, so a step added to the rehearsal, or to the switchover it replans into, is killed at
without editing this file); then a last `resume` runs the rehearsal to its end. Each process starts from the state
the previous one died in, as the restart after a single crash would.

- orders-pg, workaround, to 16.4 (the most steps: restore, proxy, detach/create/reattach, the switchover replanned
  into detach/switchover/reattach, the teardown): every boundary, in two halves that the two workers share.
- ledger-aurora: the cluster restore and its member instances, and the teardown of both clone clusters.
- orders-pg whose upgrade task fails: killed before the teardown the runner appends, and in its middle.

Boundaries: after each mutation (`after-call:ACTION`) and after each step (`after-step:KIND`). `before-step:KIND`
leaves the same durable state as `after-step` of the step before it (nothing is written in between), so it is killed
at only where that is not so: before the first step, and before a teardown appended after a failure. The kills are
checked against the boundaries the run itself recorded (its steps and their AWS calls, in order): exactly those,
each once. A call that starts something in AWS (a restore, member instances, a proxy, a deletion) is given a phase
that outlasts the restart, so that the resumed process finds it in progress, as it would in AWS, not already over.

After the chain: the run ended (succeeded, or failed with AWS's reason and its teardown done), nothing tagged
`bluegreen-bot:rehearsal=<run>` remains (instances, clusters, proxies; the deployment by its `bluegreen-bot:run-id`
tag) nor anything named after the clone, no mutation on the sandbox's timeline named a production resource (by name
or ARN) or anything the rehearsal did not create, none was refused (a create of what exists, a delete of what is
being deleted) and none repeated (each as many times as an uninterrupted rehearsal makes it), the audit log has
what AWS saw, and no production lock was held between two processes.

Cost: about 20-25 s of wall time at `-n 2` on an idle machine (four rehearsals, about 60 processes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.cli import build_parser
from bot.config import Settings, load_settings
from bot.planning.rehearsal import clone_name
from storage import Store
from tests.engine_fixtures import REQUESTER, engine_env
from tests.matrix_fixtures import (
    READ_ONLY_PREFIXES,
    assert_proxy_serves,
    audited_mutations,
    bot_env,
    instance,
    last_seq,
    successful_calls,
)
from tests.process_fixtures import ForkedBot, forked_bots, zygote_fixture  # noqa: F401  (the `zygote` fixture)
from tests.rehearsal_fixtures import tagged
from tests.sandbox_fixtures import FAST_DURATIONS

NEXT = "next-boundary"
MAX_PROCESSES = 80  # a chain that does not end (a resumed step repeating a mutation each time) fails, not hangs
KILLED_AT = re.compile(r"^failpoint (\S+): SIGKILL$", re.MULTILINE)
# Refusals that are part of an idempotent retry by design: inside a window it opened, the bot registers straight
# away and takes AWS's "already registered" as done (bot/workflow/steps/proxy_targets.py `attach`).
EXPECTED_REFUSALS = {("RegisterDBProxyTargets", "DBProxyTargetAlreadyRegisteredFault")}
SPEED = 3.0  # the sandbox's simulated durations (tests.sandbox_fixtures.FAST_DURATIONS) run three times faster
# The phases a rehearsal's own calls start (a restore, member instances, a proxy, deletions), made to outlast a
# restart: the kill seen, a fork, the resumed step reached take about 0.3 s.
IN_PROGRESS = ("restoring", "instance_creating", "proxy_creating", "deleting", "proxy_deleting")
OUTLASTS_A_RESTART = 0.8  # real seconds

ORDERS_PG_MUTATIONS = {
    "RestoreDBInstanceToPointInTime": 1,
    "CreateDBProxy": 1,
    "RegisterDBProxyTargets": 3,  # the clone behind its new proxy, then after the creation and the switchover
    "DeregisterDBProxyTargets": 2,
    "CreateBlueGreenDeployment": 1,
    "SwitchoverBlueGreenDeployment": 1,
    "DeleteBlueGreenDeployment": 1,
    "DeleteDBProxy": 1,
    "DeleteDBInstance": 2,  # the clone (green, renamed) and the clone's old blue, `-old1`
}
LEDGER_MUTATIONS = {
    **{action: count for action, count in ORDERS_PG_MUTATIONS.items() if action != "RestoreDBInstanceToPointInTime"},
    "RestoreDBClusterToPointInTime": 1,
    "CreateDBInstance": 2,  # the clone cluster's writer and reader
    "DeleteDBInstance": 4,  # those two, in the clone and in its `-old1` after the switchover
    "DeleteDBCluster": 2,
}


@dataclass(frozen=True)
class Segment:
    failpoint: str  # the BLUEGREEN_FAILPOINT of each process of the segment
    kills: int | None  # how many processes it kills; None: until a process ends the run
    slow: bool = True  # False for a process run through many steps to a later boundary: AWS at full speed there


Boundaries = list[tuple[str, str]]  # (step, failpoint) in the order the run crossed them


@dataclass(frozen=True)
class Chain:
    database: str
    options: tuple[str, ...]
    segments: tuple[Segment, ...]
    killed_at: Callable[[Boundaries], list[str]]  # where the chain kills, from the run's boundaries
    mutations: dict[str, int]  # successful calls of each mutation: as many as an uninterrupted rehearsal makes
    serves: dict[str, str] = field(default_factory=dict)  # production proxy -> the database it must still serve


ORDERS_PG = ("orders-pg", ("--mode", "workaround", "--engine-version", "16.4"))
HALF = 13  # about half of orders-pg's boundaries: the two halves run on the two workers


def _in_the_teardown(start: str, count: int) -> Callable[[Boundaries], list[str]]:
    """`count` boundaries of the teardown from `start` on."""

    def points(boundaries: Boundaries) -> list[str]:
        first = boundaries.index(("teardown_rehearsal", start))
        return [point for _, point in boundaries[first : first + count]]

    return points


CHAINS = {
    # orders-pg behind orders-proxy, workaround, to 16.4: restore, proxy, detach/create/reattach (green at 16.4),
    # the switchover replanned into detach/switchover/reattach, the teardown. Every boundary, in two halves.
    "orders-pg-first-half": Chain(
        *ORDERS_PG,
        (Segment("before-step:restore_clone", 1), Segment(NEXT, HALF)),
        lambda b: ["before-step:restore_clone"] + [point for _, point in b[:HALF]],
        ORDERS_PG_MUTATIONS,
        {"orders-proxy": "orders-pg"},
    ),
    "orders-pg-second-half": Chain(
        *ORDERS_PG,
        (Segment(f"{NEXT}:{HALF + 1}", 1, slow=False), Segment(NEXT, None)),
        lambda b: [point for _, point in b[HALF:]],
        ORDERS_PG_MUTATIONS,
        {"orders-proxy": "orders-pg"},
    ),
    # ledger-aurora behind ledger-proxy, workaround: the cluster restore and its two member instances; then, in the
    # teardown, the proxy's deletion and the first clone cluster's (its two members first, then the cluster).
    "ledger-aurora": Chain(
        "ledger-aurora",
        ("--mode", "workaround"),
        (Segment(NEXT, 5), Segment("after-call:DeleteDBProxy", 1, slow=False), Segment(NEXT, 3)),
        lambda b: [point for _, point in b[:5]] + _in_the_teardown("after-call:DeleteDBProxy", 4)(b),
        LEDGER_MUTATIONS,
    ),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(engine_env(tmp_path / "bluegreen.db", BLUEGREEN_REHEARSALS="true"))


@pytest.fixture
def production(sandbox: Any, rds: Any) -> set[str]:
    """Every production resource, by name and by ARN (proxies' target groups too), before the rehearsal; and AWS
    at the tests' speed."""
    sandbox.control.config(speed=SPEED)
    names: set[str] = set()
    for d in rds.describe_db_instances()["DBInstances"]:
        names |= {d["DBInstanceIdentifier"], d["DBInstanceArn"]}
    for c in rds.describe_db_clusters()["DBClusters"]:
        names |= {c["DBClusterIdentifier"], c["DBClusterArn"]}
    for p in rds.describe_db_proxies()["DBProxies"]:
        names |= {p["DBProxyName"], p["DBProxyArn"]}
        groups = rds.describe_db_proxy_target_groups(DBProxyName=p["DBProxyName"])["TargetGroups"]
        names |= {g["TargetGroupArn"] for g in groups}
    return names


def phases(sandbox: Any, *, slow: bool) -> None:
    """The phases a rehearsal's own calls start, outlasting a restart (slow) or at the tests' speed."""
    durations = {name: OUTLASTS_A_RESTART * SPEED if slow else getattr(FAST_DURATIONS, name) for name in IN_PROGRESS}
    sandbox.control.config(durations=durations)


def rehearse_args(database: str, options: tuple[str, ...]) -> list[str]:
    """`rehearse DB OPTIONS --as ALICE`, with `--yes` where the command asks the requester to confirm its cost."""
    _, unknown = build_parser().parse_known_args(["rehearse", database, "--yes"])
    return ["rehearse", database, *options, "--as", REQUESTER, *([] if "--yes" in unknown else ["--yes"])]


def env_for(sandbox: Any, settings: Settings, failpoint: str | None = None) -> dict[str, str]:
    return bot_env(sandbox, settings.db_path, failpoint, BLUEGREEN_REHEARSALS="true")


async def ended(process: ForkedBot) -> int:
    process.release()
    return await process.ended()


def kill_point(process: ForkedBot, code: int) -> str:
    """Where its failpoint SIGKILLed the process, as it said on its way out."""
    output = process.output()
    assert code == -9, f"`{' '.join(process.args)}` was to be SIGKILLed at a failpoint; exit {code}:\n{output}"
    (point,) = KILLED_AT.findall(output)
    return point


async def killed(process: ForkedBot) -> str:
    return kill_point(process, await ended(process))


def the_run(store: Store) -> str:
    (run,) = store.runs.list(limit=5)
    assert run.kind == "rehearse"
    return run.id


def boundaries_of(store: Store, run_id: str) -> Boundaries:
    """The boundaries the run crossed, from what it recorded: each step that ran (done, or skipped because it
    replanned, with the reason), its successful AWS mutations in order, then the step's end."""
    crossed: Boundaries = []
    for step in store.steps.list(run_id):
        if step.status == "done" or (step.status == "skipped" and step.detail):
            calls = [c["action"] for c in step.aws_calls if c["outcome"] == "ok"]
            crossed += [(step.name, f"after-call:{action}") for action in calls]
            crossed.append((step.name, f"after-step:{step.name}"))
    return crossed


def _is_mutation(entry: dict[str, Any]) -> bool:
    return entry["kind"] == "call" and not entry["action"].startswith(READ_ONLY_PREFIXES)


def assert_killed_at(store: Store, sandbox: Any, run_id: str, point: str, since: int) -> None:
    """The process died where it said, by what it left: AWS's timeline and the run's steps."""
    where, _, kind = point.partition(":")
    steps = store.steps.list(run_id)
    if where == "after-call":
        done = [e["action"] for e in sandbox.control.timeline(since=since) if _is_mutation(e) and e.get("code") is None]
        assert done and done[-1] == kind, f"{point}: the mutations since the last kill were {done}"
    elif where == "after-step":
        ran = [s for s in steps if s.status == "done" or (s.status == "skipped" and s.detail)]
        assert ran and ran[-1].name == kind, (point, [(s.name, s.status) for s in steps])
        assert not [s.name for s in steps if s.status == "running"], point
    else:
        following = next(s for s in steps if s.status in {"waiting", "running"})
        assert (following.name, following.status) == (kind, "waiting"), (point, following)


async def run_chain(start: Any, chain: Chain, store: Store, sandbox: Any, settings: Settings) -> tuple[str, list[str]]:
    """Kill the rehearsal segment by segment, then resume it to its end; (run id, where each process died)."""
    points: list[str] = []
    run_id = ""
    since = last_seq(sandbox)
    for segment in chain.segments:
        kills = 0
        while segment.kills is None or kills < segment.kills:
            assert len(points) < MAX_PROCESSES, f"the rehearsal never ended; killed at {points}"
            args = rehearse_args(chain.database, chain.options) if not points else ["resume"]
            process = start(args, env_for(sandbox, settings, segment.failpoint))
            phases(sandbox, slow=segment.slow)
            code = await ended(process)
            if segment.kills is None and code in (0, 1):  # the run ended in this process: no boundary was left
                break
            point = kill_point(process, code)
            points.append(point)
            kills += 1
            run_id = run_id or the_run(store)
            assert_killed_at(store, sandbox, run_id, point, since)
            clone = clone_name(chain.database, run_id)
            locks = store.locks.held_by(run_id)  # never production's, before or after a restart
            assert locks and all(clone in lock for lock in locks), locks
            since = last_seq(sandbox)
    if chain.segments[-1].kills is not None:
        last = start(["resume"], env_for(sandbox, settings))
        phases(sandbox, slow=False)
        assert await ended(last) in (0, 1), last.output()
    return run_id, points


# ----- what must hold after any rehearsal, crashed or not -------------------------------------------------------------


def leftovers(rds: Any, run: Any) -> list[str]:
    """What remains of the rehearsal: anything tagged for it, and anything named after its clone (green included,
    whatever tags AWS copied onto it)."""
    clone = clone_name(run.database, run.id)
    named = [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]]
    named += [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]]
    named += [p["DBProxyName"] for p in rds.describe_db_proxies()["DBProxies"]]
    return tagged(rds, run.id) + [name for name in named if name.startswith(clone)]


def changed_names(call: dict[str, Any]) -> set[str]:
    """The resources a recorded mutation changes: its identifier and name parameters, by name or ARN (a
    deployment's source, what is tagged), not the source a restore reads, nor a proxy's target group by name."""
    names: set[str] = set()
    for key, value in (call.get("params") or {}).items():
        values = value if isinstance(value, list) else [value]
        if key == "Source" or (key.endswith(("Identifier", "Identifiers", "Name")) and not key.startswith("Source")):
            names |= {str(v) for v in values if key != "TargetGroupName"}
    return names


def assert_only_the_rehearsal_changed(sandbox: Any, run: Any, production: set[str]) -> None:
    """No mutation named a production resource, and each named (by its name or its ARN's) only what the rehearsal
    created; a target group's ARN carries no name, so it is checked against production's only."""
    clone = clone_name(run.database, run.id)
    deployment = {run.meta.get("deployment_id"), run.meta.get("deployment_name")}
    for call in (e for e in sandbox.control.timeline() if _is_mutation(e)):
        names = changed_names(call)
        assert names, f"the timeline does not say what {call['action']} changed: {call}"
        assert not names & production, f"{call['action']} changed production's {names & production}"
        named = {n.rsplit(":", 1)[-1] for n in names if ":target-group:" not in n}
        outside = {n for n in named if n != clone and not n.startswith(f"{clone}-") and n not in deployment}
        assert not outside, f"{call['action']} changed {outside}, which the rehearsal {run.id} did not create"


def assert_nothing_refused(sandbox: Any) -> None:
    """Every mutation a resumed process made was idempotent: none was refused (as already existing, already being
    deleted, in the wrong state), apart from the "already registered" a register-first retry expects."""
    refused = [
        (e["action"], e["code"])
        for e in sandbox.control.timeline()
        if _is_mutation(e) and e.get("code") and (e["action"], e["code"]) not in EXPECTED_REFUSALS
    ]
    assert refused == [], refused


@pytest.mark.parametrize("name", list(CHAINS))
async def test_killed_at_every_boundary_the_rehearsal_finishes_and_leaves_nothing(
    name, zygote, store, sandbox, production, rds, settings, tmp_path
):
    chain = CHAINS[name]
    with forked_bots(zygote, tmp_path) as start:
        run_id, points = await run_chain(start, chain, store, sandbox, settings)

    run = store.runs.get(run_id)
    assert run.status == "succeeded", run.error
    assert {s.status for s in store.steps.list(run_id)} <= {"done", "skipped"}
    assert points == chain.killed_at(boundaries_of(store, run_id)), "not killed once at each boundary"
    assert leftovers(rds, run) == []
    assert_only_the_rehearsal_changed(sandbox, run, production)
    assert_nothing_refused(sandbox)
    calls = successful_calls(sandbox)
    assert {action: calls.get(action, 0) for action in chain.mutations} == chain.mutations
    assert audited_mutations(store, run_id) == calls  # AWS saw what the bot recorded, no more
    for proxy, database in chain.serves.items():
        assert_proxy_serves(rds, proxy, database)
    audit = [a.action for a in store.audit.list(run_id=run_id)]
    assert audit.count("run:resumed") == len(points) and audit[-1] == "run:succeeded", audit
    assert "rehearsal_report" in run.meta


async def test_killed_around_and_in_the_teardown_of_a_failed_rehearsal_it_ends_failed_with_aws_reason(
    zygote, store, sandbox, production, rds, settings, tmp_path
):
    reason = "the extension postgis 2.5 blocks the upgrade to 16.4"
    with forked_bots(zygote, tmp_path) as start:
        # Killed once the run (and so the clone's name) exists, to arm the failing upgrade task before green does.
        first = start(rehearse_args(*ORDERS_PG), env_for(sandbox, settings, "after-step:restore_clone"))
        phases(sandbox, slow=False)
        assert await killed(first) == "after-step:restore_clone"
        run_id = the_run(store)
        sandbox.control.fail_provisioning(clone_name("orders-pg", run_id), reason, task="DB_ENGINE_VERSION_UPGRADE")
        # The upgrade task fails and the runner appends the teardown: killed before it starts, then in its middle
        # (the deployment deleted, the proxy being deleted, the clone not yet).
        for point in ("before-step:teardown_rehearsal", "after-call:DeleteDBProxy"):
            since = last_seq(sandbox)
            process = start(["resume"], env_for(sandbox, settings, point))
            phases(sandbox, slow=point.startswith("after-call:"))
            assert await killed(process) == point
            assert_killed_at(store, sandbox, run_id, point, since)
            assert store.runs.get(run_id).status == "compensating"
        last = start(["resume"], env_for(sandbox, settings))
        phases(sandbox, slow=False)
        code = await ended(last)

    run = store.runs.get(run_id)
    assert (code, run.status) == (1, "failed"), last.output()
    assert reason in (run.error or ""), run.error
    teardowns = [s for s in store.steps.list(run_id) if s.name == "teardown_rehearsal"]
    assert teardowns[-1].status == "done", [(s.name, s.status) for s in store.steps.list(run_id)]
    assert leftovers(rds, run) == []
    assert_only_the_rehearsal_changed(sandbox, run, production)
    assert_nothing_refused(sandbox)
    calls = successful_calls(sandbox)
    assert "SwitchoverBlueGreenDeployment" not in calls
    for action in ("CreateDBProxy", "CreateBlueGreenDeployment", "DeleteBlueGreenDeployment", "DeleteDBProxy"):
        assert calls[action] == 1, calls
    assert audited_mutations(store, run_id) == calls
    assert reason in run.meta["rehearsal_report"]
    assert_proxy_serves(rds, "orders-proxy", "orders-pg")
    assert instance(rds, "orders-pg")["EngineVersion"] == "15.7"
