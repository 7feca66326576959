"""An environment with `role_arn` keeps working past the lifetime of its assumed-role credentials.

The sandbox grants 2-minute credentials (120 simulated seconds at speed 30: 4 real seconds) and its RDS phases are
scaled alike, so a workaround create + switchover lasts several lifetimes, a whole one of them inside the
proxy-detached window. With the gateway's refreshable credentials every call is signed with a live token; with the
old behaviour (static keys from one AssumeRole) the same scenario is refused with ExpiredToken, which shows that the
test can fail. Last, the refresh rules themselves: margins that follow the granted lifetime, and a refresh that holds
up no call until the credentials are about to expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiobotocore.credentials import AioCredentials
from aiobotocore.session import get_session

from bot.aws.credentials import RoleCredentials
from bot.aws.gateway import AwsGateway
from bot.config import Environment, Settings
from bot.errors import AwsError
from bot.workflow.engine import Engine
from bot.workflow.gateway_pool import GatewayPool
from sandbox.aws import Sandbox
from sandbox.waiting import async_wait_until
from storage import Store
from tests.engine_fixtures import RecordingSink, request, run_to_end
from tests.sandbox_fixtures import ACCOUNT_ID, REGION

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/bluegreen-bot"
SPEED = 30.0
LIFETIME = 120.0  # simulated seconds: 4 real seconds at SPEED
REAL_LIFETIME = LIFETIME / SPEED
SCENARIO = {  # simulated seconds; at SPEED: 2 s per provisioning task (4 of them), a 5 s switchover, 1 s registrations
    "credential_lifetime": LIFETIME,
    "provisioning_task": 60.0,  # long enough that the scenario outlasts 3 lifetimes however few calls the bot makes
    "switchover": 150.0,
    "registering": 30.0,
}
EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException"}
RUN_WITHIN = 60.0


class StaticRoleGateway(AwsGateway):
    """The gateway as it was before refreshable credentials: one AssumeRole, its keys kept for the process's life."""

    async def _assumed_role_credentials(self) -> Any:
        async with get_session().create_client("sts", region_name=self._region, endpoint_url=self._endpoint_url) as sts:
            granted = (await sts.assume_role(RoleArn=self._role_arn, RoleSessionName="bluegreen-bot"))["Credentials"]
        return AioCredentials(granted["AccessKeyId"], granted["SecretAccessKey"], granted["SessionToken"])


@pytest.fixture
async def role_engine(
    sandbox: Sandbox, settings: Settings, store: Store, sink: RecordingSink
) -> AsyncIterator[Callable[[type[AwsGateway]], Engine]]:
    """Builds an engine whose one environment assumes ROLE_ARN, through gateways of the class given."""
    engines: list[Engine] = []
    environments = {name: dataclasses.replace(env, role_arn=ROLE_ARN) for name, env in settings.environments.items()}
    role_settings = dataclasses.replace(settings, environments=environments)

    def build(gateway_class: type[AwsGateway]) -> Engine:
        def gateway(env: Environment) -> AwsGateway:
            return gateway_class(region=env.region or REGION, endpoint_url=sandbox.endpoint, role_arn=env.role_arn)

        engine = Engine(store=store, settings=role_settings, sinks=[sink], gateways=GatewayPool(gateway))
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.aclose()
    store.close()


def calls(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sandbox.control.timeline() if e["kind"] == "call"]


def switchover_window(entries: list[dict[str, Any]]) -> tuple[float, float]:
    """From the switchover's deregistration to the registration that closed the window (the last pair)."""
    deregistered = [e["t"] for e in entries if e["action"] == "DeregisterDBProxyTargets" and e["status"] == 200]
    registered = [e["t"] for e in entries if e["action"] == "RegisterDBProxyTargets" and e["status"] == 200]
    return deregistered[-1], registered[-1]


async def create_and_switch_over(engine: Engine) -> tuple[Any, Any]:
    created = await run_to_end(
        engine, request("create", "orders-pg", mode="workaround", engine_version="16.4"), within=RUN_WITHIN
    )
    if created.status != "succeeded":
        return created, None
    return created, await run_to_end(engine, request("switchover", "orders-pg"), within=RUN_WITHIN)


async def test_role_credentials_are_refreshed_through_a_create_and_switchover_lasting_several_lifetimes(
    sandbox, role_engine
):
    sandbox.control.config(speed=SPEED, durations=SCENARIO)

    created, switched = await create_and_switch_over(role_engine(AwsGateway))

    assert created.status == "succeeded", created.error
    assert switched.status == "succeeded", switched.error
    entries = calls(sandbox)
    assert [e for e in entries if e["code"] in EXPIRED_CODES] == []  # no call reached AWS with an expired token
    failed = [(e["action"], e["code"]) for e in entries if e["status"] != 200]
    # Every call succeeded; the one kind of answer that is not a 200 is the gateway's lookup of a cluster by the
    # instance's name (clusters first), which AWS answers with "not found" by design.
    assert set(failed) <= {("DescribeDBClusters", "DBClusterNotFoundFault")}
    assumed = [e["t"] for e in entries if e["action"] == "AssumeRole"]
    others = [e["t"] for e in entries if e["action"] != "AssumeRole"]
    assert others[-1] - others[0] > 3 * REAL_LIFETIME  # the scenario outlasted several lifetimes...
    assert len(assumed) > 3  # ...and the role was assumed again before each grant ran out
    opened, closed = switchover_window(entries)
    assert closed - opened > REAL_LIFETIME
    assert any(opened < t < closed for t in assumed)  # refreshed inside the proxy-detached window too


async def test_negative_control_static_credentials_from_one_assume_role_hit_expired_token(sandbox, role_engine):
    sandbox.control.config(speed=SPEED, durations=SCENARIO)

    scenario = asyncio.ensure_future(create_and_switch_over(role_engine(StaticRoleGateway)))
    try:
        refused = await async_wait_until(
            lambda: [e for e in calls(sandbox) if e["code"] in EXPIRED_CODES],
            RUN_WITHIN,
            interval=0.1,
            what="a call refused with ExpiredToken",
        )
    finally:  # a run refused while the proxy is detached compensates until it can register: stop it here
        scenario.cancel()
        await asyncio.gather(scenario, return_exceptions=True)

    assert refused[0]["status"] == 400
    assert [e["action"] for e in calls(sandbox)].count("AssumeRole") == 1


async def test_a_refused_assume_role_fails_the_call_that_needed_it_naming_the_role(sandbox):
    sandbox.control.inject_fault("AssumeRole", "AccessDenied", count=1, status=403)

    async with AwsGateway(region=REGION, endpoint_url=sandbox.endpoint, role_arn=ROLE_ARN) as gateway:
        with pytest.raises(AwsError) as refused:
            await gateway.instance("orders-pg")
        found = await gateway.instance("orders-pg")  # the next call assumes the role again, and AWS agrees

    error = refused.value
    assert (error.action, error.code, error.resource) == ("AssumeRole", "AccessDenied", ROLE_ARN)
    assert error.http_status == 403
    assert "trust policy" in (error.fix or "")
    assert found is not None and found.identifier == "orders-pg"
    assert [e["action"] for e in calls(sandbox)] == ["AssumeRole", "AssumeRole", "DescribeDBInstances"]


# ----- the refresh rules, on RoleCredentials itself (no AWS involved) ---------------------------------------------


class Grants:
    """A refresh function handing out numbered grants of `lifetime` seconds from the test's clock, each one only
    once `release` is set."""

    def __init__(self, clock: list[dt.datetime], lifetime: float) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.count = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> dict[str, str]:
        await self.release.wait()
        self.count += 1
        expiry = self.clock[0] + dt.timedelta(seconds=self.lifetime)
        return {
            "access_key": f"AKIA{self.count}",
            "secret_key": "secret",
            "token": f"token-{self.count}",
            "expiry_time": expiry.isoformat(),
        }


def credentials_with(lifetime: float) -> tuple[RoleCredentials, Grants, list[dt.datetime]]:
    clock = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    grants = Grants(clock, lifetime)
    return RoleCredentials(grants, time_fetcher=lambda: clock[0]), grants, clock


@pytest.mark.parametrize(
    ("lifetime", "advisory", "mandatory"),
    [
        (3600, 900, 600),  # AWS's default session: botocore's own margins
        (900, 450, 225),  # the shortest session: botocore's margins would refresh on every call
        (43200, 900, 600),  # the longest: botocore's margins
        (4, 2, 1),  # a sandbox's scaled seconds
    ],
)
async def test_refresh_margins_follow_the_granted_lifetime(lifetime, advisory, mandatory):
    credentials, grants, _clock = credentials_with(lifetime)

    await credentials.get_frozen_credentials()

    assert grants.count == 1
    assert credentials._advisory_refresh_timeout == pytest.approx(advisory)
    assert credentials._mandatory_refresh_timeout == pytest.approx(mandatory)


async def test_an_advisory_refresh_holds_up_no_call_and_a_mandatory_one_is_awaited():
    credentials, grants, clock = credentials_with(3600)
    first = await credentials.get_frozen_credentials()
    grants.release.clear()

    clock[0] += dt.timedelta(seconds=3600 - 800)  # inside the advisory margin (900 s), outside the mandatory (600 s)
    during = await asyncio.wait_for(credentials.get_frozen_credentials(), timeout=1)
    assert during.token == first.token == "token-1"  # answered at once, with the still-valid grant
    grants.release.set()
    await async_wait_until(lambda: credentials.grants == 2, 5, what="the background refresh")
    assert (await credentials.get_frozen_credentials()).token == "token-2"

    grants.release.clear()
    clock[0] += dt.timedelta(seconds=3600 - 300)  # inside the mandatory margin of the second grant
    waiting = asyncio.ensure_future(credentials.get_frozen_credentials())
    done, _ = await asyncio.wait({waiting}, timeout=0.2)
    assert not done  # a call this close to expiry waits for the new grant
    grants.release.set()
    assert (await asyncio.wait_for(waiting, timeout=5)).token == "token-3"
    await credentials.aclose()
