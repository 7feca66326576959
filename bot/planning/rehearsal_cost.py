"""What a rehearsal costs, shown before it starts: the instances and storage it creates, the proxies, and how long it
runs. Pure: blue's size (as the gateway read it), the request and the rehearsal's plan in, a `RehearsalEstimate` out.
The CLI and the Slack confirmation show the same text (`RehearsalEstimate.lines`).

What is created follows AWS's rules: a point-in-time restore takes blue's storage and, unless asked, is Single-AZ
(RestoreDBInstanceToPointInTime); an Aurora clone gets one instance per blue member (the rehearsal creates them); a
blue/green deployment then creates green, a copy of the clone with the same classes and storage; one proxy per
production proxy. RDS bills instances per second with a 10-minute minimum ("On-Demand DB instances for Amazon RDS").

The durations are the bot's planning defaults (`PLANNING_DEFAULTS`, also in the README), not AWS figures: AWS
publishes none for restores, proxy creation or green provisioning, only that a switchover typically takes under a
minute. Every rehearsal measures the real ones and reports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.aws.rehearsal_sizing import DatabaseSize, MemberSize
from bot.planning.plan import Observed, Plan
from bot.planning.requests import RunRequest

MINUTE = 60.0
# Seconds each phase is expected to take, when nothing better is known.
PLANNING_DEFAULTS: dict[str, float] = {
    "restore": 20 * MINUTE,  # point-in-time restore to `available`, its first backup included
    "cluster_members": 10 * MINUTE,  # an Aurora clone's instances, created together once the cluster is available
    "proxy": 5 * MINUTE,  # a proxy `creating` -> `available` (several are created together)
    "registration": 2 * MINUTE,  # a target registered until AVAILABLE
    "green": 30 * MINUTE,  # green provisioned (a replica of the clone) until the deployment is AVAILABLE
    "upgrade": 20 * MINUTE,  # green's engine upgrade (the DB_ENGINE_VERSION_UPGRADE task)
    "switchover": 1 * MINUTE,  # AWS: "typically under a minute"
    "teardown": 10 * MINUTE,  # the deployment, both databases and the proxies deleted
}
BILLING_MINIMUM = 10 * MINUTE
ESTIMATE_NOTE = (
    "Estimates from the bot's planning defaults (README, Rehearsals), not AWS figures: the rehearsal measures the"
    f" real durations. Instances are billed per second, at least {BILLING_MINIMUM / MINUTE:.0f} minutes each;"
    " the proxies and storage for as long as they exist. Production is only read."
)


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class RehearsalEstimate:
    database: str
    engine: str  # "postgres 15.7 -> 16.4"
    strategy: str | None
    members: tuple[MemberSize, ...]  # the clone's instances; green copies them
    allocated_storage: int | None
    storage_type: str | None
    aurora: bool
    multi_az_source: bool
    proxies: tuple[str, ...]  # production proxies, one rehearsal proxy created like each
    phases: tuple[Phase, ...]
    green_phases: frozenset[str]  # the phases green exists for

    @property
    def seconds(self) -> float:
        return sum(phase.seconds for phase in self.phases)

    @property
    def instance_count(self) -> int:
        return 2 * len(self.members)

    @property
    def instance_hours(self) -> float:
        green = sum(phase.seconds for phase in self.phases if phase.name in self.green_phases)
        clone_seconds = len(self.members) * max(self.seconds, BILLING_MINIMUM)
        green_seconds = len(self.members) * max(green, BILLING_MINIMUM)
        return (clone_seconds + green_seconds) / 3600

    @property
    def classes(self) -> list[str]:
        return sorted({member.instance_class for member in self.members})

    @property
    def instances_text(self) -> str:
        if self.aurora:
            listed = ", ".join(
                f"{'writer' if m.writer else 'reader'} {m.instance_class} like {m.identifier}" for m in self.members
            )
            return (
                f"{self.instance_count} in all: the clone cluster's {len(self.members)} ({listed or 'none'}) and as"
                " many in green, its blue/green copy"
            )
        single = ", Single-AZ: blue is Multi-AZ" if self.multi_az_source else ""
        classes = ", ".join(self.classes) or "blue's class"
        return f"{self.instance_count} in all: the clone ({classes}{single}) and green, its blue/green copy"

    @property
    def storage_text(self) -> str:
        if self.aurora:
            used = f", about {self.allocated_storage} GiB now" if self.allocated_storage else ""
            return f"an Aurora cluster volume billed by what it uses{used}, for the clone and again for green"
        if self.allocated_storage is None:
            return "blue's allocated storage (AWS did not say how much), for the clone and again for green"
        kind = f" {self.storage_type}" if self.storage_type else ""
        return f"{self.allocated_storage} GiB{kind} for the clone, and the same for green"

    @property
    def proxies_text(self) -> str:
        if not self.proxies:
            return f"none ({self.database} is behind no proxy)"
        return f"{len(self.proxies)}, like {', '.join(self.proxies)}"

    @property
    def duration_text(self) -> str:
        parts = ", ".join(f"{phase.name} {duration(phase.seconds)}" for phase in self.phases)
        return f"about {duration(self.seconds)} ({parts})"

    @property
    def instance_time_text(self) -> str:
        return f"about {self.instance_hours:.1f} instance-hours of {', '.join(self.classes) or 'blue classes'}"

    def lines(self) -> list[str]:
        """The estimate as the CLI prints it (the Slack confirmation shows the same fields)."""
        strategy = f", strategy {self.strategy}" if self.strategy else ""
        return [
            f"Cost estimate for rehearsing {self.database} on a disposable clone ({self.engine}{strategy}):",
            f"  instances: {self.instances_text}",
            f"  storage: {self.storage_text}",
            f"  proxies created: {self.proxies_text}",
            f"  expected duration: {self.duration_text}",
            f"  instance time: {self.instance_time_text}",
            f"  {ESTIMATE_NOTE}",
        ]


def duration(seconds: float) -> str:
    minutes = round(seconds / MINUTE)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def cost_estimate(
    request: RunRequest,
    observed: Observed,
    plan: Plan,
    size: DatabaseSize,
    defaults: dict[str, float] = PLANNING_DEFAULTS,
) -> RehearsalEstimate:
    """The estimate for rehearsing `observed.database` as `plan` would."""
    database = observed.database
    kinds = {step.kind for step in plan.steps}
    proxies = tuple(sorted({registration.proxy for registration in observed.registrations}))
    workaround = plan.strategy == "workaround" and bool(proxies)
    upgrade = request.engine_version is not None and request.engine_version != database.engine_version
    restore = defaults["restore"] + (defaults["cluster_members"] if size.kind == "cluster" else 0.0)
    phases = [Phase("restore", restore)]
    if "create_clone_proxies" in kinds:
        phases.append(Phase("proxies", defaults["proxy"] + defaults["registration"]))
    # The workaround detaches the clone's proxy around the create and the switchover, registering it again after.
    reattach = defaults["registration"] if workaround else 0.0
    phases.append(Phase("green", defaults["green"] + reattach))
    if upgrade:
        phases.append(Phase("engine upgrade", defaults["upgrade"]))
    phases += [Phase("switchover", defaults["switchover"] + reattach), Phase("teardown", defaults["teardown"])]
    target = f" -> {request.engine_version}" if upgrade else ""
    return RehearsalEstimate(
        database=database.identifier,
        engine=f"{database.engine} {database.engine_version}{target}",
        strategy=plan.strategy,
        members=size.members,
        allocated_storage=size.allocated_storage,
        storage_type=size.storage_type,
        aurora=size.kind == "cluster",
        multi_az_source=size.multi_az and size.kind == "instance",
        proxies=proxies,
        phases=tuple(phases),
        green_phases=frozenset({"green", "engine upgrade", "switchover", "teardown"}),
    )
