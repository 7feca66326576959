"""Pure planning of a rehearsal: restore a disposable clone of blue, then tear it down. No I/O here.

The clone is `clone_name(db, run id)`; the run id is not known when the plan is built, so the commands say RUN.
"""

from __future__ import annotations

from bot.aws.rehearsal_clones import REHEARSAL_TAG
from bot.errors import BadRequest
from bot.planning.plan import Observed, Plan, StepSpec
from bot.planning.requests import RunRequest


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
    if database.kind != "instance" or database.cluster:
        raise BadRequest(
            f"{database.identifier}: rehearsals of Aurora clusters are not built yet.",
            fix="Rehearse a DB instance, or rehearse the cluster by hand for now.",
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
        *teardown_steps(database.identifier),
    ]
    facts = {"source": database.identifier, "engine": f"{database.engine} {database.engine_version}"}
    return Plan(
        "rehearse",
        database.identifier,
        None,
        "a disposable clone; production is only read",
        tuple(steps),
        facts,
        "none in production: only the clone's proxy is detached",
    )
