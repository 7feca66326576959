"""Pure planning: a request plus the observed AWS state becomes typed steps, each with its `aws rds` equivalent.

No I/O here: `bot.workflow.engine` observes AWS, this module decides. The same functions rebuild the workaround's
steps when the `auto` strategy falls back at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.aws.commands import aws_command, target_params
from bot.aws.environment_tags import GREEN_TAG
from bot.aws.models import Database, Deployment, ProxyTarget, Registration, major_version
from bot.errors import BadRequest
from bot.gates.model import GateResult
from bot.planning.requests import RunRequest
from bot.planning.strategy import choose_strategy, switchover_strategy

PLAN_VERSION = 1


@dataclass(frozen=True, slots=True)
class StepSpec:
    kind: str  # key in the step catalogue (bot.workflow.steps.CATALOGUE)
    title: str
    params: dict[str, object] = field(default_factory=dict)
    commands: tuple[str, ...] = ()  # the equivalent aws CLI commands
    disruptive: bool = False  # True when it takes a proxy's target away

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "params": self.params,
            "commands": list(self.commands),
            "disruptive": self.disruptive,
        }


@dataclass(frozen=True, slots=True)
class Observed:
    """What the engine read from AWS before planning."""

    database: Database
    registrations: list[Registration]
    targets: list[ProxyTarget]
    deployments: list[Deployment]  # whose source is the database (newest first)
    switched_deployments: list[Deployment] = field(default_factory=list)  # whose target is the database
    green: Database | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    kind: str
    database: str
    strategy: str | None  # "native" | "workaround" | "direct" (no proxy) | None (no proxy decision)
    reason: str
    steps: tuple[StepSpec, ...]
    facts: dict[str, str]
    detached_estimate: str | None
    version: int = PLAN_VERSION
    gates: tuple[GateResult, ...] = ()  # create: the prerequisites, evaluated by `bot.gates.evaluate`
    rehearsal: tuple[str, ...] = ()  # the latest rehearsal of the database and version (`Engine.plan` adds it)


def _register_commands(registrations: list[Registration], database_id: str, kind: str) -> tuple[str, ...]:
    return tuple(aws_command("RegisterDBProxyTargets", target_params(r, database_id, kind)) for r in registrations)


def _deregister_commands(registrations: list[Registration], database_id: str, kind: str) -> tuple[str, ...]:
    return tuple(aws_command("DeregisterDBProxyTargets", target_params(r, database_id, kind)) for r in registrations)


def _describe_targets(registrations: list[Registration]) -> tuple[str, ...]:
    return tuple(
        aws_command("DescribeDBProxyTargets", {"DBProxyName": r.proxy, "TargetGroupName": r.target_group})
        for r in registrations
    )


def _labels(registrations: list[Registration]) -> str:
    return ", ".join(r.label for r in registrations)


def workaround_create_steps(
    registrations: list[Registration], database_id: str, kind: str = "instance"
) -> list[StepSpec]:
    """Runbook steps 1-3, then the wait for AVAILABLE."""
    return [
        StepSpec(
            "detach",
            f"Deregister {database_id} from {_labels(registrations)}",
            commands=_deregister_commands(registrations, database_id, kind),
            disruptive=True,
        ),
        StepSpec(
            "create_deployment",
            "Create the blue/green deployment",
            {"strategy": "workaround"},
            commands=("aws rds create-blue-green-deployment --blue-green-deployment-name NAME --source ARN ...",),
        ),
        StepSpec(
            "reattach",
            f"Register {database_id} with {_labels(registrations)} again",
            commands=_register_commands(registrations, database_id, kind) + _describe_targets(registrations),
        ),
        StepSpec(
            "wait_deployment_available",
            "Wait for the deployment to be AVAILABLE",
            commands=("aws rds describe-blue-green-deployments --blue-green-deployment-identifier ID",),
        ),
    ]


def compensation_steps(database_id: str, detached: list[str], kind: str = "instance") -> list[StepSpec]:
    """What the runner appends when a step fails while proxies (`detached`, by label: "proxy" or
    "proxy/target-group") have no target: register the database with them again, only where a window is still open,
    until each has its target back or an operator abandons it (the step never gives up by itself)."""
    registrations = [Registration(*label.split("/", 1)) for label in detached]
    return [
        StepSpec(
            "reattach",
            f"Compensate: register {database_id} with {', '.join(detached)} again (until it has a target)",
            {"only_open": True},
            commands=_register_commands(registrations, database_id, kind) + _describe_targets(registrations),
        )
    ]


def _create_command(request: RunRequest, database: Database) -> str:
    params: dict[str, object] = {"BlueGreenDeploymentName": "NAME", "Source": database.arn}
    if request.engine_version:
        params["TargetEngineVersion"] = request.engine_version
    if request.parameter_group:
        key = "TargetDBClusterParameterGroupName" if database.kind == "cluster" else "TargetDBParameterGroupName"
        params[key] = request.parameter_group
    return aws_command("CreateBlueGreenDeployment", params)


def build_plan(request: RunRequest, observed: Observed, *, switchover_timeout: int = 300) -> Plan:
    builders = {
        "create": _plan_create,
        "upgrade": _plan_upgrade,
        "switchover": _plan_switchover,
        "cleanup": _plan_cleanup,
        "rollback": _plan_rollback,
    }
    return builders[request.kind](request, observed, switchover_timeout)


def _facts(observed: Observed) -> dict[str, str]:
    database = observed.database
    facts = {
        "database": f"{database.identifier} ({'Aurora cluster' if database.is_aurora else 'DB instance'})",
        "engine": f"{database.engine} {database.engine_version}",
        "status": database.status,
        "proxies": _labels(observed.registrations) or "none",
        "target health": ", ".join(f"{t.proxy}:{t.rds_resource_id}={t.state}" for t in observed.targets) or "n/a",
    }
    if observed.deployments:
        deployment = observed.deployments[0]
        facts["deployment"] = f"{deployment.identifier} ({deployment.status})"
    if observed.green:
        facts["green"] = f"{observed.green.identifier} {observed.green.engine_version} ({observed.green.status})"
    return facts


def _plan_create(request: RunRequest, observed: Observed, _timeout: int) -> Plan:
    database = observed.database
    if database.kind == "instance" and database.cluster:
        raise BadRequest(
            f"{database.identifier} is a member of Aurora cluster {database.cluster}.",
            fix=f"Use the cluster: `create {database.cluster}`.",
        )
    # Another deployment of this source is the "no other deployment" prerequisite (bot/gates/prerequisites.py).
    if request.engine_version and request.engine_version == database.engine_version:
        raise BadRequest(f"{database.identifier} already runs {database.engine_version}.", fix="Pick a newer version.")
    strategy, reason = choose_strategy(request.mode, database, observed.registrations)
    registrations = observed.registrations
    preflight = StepSpec(
        "preflight_create",
        "Check the database, its proxies and their health",
        commands=_describe_targets(observed.registrations),
    )
    wait = StepSpec(
        "wait_deployment_available",
        "Wait for the deployment to be AVAILABLE",
        commands=("aws rds describe-blue-green-deployments --blue-green-deployment-identifier ID",),
    )
    create_command = (_create_command(request, database),)
    estimate = None
    if strategy == "workaround":
        steps = [preflight, *workaround_create_steps(registrations, database.identifier, database.kind)]
        steps[2] = StepSpec(steps[2].kind, steps[2].title, steps[2].params, create_command)
        estimate = (
            f"{_labels(registrations)} will have no target from the deregistration until {database.identifier} is"
            " AVAILABLE again: the creation call plus the registration (tens of seconds to minutes at AWS)"
        )
    else:
        steps = [
            preflight,
            StepSpec(
                "create_deployment",
                "Create the blue/green deployment" + (" with the proxy attached" if strategy == "native" else ""),
                {"strategy": strategy, "fallback": request.mode == "auto" and strategy == "native"},
                commands=create_command,
            ),
            wait,
        ]
        if strategy == "native":
            estimate = "none: the proxy stays attached (unless AWS refuses and the bot falls back to the workaround)"
    return Plan("create", database.identifier, strategy, reason, tuple(steps), _facts(observed), estimate)


def _plan_upgrade(request: RunRequest, observed: Observed, _timeout: int) -> Plan:
    database = observed.database
    deployment = next((d for d in observed.deployments if d.status == "AVAILABLE"), None)
    if deployment is None:
        raise BadRequest(
            f"{database.identifier} has no AVAILABLE blue/green deployment to upgrade.",
            fix=f"Create one: `create {database.identifier}` (optionally with --engine-version).",
        )
    green = observed.green
    target = str(request.engine_version)
    if green and green.engine_version == target:
        raise BadRequest(f"green {green.identifier} already runs {target}.")
    green_id = green.identifier if green else "GREEN"
    allow_major = green is not None and major_version(green.engine, target) != green.major_version
    modify = aws_command(
        "ModifyDBCluster" if database.is_aurora else "ModifyDBInstance",
        {
            ("DBClusterIdentifier" if database.is_aurora else "DBInstanceIdentifier"): green_id,
            "EngineVersion": target,
            "AllowMajorVersionUpgrade": allow_major or None,
            "ApplyImmediately": True,
        },
    )
    steps = (
        StepSpec("locate_deployment", "Find the deployment and its green database", {"expect": "not_switched"}),
        StepSpec("modify_green_version", f"Upgrade green to {target}", commands=(modify,)),
        StepSpec("wait_green_version", f"Wait for green to be available at {target}"),
    )
    return Plan("upgrade", database.identifier, None, "only green changes; blue and its proxies are untouched",
                steps, _facts(observed), "none: blue and its proxies are untouched")  # fmt: skip


def _plan_switchover(request: RunRequest, observed: Observed, default_timeout: int) -> Plan:
    database = observed.database
    deployment = next((d for d in observed.deployments if d.status == "AVAILABLE"), None)
    if deployment is None:
        states = ", ".join(f"{d.identifier} {d.status}" for d in observed.deployments) or "none"
        raise BadRequest(
            f"{database.identifier} has no AVAILABLE blue/green deployment to switch over (found: {states}).",
            fix=f"Create one with `create {database.identifier}` and wait for it to be AVAILABLE.",
        )
    strategy, reason = switchover_strategy(request.mode, observed.registrations, deployment)
    timeout = request.switchover_timeout or default_timeout
    registrations = observed.registrations
    switch = StepSpec(
        "switchover",
        "Switch over",
        {"timeout": timeout},
        commands=(
            aws_command(
                "SwitchoverBlueGreenDeployment",
                {"BlueGreenDeploymentIdentifier": deployment.identifier, "SwitchoverTimeout": timeout},
            ),
        ),
        disruptive=True,
    )
    steps = [
        StepSpec("preflight_switchover", "Check deployment, green and proxy health", {"timeout": timeout}),
        StepSpec("approval", "Approval by a second person", {"kind": "switchover"}),
        StepSpec("maintenance_window", "Maintenance window"),
    ]
    estimate = None
    if strategy == "workaround":
        steps += [
            StepSpec(
                "detach",
                f"Deregister {database.identifier} from {_labels(registrations)}",
                commands=_deregister_commands(registrations, database.identifier, database.kind),
                disruptive=True,
            ),
            switch,
            StepSpec(
                "reattach",
                f"Register the new primary with {_labels(registrations)}",
                commands=_register_commands(registrations, database.identifier, database.kind)
                + _describe_targets(registrations),
            ),
        ]
        estimate = (
            f"{_labels(registrations)}: from the deregistration until the new primary is AVAILABLE: the switchover"
            " (seconds to a minute) plus the registration; the bot polls every 0.2 s inside that window"
        )
    elif strategy == "native":
        steps += [
            switch,
            StepSpec(
                "verify_native_targets",
                f"Verify {_labels(registrations)} moved to the new primary",
                commands=_describe_targets(registrations),
            ),
        ]
        estimate = "AWS keeps the proxy attached; clients reconnect once the switchover completes"
    else:
        steps.append(switch)
    steps.append(drift_step(database, fix=request.fix_drift))
    return Plan("switchover", database.identifier, strategy, reason, tuple(steps), _facts(observed), estimate)


def drift_step(database: Database, *, fix: bool) -> StepSpec:
    """The drift report after a switchover; with `fix` (--fix-drift) it also restores deletion protection and tags
    on the new primary where old blue had them (read from AWS at run time: KEY=VALUE below)."""
    identifier = database.identifier
    if database.is_aurora:
        reads = [aws_command("DescribeDBClusters", {"DBClusterIdentifier": name}) for name in (f"{identifier}-old1",
                 identifier)]  # fmt: skip
    else:
        reads = [aws_command("DescribeDBInstances", {"DBInstanceIdentifier": name}) for name in (f"{identifier}-old1",
                 identifier)]  # fmt: skip
    reads.append(aws_command("ListTagsForResource", {"ResourceName": database.arn}))
    title = "Compare old blue and the new primary: settings that did not carry over"
    if not fix:
        return StepSpec("drift_report", title, commands=tuple(reads))
    key = "DBClusterIdentifier" if database.is_aurora else "DBInstanceIdentifier"
    fixes = (
        aws_command("ModifyDBCluster" if database.is_aurora else "ModifyDBInstance",
                    {key: identifier, "DeletionProtection": True}),
        aws_command("AddTagsToResource", {"ResourceName": database.arn, "Tags": [{"Key": "KEY", "Value": "VALUE"}]}),
    )  # fmt: skip
    title += "; --fix-drift: restore old blue's deletion protection and tags on the new primary where they differ"
    return StepSpec("drift_report", title, commands=(*reads, *fixes))  # the step reads fix_drift from the run


def _plan_cleanup(request: RunRequest, observed: Observed, _timeout: int) -> Plan:
    database = observed.database
    if not observed.switched_deployments:
        raise BadRequest(
            f"{database.identifier} has no switched-over blue/green deployment to clean up.",
            fix=f"Before a switchover, use `rollback {database.identifier}`.",
        )
    deployment = observed.switched_deployments[0]
    steps = _removal_steps(deployment, delete_target=False)
    if request.delete_old:
        old = deployment.source_arn.rsplit(":", 1)[-1]
        steps.append(StepSpec("approval", f"Approval to delete {old}", {"kind": "delete_old"}))
        if database.is_aurora:
            # AWS refuses DeleteDBCluster while a member is not `deleting`. The members are read from AWS at run
            # time (MEMBER below); a cluster member takes no final snapshot, the cluster's holds the data.
            steps.append(
                StepSpec(
                    "delete_old_members",
                    f"Delete every member instance of {old}, readers first, then the writer (no snapshots)",
                    commands=(
                        aws_command("DeleteDBInstance", {"DBInstanceIdentifier": "MEMBER", "SkipFinalSnapshot": True}),
                    ),
                )
            )
        steps += [
            StepSpec(
                "delete_old_blue",
                f"Delete old blue {old} with a final snapshot",
                commands=(
                    aws_command(
                        "DeleteDBCluster" if database.is_aurora else "DeleteDBInstance",
                        {
                            ("DBClusterIdentifier" if database.is_aurora else "DBInstanceIdentifier"): old,
                            "FinalDBSnapshotIdentifier": f"{old}-final-RUN",
                        },
                    ),
                ),
            ),
            StepSpec("wait_old_blue_gone", f"Wait for {old} to be deleted"),
        ]
    return Plan("cleanup", database.identifier, None, "after a switchover", tuple(steps), _facts(observed), None)


def _plan_rollback(request: RunRequest, observed: Observed, _timeout: int) -> Plan:
    database = observed.database
    deployment = next((d for d in observed.deployments if not d.switched_over and d.status != "DELETING"), None)
    if deployment is None:
        raise BadRequest(
            f"{database.identifier} has no blue/green deployment that can be rolled back.",
            fix="After a switchover, use `cleanup`; the old blue database is kept as `<name>-old1`.",
        )
    steps = [
        *_removal_steps(deployment, delete_target=True),
        StepSpec("ensure_registered", f"Make sure every proxy points at {database.identifier}"),
    ]
    return Plan("rollback", database.identifier, None, "before a switchover", tuple(steps), _facts(observed), None)


def _green_marks(deployment: Deployment) -> tuple[str, ...]:
    """The tag the IAM policy requires on green before AWS deletes it with the deployment, one command per database
    of green (an Aurora cluster and its instances)."""
    green = [m.target for m in deployment.members if m.target] or [deployment.target_arn or "GREEN_ARN"]
    tags = [{"Key": GREEN_TAG, "Value": "true"}]
    return tuple(aws_command("AddTagsToResource", {"ResourceName": arn, "Tags": tags}) for arn in dict.fromkeys(green))


def _removal_steps(deployment: Deployment, *, delete_target: bool) -> list[StepSpec]:
    """Find, delete and wait out a deployment: after a switchover (cleanup) both databases stay; before one
    (rollback, `delete_target`) green goes with it."""
    return [
        StepSpec(
            "locate_deployment",
            "Find the deployment" if delete_target else "Find the switched-over deployment",
            {"expect": "not_switched" if delete_target else "switched"},
        ),
        StepSpec(
            "delete_deployment",
            f"Tag green {GREEN_TAG}, then delete the deployment and its green resources"
            if delete_target
            else "Delete the deployment (keeping both databases)",
            {"delete_target": delete_target},
            commands=(
                *(_green_marks(deployment) if delete_target else ()),
                aws_command(
                    "DeleteBlueGreenDeployment",
                    {"BlueGreenDeploymentIdentifier": deployment.identifier, "DeleteTarget": delete_target},
                ),
            ),
        ),
        StepSpec("wait_deployment_gone", "Wait for the deployment to be deleted"),
    ]
