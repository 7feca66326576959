"""`cleanup --rehearsals`: delete what rehearsals left behind, found by their tag `bluegreen-bot:rehearsal` (any run).

A rehearsal deletes what it created in its durable teardown; this sweep is for what a teardown could not finish (a
teardown that failed, a store lost with its runs). It deletes only resources that carry the tag, read again right
before each call, and nothing of a rehearsal still running in this bot's store (that rehearsal tears it down itself).

Order, as AWS requires: blue/green deployments whose source or target is a clone first (green deleted with them
unless switched over: AWS refuses DeleteTarget after SWITCHOVER_COMPLETED), then proxies, then each Aurora clone's
instances before the cluster (AWS refuses a cluster whose instances are not being deleted), then instances. No
final snapshots. It waits until what it deleted is gone, then lists the tagged resources again: whatever is still
there is reported with the command that deletes it by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.aws import mutation_guard
from bot.aws.commands import aws_command
from bot.aws.gateway import AwsGateway
from bot.aws.models import Deployment, identifier_from_arn
from bot.aws.rehearsal_clones import REHEARSAL_TAG, TaggedResource
from bot.errors import AccessDenied, AwsError, InvalidState, NotFound
from bot.workflow import polling
from storage import Store

log = logging.getLogger(__name__)

SWEEP_COMMAND = "python -m bot cleanup --rehearsals"
DEFAULT_TIMEOUT = 3600.0  # deleting an instance or a cluster takes minutes on AWS
GONE = object()  # what `_tag_now` says of a resource that no longer exists
Fetch = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Leftover:
    """One resource to delete: the AWS call that deletes it, and the rehearsal (run id) its tag names."""

    kind: str  # "deployment", "proxy", "cluster", "cluster member" or "instance"
    identifier: str
    run_id: str
    action: str
    params: dict[str, Any]
    status: str = ""

    @property
    def command(self) -> str:
        return aws_command(self.action, self.params)


def leftover(resource: TaggedResource, run_id: str | None = None) -> Leftover:
    """The deletion of a tagged instance, cluster member, cluster or proxy, without a final snapshot."""
    run = resource.run_id if run_id is None else run_id
    if resource.kind == "proxy":
        return Leftover("proxy", resource.identifier, run, "DeleteDBProxy", {"DBProxyName": resource.identifier})
    if resource.kind == "cluster":
        params = {"DBClusterIdentifier": resource.identifier, "SkipFinalSnapshot": True}
        return Leftover("cluster", resource.identifier, run, "DeleteDBCluster", params, resource.status)
    params = {"DBInstanceIdentifier": resource.identifier, "SkipFinalSnapshot": True}
    if resource.cluster:  # a cluster member has no automated backups of its own
        return Leftover("cluster member", resource.identifier, run, "DeleteDBInstance", params, resource.status)
    params["DeleteAutomatedBackups"] = True
    return Leftover("instance", resource.identifier, run, "DeleteDBInstance", params, resource.status)


def deployment_leftover(deployment: Deployment, run_id: str, *, delete_target: bool) -> Leftover:
    params = {"BlueGreenDeploymentIdentifier": deployment.identifier, "DeleteTarget": delete_target}
    return Leftover("deployment", deployment.identifier, run_id, "DeleteBlueGreenDeployment", params, deployment.status)


@dataclass(frozen=True, slots=True)
class Outcome:
    leftover: Leftover
    verdict: str  # "would delete", "deleted", "already deleting", "gone", "untouched", "skipped", "failed"
    note: str = ""
    fix: str = ""

    def line(self) -> str:
        item = self.leftover
        text = f"{self.verdict:<16} {item.kind:<14} {item.identifier}  (rehearsal {item.run_id})"
        if self.note:
            text += f": {self.note}"
        if self.verdict in {"would delete", "deleted"}:
            text += f"\n{'':<17}$ {item.command}"
        if self.fix:
            text += f"\n{'':<17}fix: {self.fix}"
        return text


@dataclass(slots=True)
class SweepResult:
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    remaining: list[Leftover] = field(default_factory=list)  # tagged, not skipped, still there at the end

    @property
    def failed(self) -> list[Leftover]:
        """What could not be deleted: refused, or still there after the sweep."""
        items = [o.leftover for o in self.outcomes if o.verdict == "failed"] + self.remaining
        return list({(i.kind, i.identifier): i for i in items}.values())

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, *verdicts: str) -> int:
        return sum(o.verdict in verdicts for o in self.outcomes)

    def still_there(self) -> list[Outcome]:
        """A line for each resource still there after the sweep that no refusal already explains."""
        refused = {(o.leftover.kind, o.leftover.identifier) for o in self.outcomes if o.verdict == "failed"}
        return [
            Outcome(item, "still there", item.status or "present", f"delete it by hand: `{item.command}`")
            for item in self.remaining
            if (item.kind, item.identifier) not in refused
        ]

    def summary(self) -> str:
        skipped = self.count("skipped")
        tail = f"; {skipped} skipped (a rehearsal still running deletes them itself)" if skipped else ""
        if self.dry_run:
            found = self.count("would delete", "already deleting")
            if not found:
                return f"dry run: nothing tagged {REHEARSAL_TAG} to delete{tail}; nothing changed"
            return (
                f"dry run: {found} resource(s) tagged {REHEARSAL_TAG} to delete{tail}; nothing changed."
                f" `{SWEEP_COMMAND}` deletes them."
            )
        deleted = self.count("deleted", "already deleting")
        if self.ok:
            owned = " but what running rehearsals own" if skipped else ""
            return f"rehearsal sweep: {deleted} deleted{tail}; nothing tagged {REHEARSAL_TAG} is left{owned}"
        return (
            f"rehearsal sweep: {deleted} deleted{tail}; {len(self.failed)} could not be deleted. Do what each line's"
            f" fix says, then run `{SWEEP_COMMAND}` again (it deletes only what still carries the tag)."
        )


async def sweep_rehearsals(
    gateway: AwsGateway,
    store: Store,
    *,
    actor: str,
    dry_run: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> SweepResult:
    """Delete (with `dry_run`: only list) every rehearsal leftover in the gateway's account and region. Each
    deletion is audited as `actor`; `on_outcome` hears of each resource as it is dealt with."""
    sweep = _Sweep(gateway, store, actor, dry_run, timeout, on_outcome)
    await sweep.run()
    return sweep.result


class _Sweep:
    def __init__(
        self,
        gateway: AwsGateway,
        store: Store,
        actor: str,
        dry_run: bool,
        timeout: float,
        on_outcome: Callable[[Outcome], None] | None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.actor = actor
        self.dry_run = dry_run
        self.timeout = timeout
        self.on_outcome = on_outcome
        self.result = SweepResult(dry_run)
        self.active = {run.id: run for run in store.runs.unfinished() if run.kind == "rehearse"}
        self.deleting: list[tuple[Leftover, Fetch]] = []
        self.greens: dict[str, str] = {}  # green database -> the deployment deleted with it (DeleteTarget)

    async def run(self) -> None:
        found = await self.gateway.tagged_rehearsal_resources()
        databases = {r.arn: r for r in found if r.kind != "proxy"}
        for deployment in await self.gateway.deployments_touching(set(databases)):
            await self._deployment(deployment, databases)
        if not self.dry_run and self.deleting:
            await self._wait_gone()  # green goes with its deployment: list again once the deployments are gone
            found = await self.gateway.tagged_rehearsal_resources()
        clusters = {r.identifier: r for r in found if r.kind == "cluster"}
        instances = {r.identifier: r for r in found if r.kind == "instance"}
        for resource in found:
            if resource.kind == "proxy":
                await self._one(resource, self.gateway.proxy, self.gateway.delete_proxy_clone)
        for cluster in clusters.values():
            await self._cluster(cluster, instances)
        for resource in instances.values():
            if resource.cluster is None:
                await self._one(resource, self.gateway.instance, self.gateway.delete_instance_clone)
            elif resource.cluster not in clusters and not self._skipped(leftover(resource)):
                item = leftover(resource)
                self._record(
                    item, "failed", f"an instance of Aurora cluster {resource.cluster}, which does not carry the tag:"
                    " not touched", f"if it is a rehearsal's, delete it by hand: `{item.command}`",
                )  # fmt: skip
        if not self.dry_run:
            await self._wait_gone()
            await self._left()

    # ----- each kind of resource --------------------------------------------------------------------------------

    async def _deployment(self, deployment: Deployment, databases: dict[str, TaggedResource]) -> None:
        run_id = (databases.get(deployment.source_arn) or databases[deployment.target_arn or ""]).run_id
        delete_target = not deployment.switched_over and deployment.target_arn in databases
        item = deployment_leftover(deployment, run_id, delete_target=delete_target)
        note = f"of {identifier_from_arn(deployment.source_arn)}"
        if delete_target:
            green = identifier_from_arn(deployment.target_arn or "")
            self.greens[green] = deployment.identifier
            note += f", with its green {green}"
        if self._skipped(item) or self._listed(item, note):
            return

        async def fresh() -> Deployment | None:
            return await self.gateway.deployment(deployment.identifier)

        current = await fresh()
        if current is None:
            return self._record(item, "gone")
        # Each database of the pair that is still there (green only if it goes too) must still carry the tag.
        for arn in (current.source_arn, current.target_arn if delete_target else None):
            if arn and (tag := await self._tag_now(arn)) is not GONE and tag != run_id:
                return self._record(item, "untouched", f"{identifier_from_arn(arn)} no longer carries the tag")
        call = lambda: self.gateway.delete_deployment(deployment.identifier, delete_target=delete_target)  # noqa: E731
        await self._delete(item, current, call, fresh, note)

    async def _cluster(self, cluster: TaggedResource, instances: dict[str, TaggedResource]) -> None:
        item = leftover(cluster)
        members = [
            instances.get(m) or TaggedResource("instance", m, "", "", "", cluster=cluster.identifier)
            for m in cluster.members
        ]
        if self._skipped(item):
            for member in members:
                self._skipped(leftover(member, cluster.run_id))
            return
        strangers = [m.identifier for m in members if m.run_id != cluster.run_id]
        if strangers:
            fix = f"if they are a rehearsal's, delete them by hand, then the cluster: `{item.command}`"
            note = f"its instance(s) {', '.join(strangers)} do not carry {REHEARSAL_TAG}={cluster.run_id}: not touched"
            return self._record(item, "failed", note, fix)
        if self.dry_run:
            for member in members:
                self._listed(leftover(member), f"of {cluster.identifier}")
            self._listed(item, f"after its {len(members)} instance(s)")
            return
        if await self._tag_now(cluster.arn) != cluster.run_id:
            return self._record(item, "untouched", f"it no longer carries {REHEARSAL_TAG}={cluster.run_id}")
        for member in members:
            await self._one(member, self.gateway.instance, self.gateway.delete_cluster_member)
        # AWS accepts the cluster's deletion once each of its instances is being deleted.
        for member in members:
            await self._wait(f"{member.identifier} deleting", lambda m=member.identifier: self._member_deleting(m))
        await self._one(cluster, self.gateway.cluster, self.gateway.delete_cluster_clone)

    async def _one(
        self,
        resource: TaggedResource,
        describe: Callable[[str], Awaitable[Any]],
        delete: Callable[[str], Awaitable[Any]],
    ) -> None:
        """An instance, cluster member, cluster or proxy: its tag checked right before its deletion."""
        item = leftover(resource)
        with_deployment = self.greens.get(resource.identifier)
        note = f"green of {with_deployment}, deleted with it" if with_deployment else ""
        if (not resource.cluster and self._skipped(item)) or self._listed(item, note):
            return
        # A proxy made again under the same name has a new ARN: read it now. Databases' ARNs are their names.
        arn = await self.gateway.proxy_arn(resource.identifier) if resource.kind == "proxy" else resource.arn
        tag = GONE if arn is None else await self._tag_now(arn)
        if tag is GONE:
            return self._record(item, "gone")
        if tag != resource.run_id:
            return self._record(item, "untouched", f"it no longer carries {REHEARSAL_TAG}={resource.run_id}")

        async def fresh() -> Any:
            return await describe(resource.identifier)

        current = await fresh()
        if current is None:
            return self._record(item, "gone")
        await self._delete(item, current, lambda: delete(resource.identifier), fresh)

    # ----- the checks, the calls and the waits ------------------------------------------------------------------

    def _skipped(self, item: Leftover) -> bool:
        run = self.active.get(item.run_id)
        if run is None:
            return False
        self._record(
            item,
            "skipped",
            f"rehearsal {run.id} of {run.database} is still {run.status.replace('_', ' ')} in this bot's store:"
            " its teardown deletes it",
            "none needed; if no process drives it any more, `python -m bot resume` finishes it (its teardown included)",
        )
        return True

    def _listed(self, item: Leftover, note: str = "") -> bool:
        """In a dry run: what would be deleted (True: nothing more to do)."""
        if not self.dry_run:
            return False
        self._record(item, "already deleting" if item.status.lower() == "deleting" else "would delete", note)
        return True

    async def _tag_now(self, arn: str) -> object:
        """The resource's rehearsal tag read now (None: it has none), or GONE."""
        try:
            return (await self.gateway.tags(arn)).get(REHEARSAL_TAG)
        except NotFound:
            return GONE

    async def _delete(self, item: Leftover, current: Any, call: Fetch, fresh: Fetch, note: str = "") -> None:
        if str(getattr(current, "status", "")).lower() == "deleting":
            self._record(item, "already deleting", note)
            self.deleting.append((item, fresh))
            return
        try:
            with mutation_guard.only(frozenset({item.identifier})):  # the call may name this resource only
                mutation = await call()
        except AwsError as exc:
            self._record(item, "failed", f"AWS refused {item.action}: {exc.message} ({exc.code})", _fix(item, exc))
            return
        known = self.store.runs.get(item.run_id) is not None
        self.store.audit.append(
            actor=self.actor,
            action="rehearsal-sweep:deleted",
            run_id=item.run_id if known else None,
            detail={"kind": item.kind, "resource": item.identifier, "rehearsal": item.run_id, "command": item.command},
            request_id=mutation.request_id,
        )
        self._record(item, "deleted", note)
        self.deleting.append((item, fresh))

    async def _member_deleting(self, identifier: str) -> bool | None:
        found = await self.gateway.instance(identifier)
        return True if found is None or found.status == "deleting" else None

    async def _wait(self, what: str, probe: Callable[[], Awaitable[bool | None]]) -> bool:
        try:
            await polling.wait_for(probe, policy=polling.SLOW.within(self.timeout), what=what)
        except polling.WaitTimeout:
            log.warning("rehearsal sweep: gave up waiting for %s after %.0f s", what, self.timeout)
            return False
        return True

    async def _wait_gone(self) -> None:
        """Until everything deleted so far is gone; what is not is reported by `_left`."""
        deleting, self.deleting = self.deleting, []
        for item, fetch in deleting:

            async def gone(fetch: Fetch = fetch) -> bool | None:
                return True if await fetch() is None else None

            await self._wait(f"{item.kind} {item.identifier} deleted", gone)

    async def _left(self) -> None:
        """Everything tagged still there, but for what a running rehearsal owns."""
        found = [r for r in await self.gateway.tagged_rehearsal_resources() if r.run_id not in self.active]
        self.result.remaining += [leftover(r) for r in found]
        databases = {r.arn: r for r in found if r.kind != "proxy"}
        for deployment in await self.gateway.deployments_touching(set(databases)):
            run_id = (databases.get(deployment.source_arn) or databases[deployment.target_arn or ""]).run_id
            self.result.remaining.append(deployment_leftover(deployment, run_id, delete_target=False))

    def _record(self, item: Leftover, verdict: str, note: str = "", fix: str = "") -> None:
        outcome = Outcome(item, verdict, note, fix)
        self.result.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)


def _fix(item: Leftover, exc: AwsError) -> str:
    by_hand = f"or delete it by hand: `{item.command}`"
    if isinstance(exc, InvalidState):
        return f"AWS refuses it in its current state: run `{SWEEP_COMMAND}` again once it is available, {by_hand}"
    if isinstance(exc, AccessDenied):
        return f"allow rds:{item.action} to the bot's role (iam-policy.json), {by_hand}"
    return f"run `{SWEEP_COMMAND}` again, {by_hand}"
