"""Pure planning of a rehearsal: restore a disposable clone of blue, then tear it down. No I/O here.

The clone is `clone_name(db, run id)`; the run id is not known when the plan is built, so the commands say RUN.
"""

from __future__ import annotations

from bot.aws.models import Registration
from bot.aws.rehearsal_clones import REHEARSAL_TAG
from bot.errors import BadRequest
from bot.planning.plan import Observed, Plan, StepSpec, workaround_create_steps
from bot.planning.requests import RunRequest
from bot.planning.strategy import choose_strategy


def clone_name(database: str, run_id: str) -> str:
    """`<db>-rh-<short run id>`, within RDS's 63 characters."""
    return f"{database[:48]}-rh-{run_id[2:10]}"


def teardown_steps(database: str) -> list[StepSpec]:
    """The durable last step: also appended by the runner when a rehearsal fails or is cancelled."""
    clone = f"{database}-rh-RUN"
    return [
        StepSpec(
            "teardown_rehearsal",
            "Delete everything the rehearsal created and check nothing tagged for it remains",
            commands=(
                f"aws rds delete-db-instance --db-instance-identifier {clone} --skip-final-snapshot"
                " --delete-automated-backups",
            ),
        )
    ]


def plan_rehearsal(request: RunRequest, observed: Observed) -> Plan:
    database = observed.database
    if database.kind == "instance" and database.cluster:
        raise BadRequest(
            f"{database.identifier} is a member of Aurora cluster {database.cluster}.",
            fix=f"Rehearse the cluster: `rehearse {database.cluster}`.",
        )
    clone = f"{database.identifier}-rh-RUN"
    steps = [
        StepSpec(
            "restore_clone",
            f"Restore {database.identifier}'s latest restorable state into a disposable clone",
            commands=(
                f"aws rds restore-db-instance-to-point-in-time --source-db-instance-identifier {database.identifier}"
                f" --target-db-instance-identifier {clone} --use-latest-restorable-time"
                f" --tags Key={REHEARSAL_TAG},Value=RUN",
            ),
        ),
        StepSpec(
            "wait_clone_available",
            "Wait for the clone to be available",
            commands=(f"aws rds describe-db-instances --db-instance-identifier {clone}",),
        ),
    ]
    strategy, reason = choose_strategy(request.mode, database, observed.registrations)
    if observed.registrations:
        proxies = sorted({r.proxy for r in observed.registrations})
        steps.append(
            StepSpec(
                "create_clone_proxies",
                f"Create a proxy for the clone like {', '.join(proxies)}, and register the clone",
                commands=tuple(f"aws rds create-db-proxy --db-proxy-name {clone} (settings of {p})" for p in proxies),
            )
        )
    steps.append(
        StepSpec("rehearsal_prerequisites", "Check create's prerequisites on the clone, as production's create does")
    )
    if strategy == "workaround":
        clone_registrations = [Registration(clone)] if observed.registrations else []
        steps += workaround_create_steps(clone_registrations, clone, database.kind)
    else:
        steps += [
            StepSpec(
                "create_deployment",
                "Create the clone's blue/green deployment"
                + (" with its proxy attached" if strategy == "native" else ""),
                {"strategy": strategy, "fallback": request.mode == "auto" and strategy == "native"},
            ),
            StepSpec("wait_deployment_available", "Wait for the deployment to be AVAILABLE"),
        ]
    steps += [
        StepSpec(
            "rehearsal_readiness", "Check readiness on the clone's deployment, as production does before a switchover"
        ),
        StepSpec("rehearse_switchover", "Switch the clone over (no approval: production does not change)"),
        *teardown_steps(database.identifier),
    ]
    facts = {"source": database.identifier, "engine": f"{database.engine} {database.engine_version}"}
    return Plan(
        "rehearse",
        database.identifier,
        strategy,
        f"on a disposable clone, production only read; {reason}",
        tuple(steps),
        facts,
        "none in production: only the clone's proxy is detached",
    )
