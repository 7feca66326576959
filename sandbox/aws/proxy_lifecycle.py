"""RDS Proxy creation and deletion over time, where moto's proxies are available at once and vanish on delete.

- CreateDBProxy (through the API) answers Status `creating`; after `proxy_creating` the proxy is `available`
  (DBProxyStatus enum in the API reference; RDS-EVENT-0203 "RDS created DB proxy <name>."). It has its `default`
  target group from the start (moto's), and routes, through its listener, only once `available` with an AVAILABLE
  target.
- fail_next_proxy_creation (sandbox/aws/rehearsal_controls.py): the creation ends in `incompatible-network` (with
  RDS-EVENT-0243, AWS's "not enough IP addresses available in your subnets" failure event) or
  `insufficient-resource-limits` (no event documented); the proxy routes nothing and can only be deleted.
- DeleteDBProxy answers Status `deleting` (AWS CLI example delete-db-proxy); after `proxy_deleting` the proxy is gone
  with its targets (RDS-EVENT-0205 "RDS deleted DB proxy <name>.") and its listener closes. Deleting it again meanwhile:
  InvalidDBProxyStateFault.
- RegisterDBProxyTargets on a `deleting` or failed proxy: InvalidDBProxyStateFault. On a `creating` proxy the
  sandbox accepts it and the target stays REGISTERING until the proxy is available (unverified). A target on a
  database still `creating` (registrable since 2024) stays REGISTERING until the database is created.
- CreateDBProxy faults: DBProxyAlreadyExistsFault (moto), DBProxyQuotaExceededFault past MOTO_RDS_PROXY_LIMIT (100;
  AWS's default quota is lower), InvalidSubnet for a subnet that does not exist.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from moto.ec2.models import ec2_backends
from moto.rds.models import DBProxy, DBProxyTargetGroup
from moto.rds.responses import RDSResponse

from sandbox.aws import errors
from sandbox.aws.blue_green import current_status
from sandbox.aws.faults import CreationFailure
from sandbox.aws.resource_events import emit

if TYPE_CHECKING:
    from sandbox.aws.proxy_targets import ProxyTarget
    from sandbox.aws.rds_behaviours import SandboxRDSBackend

PROXY_CREATION_FAILURES = ("incompatible-network", "insufficient-resource-limits")
DEFAULT_PROXY_FAILURE = "RDS could not provision capacity for the proxy"
DEFAULT_PROXY_LIMIT = 100


def _timeline_name(proxy: DBProxy) -> str:
    return f"proxy:{proxy.db_proxy_name}"


def _event(backend: SandboxRDSBackend, proxy: DBProxy, event_id: str, **values: str) -> None:
    emit(backend, "db-proxy", proxy.db_proxy_name, proxy.arn, event_id, name=proxy.db_proxy_name, **values)


class ProxyLifecycleMixin:
    """Overrides of moto's proxy methods; mixed into SandboxRDSBackend ahead of ProxyTargetsMixin."""

    def create_db_proxy(self: SandboxRDSBackend, db_proxy_name: str, **kwargs: Any) -> DBProxy:
        ec2 = ec2_backends[self.account_id][self.region_name]
        known = {subnet.id for subnet in ec2.describe_subnets()}
        for subnet in kwargs.get("vpc_subnet_ids") or []:
            if subnet not in known:
                raise errors.fault(
                    "InvalidSubnet",
                    f"The requested subnet {subnet} is invalid, or multiple subnets were requested that are not all "
                    "in a common VPC.",
                )
        if db_proxy_name not in self.db_proxies and len(self.db_proxies) >= self._proxy_limit():
            raise errors.fault(
                "DBProxyQuotaExceededFault",
                "Your Amazon Web Services account already has the maximum number of proxies in the specified Amazon "
                "Web Services Region.",
            )
        return super().create_db_proxy(db_proxy_name=db_proxy_name, **kwargs)  # type: ignore[misc]

    @staticmethod
    def _proxy_limit() -> int:
        return int(os.environ.get("MOTO_RDS_PROXY_LIMIT", str(DEFAULT_PROXY_LIMIT)))

    def begin_proxy_creation(self: SandboxRDSBackend, name: str) -> None:
        proxy = self.db_proxies.get(name)
        if proxy is None:
            return
        proxy.status = "creating"
        self.sandbox.transition(_timeline_name(proxy), "creating")
        failure = self.sandbox.faults.take_creation_failure("proxy", name)
        self.sandbox.after("proxy_creating", lambda _now: self._proxy_created(proxy, failure))

    def _proxy_created(self: SandboxRDSBackend, proxy: DBProxy, failure: CreationFailure | None) -> None:
        if self.db_proxies.get(proxy.db_proxy_name) is not proxy or proxy.status != "creating":
            return
        if failure is None:
            proxy.status = "available"
            self.sandbox.transition(_timeline_name(proxy), "available")
            _event(self, proxy, "RDS-EVENT-0203")
            return
        status = failure.status if failure.status in PROXY_CREATION_FAILURES else PROXY_CREATION_FAILURES[0]
        proxy.status = status
        self.sandbox.transition(_timeline_name(proxy), f"{status} ({failure.reason})")
        if status == "incompatible-network":
            _event(self, proxy, "RDS-EVENT-0243", subnets=", ".join(proxy.vpc_subnet_ids))

    def delete_db_proxy(self: SandboxRDSBackend, proxy_name: str) -> DBProxy:
        proxy = self.db_proxies.get(proxy_name)
        if proxy is None:
            raise errors.proxy_not_found(proxy_name)
        if proxy.status == "deleting":
            raise errors.fault("InvalidDBProxyStateFault", f"DB proxy {proxy_name} is already being deleted.")
        proxy.status = "deleting"
        self.sandbox.transition(_timeline_name(proxy), "deleting")
        self.sandbox.after("proxy_deleting", lambda _now: self._remove_proxy(proxy))
        return proxy

    def _remove_proxy(self: SandboxRDSBackend, proxy: DBProxy) -> None:
        if self.db_proxies.get(proxy.db_proxy_name) is not proxy:
            return
        for group in proxy.proxy_target_groups.values():
            for target in list(group.targets):
                self.sandbox.transition(target.timeline_name, "REMOVED")
        super().delete_db_proxy(proxy.db_proxy_name)  # type: ignore[misc]
        self.sandbox.transition(_timeline_name(proxy), "DELETED")
        _event(self, proxy, "RDS-EVENT-0205")

    def register_db_proxy_targets(self: SandboxRDSBackend, db_proxy_name: str, *args: Any, **kwargs: Any) -> Any:
        proxy = self.db_proxies.get(db_proxy_name)
        if proxy is not None and proxy.status not in ("available", "creating", "modifying"):
            raise errors.fault(
                "InvalidDBProxyStateFault",
                f"DB proxy {db_proxy_name} is {proxy.status}; targets can't be registered with it.",
            )
        return super().register_db_proxy_targets(db_proxy_name, *args, **kwargs)  # type: ignore[misc]

    def _finish_registering(
        self: SandboxRDSBackend, group: DBProxyTargetGroup, target: ProxyTarget, now: float
    ) -> None:
        proxy = self.db_proxies.get(target.proxy_name)
        waiting = (proxy is not None and proxy.status == "creating") or _resource_creating(target)
        if not waiting:
            super()._finish_registering(group, target, now)  # type: ignore[misc]
        elif target in group.targets and target.state == "REGISTERING":
            self.sandbox.after("registering", lambda later: self._finish_registering(group, target, later))

    def available_target(self: SandboxRDSBackend, proxy_name: str) -> str | None:
        proxy = self.db_proxies.get(proxy_name)
        if proxy is None or proxy.status != "available":
            return None
        return super().available_target(proxy_name)  # type: ignore[misc]


def _resource_creating(target: ProxyTarget) -> bool:
    return current_status(target.resource) == "creating"


def install() -> None:
    """CreateDBProxy through the API starts `creating` (the fleet's proxies, made in the backend, start available)."""
    original = RDSResponse.create_db_proxy
    if getattr(original, "sandbox_patched", False):
        return

    def create_db_proxy(self: RDSResponse) -> Any:
        result = original(self)
        if hasattr(self.backend, "begin_proxy_creation"):
            self.backend.begin_proxy_creation(str(self.params["DBProxyName"]))  # type: ignore[attr-defined]
        return result

    create_db_proxy.sandbox_patched = True  # type: ignore[attr-defined]
    RDSResponse.create_db_proxy = create_db_proxy  # type: ignore[method-assign]
