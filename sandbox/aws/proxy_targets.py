"""RDS Proxy targets that track physical databases, with health over time and the real proxy faults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moto.rds.models import DBCluster, DBInstance, DBProxyTargetGroup

from sandbox.aws import errors
from sandbox.aws.faults import REASON_DESCRIPTIONS

if TYPE_CHECKING:
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

DEFAULT_TARGET_GROUP = "default"
REGISTRABLE_STATES = ("available", "modifying", "backing-up", "creating")
ENGINE_PORTS = {"postgres": 5432, "aurora-postgresql": 5432, "mysql": 3306, "mariadb": 3306, "aurora-mysql": 3306}


def engine_port(resource: DBInstance | DBCluster) -> int:
    return ENGINE_PORTS.get(str(resource.engine), int(resource.port or 5432))


def identifier_of(resource: DBInstance | DBCluster) -> str:
    if isinstance(resource, DBCluster):
        return resource.db_cluster_identifier
    return resource.db_instance_identifier


class ProxyTarget:
    """One entry of DescribeDBProxyTargets.

    It holds the moto object of the physical database, not its name: after a switchover renames that database
    the target follows it, which is what RDS Proxy does (the legacy pitfall the runbook works around).
    """

    def __init__(
        self,
        backend: SandboxRDSBackend,
        proxy_name: str,
        group_name: str,
        resource: DBInstance | DBCluster,
        tracked_cluster: DBCluster | None = None,
        state: str = "REGISTERING",
    ) -> None:
        self.backend = backend
        self.proxy_name = proxy_name
        self.group_name = group_name
        self.resource = resource
        self.tracked_cluster = tracked_cluster
        self.state = state
        self.target_arn = None

    @property
    def type(self) -> str:
        return "TRACKED_CLUSTER" if isinstance(self.resource, DBCluster) else "RDS_INSTANCE"

    @property
    def rds_resource_id(self) -> str:
        return identifier_of(self.resource)

    @property
    def endpoint(self) -> str | None:
        return None if isinstance(self.resource, DBCluster) else self.resource.address

    @property
    def tracked_cluster_id(self) -> str | None:
        cluster = self.resource if isinstance(self.resource, DBCluster) else self.tracked_cluster
        return cluster.db_cluster_identifier if cluster is not None else None

    @property
    def port(self) -> int:
        return engine_port(self.resource)

    @property
    def role(self) -> str | None:
        if isinstance(self.resource, DBCluster):
            return None
        if self.tracked_cluster is None:
            return "READ_WRITE"
        return "READ_WRITE" if getattr(self.resource, "is_cluster_writer", False) else "READ_ONLY"

    @property
    def timeline_name(self) -> str:
        return f"proxy-target:{self.proxy_name}/{self.group_name}/{self.rds_resource_id}"

    @property
    def target_health(self) -> dict[str, str]:
        pinned = self.backend.sandbox.faults.pinned(self.proxy_name, self.group_name, self.rds_resource_id)
        if pinned is not None:
            return {"State": pinned.state, "Reason": pinned.reason, "Description": pinned.description}
        return {"State": self.state}

    @property
    def health_state(self) -> str:
        return self.target_health["State"]

    def exists(self) -> bool:
        """False once the tracked database has been deleted."""
        if isinstance(self.resource, DBCluster):
            return self.backend.clusters.get(self.resource.db_cluster_identifier) is self.resource
        return self.backend.databases.get(self.resource.db_instance_identifier) is self.resource


class ProxyTargetsMixin:
    """Overrides of moto's proxy-target methods; mixed into SandboxRDSBackend."""

    def _target_group(self: SandboxRDSBackend, proxy_name: str, group_name: str | None) -> DBProxyTargetGroup:
        proxy = self.db_proxies.get(proxy_name)
        if proxy is None:
            raise errors.proxy_not_found(proxy_name)
        group = proxy.proxy_target_groups.get(group_name or DEFAULT_TARGET_GROUP)
        if group is None:
            raise errors.target_group_not_found(proxy_name, group_name or DEFAULT_TARGET_GROUP)
        return group

    def _registrable_instance(self: SandboxRDSBackend, db_id: str) -> DBInstance:
        instance = self.databases.get(db_id)
        if instance is None:
            raise errors.instance_not_found(db_id)
        if instance.status not in REGISTRABLE_STATES:
            raise errors.invalid_instance_state(
                f"DB Instance {db_id} is in an unsupported state - {instance.status}, "
                f"needs to be in [{', '.join(REGISTRABLE_STATES)}]"
            )
        return instance

    def _registrable_cluster(self: SandboxRDSBackend, cluster_id: str) -> DBCluster:
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            raise errors.cluster_not_found(cluster_id)
        if cluster._status not in REGISTRABLE_STATES:
            raise errors.invalid_cluster_state(
                f"DB Cluster {cluster_id} is in an unsupported state - {cluster._status}, "
                f"needs to be in [{', '.join(REGISTRABLE_STATES)}]"
            )
        return cluster

    def register_db_proxy_targets(
        self: SandboxRDSBackend,
        db_proxy_name: str,
        target_group_name: str | None,
        db_cluster_identifiers: list[str],
        db_instance_identifiers: list[str],
        initial_state: str = "REGISTERING",
    ) -> list[ProxyTarget]:
        group = self._target_group(db_proxy_name, target_group_name)
        instances = [self._registrable_instance(db_id) for db_id in db_instance_identifiers or []]
        clusters = [self._registrable_cluster(cluster_id) for cluster_id in db_cluster_identifiers or []]
        registered = {id(t.resource) for t in group.targets}
        for resource in [*instances, *clusters]:
            if id(resource) in registered:
                raise errors.target_already_registered(db_proxy_name, identifier_of(resource))
            registered.add(id(resource))
            self.refuse_proxy_after_deployment(resource)

        new_targets: list[ProxyTarget] = []
        for instance in instances:
            new_targets.append(ProxyTarget(self, db_proxy_name, group.target_group_name, instance))
        for cluster in clusters:
            new_targets.append(ProxyTarget(self, db_proxy_name, group.target_group_name, cluster))
            for member in cluster.members:
                new_targets.append(
                    ProxyTarget(self, db_proxy_name, group.target_group_name, member, tracked_cluster=cluster)
                )
        for target in new_targets:
            self._add_target(group, target, initial_state)
        return new_targets

    def _add_target(
        self: SandboxRDSBackend,
        group: DBProxyTargetGroup,
        target: ProxyTarget,
        state: str,
        duration: str = "registering",
    ) -> None:
        target.state = state
        group.targets.append(target)
        self.sandbox.transition(target.timeline_name, state)
        if state == "REGISTERING":
            self.sandbox.after(duration, lambda now: self._finish_registering(group, target, now))

    def _finish_registering(
        self: SandboxRDSBackend, group: DBProxyTargetGroup, target: ProxyTarget, now: float
    ) -> None:
        if target in group.targets and target.state == "REGISTERING":
            target.state = "AVAILABLE"
            self.sandbox.transition(target.timeline_name, "AVAILABLE", now)

    def deregister_db_proxy_targets(
        self: SandboxRDSBackend,
        db_proxy_name: str,
        target_group_name: str | None,
        db_cluster_identifiers: list[str],
        db_instance_identifiers: list[str],
    ) -> None:
        group = self._target_group(db_proxy_name, target_group_name)
        doomed: list[ProxyTarget] = []
        for db_id in db_instance_identifiers or []:
            matches = [t for t in group.targets if t.type == "RDS_INSTANCE" and t.tracked_cluster is None]
            doomed += self._matching(matches, db_id, db_proxy_name, self.databases, errors.instance_not_found)
        for cluster_id in db_cluster_identifiers or []:
            matches = [t for t in group.targets if t.type == "TRACKED_CLUSTER"]
            found = self._matching(matches, cluster_id, db_proxy_name, self.clusters, errors.cluster_not_found)
            doomed += found
            doomed += [t for t in group.targets for c in found if t.tracked_cluster is c.resource]
        for target in doomed:
            if target in group.targets:
                group.targets.remove(target)
                self.sandbox.transition(target.timeline_name, "DEREGISTERED")

    @staticmethod
    def _matching(
        candidates: list[ProxyTarget], db_id: str, proxy: str, inventory: dict[str, Any], not_found: Any
    ) -> list[ProxyTarget]:
        found = [t for t in candidates if t.rds_resource_id == db_id]
        if not found:
            raise not_found(db_id) if db_id not in inventory else errors.target_not_found(proxy, db_id)
        return found

    def describe_db_proxy_targets(
        self: SandboxRDSBackend, proxy_name: str, target_group_name: str | None = None
    ) -> list[ProxyTarget]:
        group = self._target_group(proxy_name, target_group_name)
        self.prune_proxy_targets()
        return list(group.targets)

    def describe_db_proxy_target_groups(self: SandboxRDSBackend, proxy_name: str) -> list[DBProxyTargetGroup]:
        if proxy_name not in self.db_proxies:
            raise errors.proxy_not_found(proxy_name)
        return super().describe_db_proxy_target_groups(proxy_name)  # type: ignore[misc]

    def delete_db_proxy(self: SandboxRDSBackend, proxy_name: str) -> Any:
        if proxy_name not in self.db_proxies:
            raise errors.proxy_not_found(proxy_name)
        return super().delete_db_proxy(proxy_name)  # type: ignore[misc]

    def all_proxy_targets(self: SandboxRDSBackend) -> list[tuple[DBProxyTargetGroup, ProxyTarget]]:
        return [
            (group, target)
            for proxy in self.db_proxies.values()
            for group in proxy.proxy_target_groups.values()
            for target in group.targets
        ]

    def prune_proxy_targets(self: SandboxRDSBackend) -> None:
        """Drop targets of deleted databases and keep cluster member entries in step with the cluster."""
        for group, target in self.all_proxy_targets():
            if not target.exists() or (
                target.tracked_cluster is not None
                and target.resource.db_cluster_identifier != target.tracked_cluster.db_cluster_identifier
            ):
                group.targets.remove(target)
                self.sandbox.transition(target.timeline_name, "REMOVED")
        for group, target in self.all_proxy_targets():
            if target.type != "TRACKED_CLUSTER":
                continue
            tracked = {id(t.resource) for t in group.targets if t.tracked_cluster is target.resource}
            for member in target.resource.members:
                if id(member) not in tracked:
                    member_target = ProxyTarget(
                        self, target.proxy_name, group.target_group_name, member, tracked_cluster=target.resource
                    )
                    self._add_target(group, member_target, "REGISTERING")

    def proxies_tracking(self: SandboxRDSBackend, resource: DBInstance | DBCluster) -> list[str]:
        """Names of the proxies with a target on `resource` (for a cluster, also on one of its members)."""
        watched = {id(resource)}
        if isinstance(resource, DBCluster):
            watched |= {id(m) for m in resource.members}
        return sorted({t.proxy_name for _, t in self.all_proxy_targets() if id(t.resource) in watched})

    def follow_switchover(
        self: SandboxRDSBackend, old_primary: DBInstance | DBCluster, new_primary: DBInstance | DBCluster
    ) -> None:
        """Native personality: after a switchover the proxy re-targets the new primary by itself."""
        for group, target in self.all_proxy_targets():
            if target.resource is not old_primary:
                continue
            for stale in [t for t in group.targets if t is target or t.tracked_cluster is old_primary]:
                group.targets.remove(stale)
                self.sandbox.transition(stale.timeline_name, "REMOVED")
            self._add_target(
                group,
                ProxyTarget(self, target.proxy_name, group.target_group_name, new_primary),
                "REGISTERING",
                duration="native_follow_registering",
            )
            if isinstance(new_primary, DBCluster):
                for member in new_primary.members:
                    self._add_target(
                        group,
                        ProxyTarget(self, target.proxy_name, group.target_group_name, member, new_primary),
                        "REGISTERING",
                        duration="native_follow_registering",
                    )

    def available_target(self: SandboxRDSBackend, proxy_name: str) -> str | None:
        """The RdsResourceId the proxy would route to through its default target group, if any."""
        proxy = self.db_proxies.get(proxy_name)
        if proxy is None or DEFAULT_TARGET_GROUP not in proxy.proxy_target_groups:
            return None
        available = [
            t for t in proxy.proxy_target_groups[DEFAULT_TARGET_GROUP].targets if t.health_state == "AVAILABLE"
        ]
        writers = [t for t in available if t.role == "READ_WRITE"]
        chosen = (writers or available or [None])[0]
        return chosen.rds_resource_id if chosen is not None else None


def pinned_description(reason: str, description: str | None) -> str:
    return description or REASON_DESCRIPTIONS.get(reason, reason)
