"""Credentials for an environment's `role_arn`: aiobotocore's refreshable assumed-role credentials, shared by every
client of one gateway, so the bot never signs a call with credentials past their expiry however long it runs.

- The role is assumed with the source credentials of the standard chain (`AioAssumeRoleCredentialFetcher`), on
  first use and then again before each grant expires (`AioDeferredRefreshableCredentials`).
- Refresh margins are proportional to the lifetime STS granted: half of it (advisory) and a quarter (mandatory),
  never more than botocore's own 15 and 10 minutes. For AWS's default one-hour session, and anything longer, these
  *are* botocore's margins. For shorter grants botocore's fixed margins break down: a 15-minute session (the
  shortest AWS grants) would sit inside the advisory margin from its first second, so every call would refresh,
  and the sandbox's scaled seconds would too. Proportional margins refresh once per grant at any lifetime, and
  leave a call signed with the old grant a quarter of the lifetime to reach AWS.
  The lifetime is read from the `Expiration` STS reports, on arrival, so the bot needs no knowledge of a speed
  factor: a sandbox that grants 4 real seconds gets margins of 2 s and 1 s.
- Inside the advisory margin a refresh runs in the background and the call goes on with the credentials it has,
  which are still valid; only inside the mandatory margin (or before the first grant) does a call wait for
  AssumeRole. So a refresh adds one STS call per grant and does not hold up a poll inside a proxy-detached window;
  STS's client has short timeouts for the rare call that must wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioAssumeRoleCredentialFetcher, AioDeferredRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.credentials import _DEFAULT_ADVISORY_REFRESH_TIMEOUT, _DEFAULT_MANDATORY_REFRESH_TIMEOUT, _local_now
from botocore.exceptions import BotoCoreError, ClientError

from bot import errors
from bot.aws.sessions import new_session

ROLE_SESSION_NAME = "bluegreen-bot"
ADVISORY_SHARE = 1 / 2  # of the granted lifetime, capped at botocore's 15 minutes
MANDATORY_SHARE = 1 / 4  # capped at botocore's 10 minutes
STS_CONFIG = AioConfig(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
METHOD = "assume-role"
logger = logging.getLogger(__name__)


class RoleCredentials(AioDeferredRefreshableCredentials):
    """Deferred refreshable credentials whose margins follow the granted lifetime, refreshed in the background
    inside the advisory margin. `grants` counts the grants received (AssumeRole calls that succeeded)."""

    def __init__(self, refresh_using: Any, time_fetcher: Callable[[], dt.datetime] = _local_now) -> None:
        super().__init__(refresh_using=refresh_using, method=METHOD, time_fetcher=time_fetcher)
        self.grants = 0
        self.lifetime: float | None = None
        self._background: asyncio.Task[None] | None = None

    def _publish_refresh(self) -> None:
        super()._publish_refresh()
        self.grants += 1
        self.lifetime = max(self._seconds_remaining(), 0.0)
        self._advisory_refresh_timeout = min(_DEFAULT_ADVISORY_REFRESH_TIMEOUT, self.lifetime * ADVISORY_SHARE)
        self._mandatory_refresh_timeout = min(_DEFAULT_MANDATORY_REFRESH_TIMEOUT, self.lifetime * MANDATORY_SHARE)

    async def _refresh(self) -> None:
        if not self.refresh_needed(self._advisory_refresh_timeout):
            return
        if self.refresh_needed(self._mandatory_refresh_timeout):
            await super()._refresh()  # no grant yet, or too close to expiry: the call has to wait
            return
        if self._background is None or self._background.done():
            self._background = asyncio.get_running_loop().create_task(self._advisory_refresh())

    async def _advisory_refresh(self) -> None:
        # botocore logs and swallows a failed advisory refresh; the next call past the margin tries again. Should
        # the margin turn mandatory meanwhile, botocore raises instead: the call that waits for it sees the error.
        try:
            await super()._refresh()
        except Exception as exc:  # a background task has nobody to raise to
            logger.warning("Refreshing the assumed-role credentials failed: %s", exc)

    async def aclose(self) -> None:
        """Stop a background refresh in flight."""
        if self._background is not None and not self._background.done():
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)


class _NoCache(dict):  # type: ignore[type-arg]
    """The credentials object decides when to assume the role again; the fetcher must not answer from a cache."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _Provider:
    """A session's credential provider that always hands out the same credentials object."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    async def load_credentials(self) -> Any:
        return self._credentials


async def assumed_role_credentials(
    role_arn: str, *, region: str | None, endpoint_url: str | None = None
) -> RoleCredentials:
    """Refreshable credentials for `role_arn`, assumed with the standard chain's credentials through STS in
    `region` (at `endpoint_url` if given). Nothing is called until first use. A failed AssumeRole surfaces from the
    AWS call that needed it as `bot.errors.AwsError` with action AssumeRole and the role as resource."""
    source_session = new_session()
    source = await source_session.get_credentials()
    if source is None:
        raise errors.AwsError(
            f"AssumeRole ({role_arn}): no AWS credentials to assume the role with.",
            code="NoCredentialsError",  # botocore's name for it
            action="AssumeRole",
            resource=role_arn,
            fix="Give the bot credentials through the standard chain (environment, profile, instance role).",
        )
    fetcher = AioAssumeRoleCredentialFetcher(
        client_creator=functools.partial(
            source_session.create_client, region_name=region, endpoint_url=endpoint_url, config=STS_CONFIG
        ),
        source_credentials=source,
        role_arn=role_arn,
        extra_args={"RoleSessionName": ROLE_SESSION_NAME},
        cache=_NoCache(),
    )

    async def assume() -> dict[str, Any]:
        try:
            return await fetcher.fetch_credentials()
        except ClientError as exc:
            raise _assume_role_error(role_arn, exc) from exc
        except BotoCoreError as exc:
            raise errors.AwsError(
                f"AssumeRole ({role_arn}): {exc}",
                code=type(exc).__name__,
                action="AssumeRole",
                resource=role_arn,
                http_status=599,
            ) from exc

    return RoleCredentials(assume)


def use_credentials(session: AioSession, credentials: Any) -> None:
    """Make every client `session` creates from now on sign with `credentials` (refreshes included)."""
    session.register_component("credential_provider", _Provider(credentials))


def _assume_role_error(role_arn: str, exc: ClientError) -> errors.AwsError:
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    code = str(error.get("Code", "Unknown"))
    return errors.AwsError(
        f"AssumeRole ({role_arn}): {code}: {error.get('Message', '') or code}",
        code=code,
        action="AssumeRole",
        resource=role_arn,
        request_id=meta.get("RequestId"),
        http_status=meta.get("HTTPStatusCode"),
        fix="Check that the bot's identity may call sts:AssumeRole on the role and that the role's trust policy "
        "names it (role_arn in the environment's configuration).",
    )
