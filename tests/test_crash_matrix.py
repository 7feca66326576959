"""The crash matrix: the bot SIGKILLed at every step boundary of `create` and `switchover`, in both strategies, then
started again with `python -m bot resume` (real subprocesses; see bot/failpoints.py).

The matrix is read from the engine's own plans (tests.matrix_fixtures.matrix_plans), so a step added to a workflow
gets its crash tests without editing this file. Each case asserts that the run finishes, that AWS ends in the right
state (read back through boto3), that no mutation was made twice, that the audit log has each mutation once and the
resumption, and, when the process died while a proxy had no target, that the window reported covers the dead time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.planning.plan import Plan
from tests.engine_fixtures import REQUESTER, request, run_to_end
from tests.matrix_fixtures import (
    DATABASE,
    STRATEGIES,
    TARGET_VERSION,
    Boundary,
    all_calls,
    approving,
    assert_created,
    assert_proxy_serves,
    assert_switched,
    audited_mutations,
    aws_no_target_period,
    bot_env,
    boundaries,
    expected_mutations,
    last_seq,
    matrix_plans,
    proxy_target_states,
    successful_calls,
)
from tests.process_fixtures import forked_bots, zygote_fixture  # noqa: F401  (the `zygote` fixture)

PLANS = matrix_plans()
PROXIES = {"orders-pg": ["orders-proxy"], "billing-mysql": ["billing-proxy", "billing-reporting-proxy"]}
CLOCK_SLACK = 0.02  # seconds: converting the sandbox's monotonic times to wall-clock, and rounding
TWO_PROXIES_ID = "switchover-workaround-billing-mysql-after-first-deregistration"
# Cases that expose engine bugs (see the report to the lead); strict, so a fix makes them fail until unmarked.
KNOWN_BUGS: dict[str, str] = {}  # case id -> reason, for a bug found and not yet fixed (strict xfail)


@dataclass(frozen=True)
class CrashCase:
    kind: str  # "create" | "switchover"
    strategy: str  # "workaround" | "native"
    boundary: Boundary
    plan: Plan
    database: str = DATABASE
    version: str = TARGET_VERSION

    @property
    def proxies(self) -> list[str]:
        return PROXIES[self.database]

    def expected_mutations(self) -> dict[str, int]:
        """The plan's mutations, one (de)registration per proxy: none may happen twice, none may be missing."""
        per_proxy = {"DeregisterDBProxyTargets", "RegisterDBProxyTargets"}
        return {
            action: len(self.proxies) if action in per_proxy else count
            for action, count in expected_mutations(self.plan).items()
        }


def _param(case: CrashCase, case_id: str) -> pytest.ParameterSet:
    bug = KNOWN_BUGS.get(case_id)
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=bug)] if bug else []
    return pytest.param(case, id=case_id, marks=marks)


def crash_cases() -> list[pytest.ParameterSet]:
    cases = [
        _param(CrashCase(kind, strategy, boundary, PLANS[kind, strategy]), f"{kind}-{strategy}-{boundary.failpoint}")
        for kind in ("create", "switchover")
        for strategy in STRATEGIES
        for boundary in boundaries(PLANS[kind, strategy])
    ]
    # One database behind two proxies, killed after the first of its two deregistrations (one call per proxy).
    two_proxies = CrashCase(
        "switchover",
        "workaround",
        Boundary("after-call:DeregisterDBProxyTargets", detached=True),
        PLANS["switchover", "workaround"],
        database="billing-mysql",
        version="8.4.3",
    )
    cases.append(_param(two_proxies, TWO_PROXIES_ID))
    return cases


@pytest.mark.parametrize("case", crash_cases())
async def test_killed_at_a_step_boundary_the_run_resumes_and_finishes(
    case: CrashCase, engine, store, sandbox, rds, settings, tmp_path, zygote
):
    if case.strategy == "native":
        sandbox.control.config(proxy_mode="native")
    with forked_bots(zygote, tmp_path) as start:
        # Both processes are forked from the warm zygote on release().
        crashing = start(
            [case.kind, case.database, "--mode", case.strategy, "--as", REQUESTER]
            + (["--engine-version", case.version] if case.kind == "create" else []),
            bot_env(sandbox, settings.db_path, case.boundary.failpoint),
        )
        resuming = start(["resume"], bot_env(sandbox, settings.db_path))
        if case.kind == "switchover":
            created = await run_to_end(
                engine, request("create", case.database, mode=case.strategy, engine_version=case.version)
            )
            assert created.status == "succeeded", created.error
        since = last_seq(sandbox)

        async with approving(store, engine):
            crashing.release()
            killed_at = await crashing.killed_at_failpoint()
            (run,) = [r for r in store.runs.list(limit=5) if r.kind == case.kind and r.is_active]
            _assert_killed_where_expected(case, rds, sandbox, since)
            resuming.release()
            code = await resuming.ended()
        output = resuming.output()

    assert code == 0, output
    final = store.runs.get(run.id)
    assert final.status == "succeeded", (final.error, output)
    assert {s.status for s in store.steps.list(run.id)} == {"done"}

    # The final AWS state, read back through the API.
    for proxy in case.proxies:
        assert_proxy_serves(rds, proxy, case.database)
    deployment_name = final.meta["deployment_name"] if case.kind == "create" else created.meta["deployment_name"]
    if case.kind == "create":
        assert_created(rds, deployment_name, case.database, case.version)
    else:
        assert_switched(rds, deployment_name, case.database, case.version)

    # Nothing done twice, nothing missing: the timeline (what AWS saw) and the audit log (what the bot recorded).
    expected = case.expected_mutations()
    assert successful_calls(sandbox, since) == expected
    deregistrations = all_calls(sandbox, "DeregisterDBProxyTargets", since)
    assert sorted(c["params"].get("DBProxyName") for c in deregistrations) == sorted(
        case.proxies if "DeregisterDBProxyTargets" in expected else []
    ), "a deregistration was sent twice (or to the wrong proxy)"
    for action in ("CreateBlueGreenDeployment", "SwitchoverBlueGreenDeployment"):
        assert len(all_calls(sandbox, action, since)) == expected.get(action, 0), f"{action} was sent again"
    audit = [a.action for a in store.audit.list(run_id=run.id)]
    assert audit.count("run:resumed") == 1 and audit[-1] == "run:succeeded", audit

    if case.boundary.detached:
        # Honest reporting: the window covers AWS's own record of the proxy without its target (it runs from the
        # bot's deregistration request to the target seen AVAILABLE by the resumed process), and the time nobody was
        # driving the run counts as the bot's overhead, not as AWS's time.
        dead = resuming.released_at - killed_at
        for proxy in case.proxies:
            window = final.summary["windows"][proxy]
            removed, available = aws_no_target_period(sandbox, proxy, case.database, since)
            assert window["detached_at"] <= removed + CLOCK_SLACK, (window, removed)
            assert window["reattached_at"] >= available - CLOCK_SLACK, (window, available)
            if removed > killed_at:
                # Proxies are detached concurrently: the kill came before this one's deregistration reached AWS,
                # so the resumed process sent it and its window starts there.
                assert window["detached_at"] >= resuming.released_at - CLOCK_SLACK, (window, resuming.released_at)
                continue
            assert window["detached_at"] <= killed_at < resuming.released_at <= window["reattached_at"], window
            assert window["overhead_seconds"] >= dead - CLOCK_SLACK, (window, dead)

    # Last, so that every other promise is checked first: the audit log has each of those mutations once.
    assert audited_mutations(store, run.id) == expected


def _assert_killed_where_expected(case: CrashCase, rds, sandbox, since: int) -> None:
    """Check that the failpoint fired where the case says, from the AWS side."""
    action = case.boundary.failpoint.removeprefix("after-call:")
    if case.boundary.failpoint.startswith("after-call:"):
        assert any(c.get("code") is None for c in all_calls(sandbox, action, since)), f"no {action} before the kill"
    registered = [case.database in proxy_target_states(rds, proxy) for proxy in case.proxies]
    if case.boundary.detached and action != "RegisterDBProxyTargets":
        assert not all(registered), "the kill was meant to leave a proxy without its target"
