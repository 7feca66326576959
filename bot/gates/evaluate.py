"""The engine's side of the prerequisites: evaluate them for a `create` plan, refuse it when one fails.

`Engine.plan` and `Engine.start` call `check_prerequisites` after planning and before anything is recorded, so a
failed prerequisite is a `GatesFailed` (a BadRequest: the CLI exits 2, Slack refuses ephemerally) with no AWS
change and no run.
"""

from __future__ import annotations

from dataclasses import replace

from bot.aws.database_reads import DatabaseReads
from bot.gates.model import GateResult, GatesFailed, failed
from bot.gates.prerequisites import CreateRequest, evaluate_prerequisites
from bot.planning.plan import Observed, Plan
from bot.planning.requests import RunRequest


def create_request(request: RunRequest, observed: Observed, strategy: str | None) -> CreateRequest:
    return CreateRequest(
        database=observed.database,
        engine_version=request.engine_version,
        parameter_group=request.parameter_group,
        strategy=strategy,
        mode=request.mode,
        registrations=tuple(observed.registrations),
        deployments=tuple(observed.deployments),
    )


def refusal(database: str, results: list[GateResult]) -> GatesFailed:
    failures = failed(results)
    first = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return GatesFailed(
        f"create {database} refused: prerequisite {first.name} failed: {first.reason}{more}. Nothing was changed.",
        results,
        fix=first.fix,
    )


async def check_prerequisites(gateway: DatabaseReads, request: RunRequest, observed: Observed, plan: Plan) -> Plan:
    """`plan` with its prerequisites for a `create` (other plans unchanged). GatesFailed when one fails."""
    if request.kind != "create":
        return plan
    results = await evaluate_prerequisites(gateway, create_request(request, observed, plan.strategy))
    if failed(results):
        raise refusal(observed.database.identifier, results)
    return replace(plan, gates=tuple(results))
