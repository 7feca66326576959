"""The bot killed with SIGKILL at the worst moments (real subprocesses, `python -m bot`), then started again.

Each test asserts that the run finishes from the real AWS state, that no mutation that matters happened twice, and
that a proxy left without its target by the crash gets it back, with the time it stayed detached reported honestly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.waiting import WaitTimeout, async_wait_until
from tests.engine_fixtures import APPROVER, REQUESTER, calls, engine_env, pending_request, request, run_to_end, targets

REPO = Path(__file__).resolve().parent.parent


def bot_env(sandbox, db_path: str, failpoint: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEGREEN_")}
    env.update(engine_env(Path(db_path)))
    env.update(AWS_ENDPOINT_URL=sandbox.endpoint, AWS_DEFAULT_REGION="us-east-1", PYTHONUNBUFFERED="1")
    if failpoint:
        env["BLUEGREEN_FAILPOINT"] = failpoint
    return env


def start_bot(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=timeout)
    return proc.returncode, output


def proxy_target_ids(rds, proxy: str) -> set[str]:
    return {t["RdsResourceId"] for t in targets(rds, proxy)}


async def wait_killed(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    try:
        await async_wait_until(
            lambda: proc.poll() is not None, timeout, interval=0.05, what="the bot to be killed at its failpoint"
        )
    except WaitTimeout:
        proc.kill()
        raise
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == -signal.SIGKILL, output
    return output


@pytest.mark.parametrize(
    "failpoint",
    [
        "after-call:DeregisterDBProxyTargets",  # the proxy has no target and nobody is driving the run
        "after-call:SwitchoverBlueGreenDeployment",  # killed while waiting for the switchover
    ],
)
async def test_switchover_resumes_after_sigkill(engine, sandbox, rds, settings, failpoint):
    created = await run_to_end(engine, request("create", "orders-pg", mode="workaround"))
    assert created.status == "succeeded", created.error
    env = bot_env(sandbox, settings.db_path, failpoint)

    proc = start_bot(["switchover", "orders-pg", "--as", REQUESTER], env)
    run_id = await _approve_when_asked(engine, proc)
    output = await wait_killed(proc)
    killed_at = time.time()
    assert "orders-pg" not in proxy_target_ids(rds, "orders-proxy") or "Switchover" in failpoint, output
    assert engine.store.runs.get(run_id).is_active

    code, output = finish(start_bot(["resume"], bot_env(sandbox, settings.db_path)))

    assert code == 0, output
    run = engine.store.runs.get(run_id)
    assert run.status == "succeeded", run.error
    assert len(calls(sandbox, "SwitchoverBlueGreenDeployment")) == 1
    switch_seq = calls(sandbox, "SwitchoverBlueGreenDeployment")[0]["seq"]
    deregs = [c for c in calls(sandbox, "DeregisterDBProxyTargets") if c["seq"] > _last_create(sandbox)]
    regs = [c for c in calls(sandbox, "RegisterDBProxyTargets") if c["seq"] > switch_seq]
    assert len(deregs) == 1 and len(regs) == 1
    assert proxy_target_ids(rds, "orders-proxy") == {"orders-pg"}
    assert rds.describe_db_instances(DBInstanceIdentifier="orders-pg-old1")["DBInstances"]
    window = run.summary["windows"]["orders-proxy"]
    # Honest: the window includes the time nobody was driving the run.
    assert window["reattached_at"] > killed_at and window["seconds"] >= window["reattached_at"] - killed_at
    actions = [a.action for a in engine.store.audit.list(run_id=run_id)]
    assert "run:resumed" in actions and "run:succeeded" in actions
    assert actions.count("aws:SwitchoverBlueGreenDeployment") == 1


async def test_create_resumes_after_sigkill_while_the_proxy_is_detached(engine, sandbox, rds, settings):
    env = bot_env(sandbox, settings.db_path, "after-call:DeregisterDBProxyTargets")
    proc = start_bot(["create", "orders-pg", "--mode", "workaround", "--as", REQUESTER], env)
    output = await wait_killed(proc)
    assert proxy_target_ids(rds, "orders-proxy") == set(), output

    code, output = finish(start_bot(["resume"], bot_env(sandbox, settings.db_path)))

    assert code == 0, output
    assert len(calls(sandbox, "CreateBlueGreenDeployment")) == 1
    assert len(calls(sandbox, "DeregisterDBProxyTargets")) == 1
    assert proxy_target_ids(rds, "orders-proxy") == {"orders-pg"}
    (run,) = engine.store.runs.list(limit=1)
    assert run.status == "succeeded", run.error
    assert "no available target" in output


async def _approve_when_asked(engine, proc: subprocess.Popen[str]) -> str:
    def run_started() -> str | None:
        runs = [r for r in engine.store.runs.list(limit=5) if r.kind == "switchover"]
        if runs:
            return runs[0].id
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read() if proc.stdout else "bot exited")
        return None

    run_id = await async_wait_until(run_started, 30, interval=0.05, what="the switchover run to start")
    pending = await pending_request(engine.store, run_id)
    await engine.approve(pending.id, APPROVER)
    return run_id


def _last_create(sandbox) -> int:
    return max(c["seq"] for c in calls(sandbox, "CreateBlueGreenDeployment"))
