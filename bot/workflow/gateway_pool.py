"""One AWS gateway per environment, each with the environment's describe budget (`aws_describe_rate`), and one
observer told of every AWS call by every gateway (the metrics' `aws_call`, which readiness reads too)."""

from __future__ import annotations

from collections.abc import Callable

from bot.aws.gateway import AwsGateway
from bot.config import Environment

# observer(environment, action, error or None, seconds): must not raise.
CallObserver = Callable[[str, str, BaseException | None, float], None]


class GatewayPool:
    """One AWS gateway per environment (region and role)."""

    def __init__(self, factory: Callable[[Environment], AwsGateway] | None = None) -> None:
        self._factory = factory or (lambda env: AwsGateway(region=env.region, role_arn=env.role_arn))
        self._gateways: dict[str, AwsGateway] = {}
        self._observer: CallObserver | None = None

    def get(self, env: Environment) -> AwsGateway:
        if env.name not in self._gateways:
            gateway = self._gateways[env.name] = self._factory(env)
            gateway.budget_describes(env.aws_describe_rate)
            self._watch(env.name, gateway)
        return self._gateways[env.name]

    def observe(self, observer: CallObserver) -> None:
        """Tell `observer(environment, action, error or None, seconds)` of every AWS call, by every gateway."""
        self._observer = observer
        for name, gateway in self._gateways.items():
            self._watch(name, gateway)

    def _watch(self, name: str, gateway: AwsGateway) -> None:
        observer = self._observer
        if observer is not None:
            gateway.observer = lambda action, error, seconds: observer(name, action, error, seconds)

    async def aclose(self) -> None:
        for gateway in self._gateways.values():
            await gateway.close()
        self._gateways.clear()
