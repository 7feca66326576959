"""The benchmarks' arithmetic: percentiles, the detached window read from a sandbox timeline, the app's longest
gap, and the rate-limit windows; their shared command line; and `sandbox.waiting`, which they share with the tests.
The benchmarks themselves run by hand (`make bench`), not here."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

import benchmarks.common
from benchmarks.app_outage import Probe, longest_gap
from benchmarks.common import benchmark_command, percentile, summarise, switchover_flags
from benchmarks.memory_50_runs import busiest_window, rate_limit_report
from benchmarks.proxy_detached_window import detached_windows
from sandbox.slack import RecordedCall
from sandbox.waiting import WaitTimeout, async_wait_until, wait_until

TARGET = "proxy-target:orders-proxy/default/orders-pg"
DEPLOYMENT = "blue-green:bgd-1"


def call(seq: int, t: float, action: str, **params: Any) -> dict[str, Any]:
    return {"seq": seq, "t": t, "kind": "call", "action": action, "params": params, "status": 200, "code": None}


def transition(seq: int, t: float, resource: str, state: str) -> dict[str, Any]:
    return {"seq": seq, "t": t, "kind": "transition", "resource": resource, "state": state}


def switchover_timeline(*, refused_register: bool = False) -> list[dict[str, Any]]:
    target = {"DBProxyName": "orders-proxy", "TargetGroupName": "default", "DBInstanceIdentifiers": ["orders-pg"]}
    entries = [
        call(1, 100.0, "DescribeDBProxyTargets", DBProxyName="orders-proxy"),
        call(2, 100.1, "DeregisterDBProxyTargets", **target),
        transition(3, 100.11, TARGET, "DEREGISTERED"),
        call(4, 100.2, "SwitchoverBlueGreenDeployment", BlueGreenDeploymentIdentifier="bgd-1"),
        transition(5, 100.21, DEPLOYMENT, "SWITCHOVER_IN_PROGRESS"),
        transition(6, 103.21, DEPLOYMENT, "SWITCHOVER_COMPLETED"),
        call(7, 103.4, "RegisterDBProxyTargets", **target),
        transition(8, 103.41, TARGET, "REGISTERING"),
        transition(9, 105.4, TARGET, "AVAILABLE"),
    ]
    if refused_register:
        refused = {
            **call(6, 103.3, "RegisterDBProxyTargets", **target),
            "status": 400,
            "code": "InvalidDBInstanceState",
        }
        entries.insert(6, {**refused, "seq": 6.5})
    return entries


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert summarise([0.3, 0.1, 0.2]) == {"n": 3, "min": 0.1, "p50": 0.2, "p99": 0.3, "max": 0.3, "mean": 0.2}
    assert summarise([]) == {"n": 0}


def test_detached_window_splits_aws_time_from_the_bots_overhead() -> None:
    window = detached_windows(switchover_timeline())["orders-proxy"]
    assert window.window == pytest.approx(5.3)
    assert window.deregister_call == pytest.approx(0.01)
    assert window.switchover == pytest.approx(3.0)
    assert window.registering == pytest.approx(2.0)
    # The bot's share: deregistered -> switchover call (0.09 s) and completed -> register call (0.19 s).
    assert window.overhead == pytest.approx(0.29)


def test_a_refused_registration_counts_as_the_bots_time() -> None:
    window = detached_windows(switchover_timeline(refused_register=True))["orders-proxy"]
    assert window.registering == pytest.approx(2.0)  # from the accepted call, not the refused one


def test_no_deregistration_means_no_window() -> None:
    assert detached_windows(switchover_timeline()[:1]) == {}


def test_longest_gap_is_between_successful_handshakes() -> None:
    probes = [Probe(0.0, True), Probe(0.05, True), Probe(0.1, False), Probe(0.15, False), Probe(0.2, True)]
    gap, failed = longest_gap(probes)
    assert gap == pytest.approx(0.15)
    assert failed == 2
    with pytest.raises(RuntimeError):
        longest_gap([Probe(0.0, True), Probe(0.05, False)])


def test_busiest_window_counts_calls_inside_any_60_seconds() -> None:
    assert busiest_window([]) == 0
    assert busiest_window([0.0, 59.9, 60.0, 120.0]) == 2
    assert busiest_window([float(t) for t in range(0, 120, 2)]) == 30


def recorded(method: str, t: float, channel: str = "C0OPS") -> RecordedCall:
    return RecordedCall(method=method, params={"channel": channel}, t=t, status=200, ok=True)


def test_rate_limits_are_checked_per_channel_for_post_message_and_per_workspace_for_update() -> None:
    calls = [recorded("chat.postMessage", i * 0.5, f"C{i % 2}") for i in range(120)]  # 60 a channel in 60 s
    calls += [recorded("chat.update", i * 1.0, f"C{i % 3}") for i in range(51)]  # 51 in 50 s, any channel
    calls += [recorded("auth.test", 0.0)]
    report = rate_limit_report(calls)
    assert [(v["method"], v["scope"], v["busiest_60s"]) for v in report["violations"]] == [
        ("chat.update", "workspace", 51)
    ]
    assert {c["scope"] for c in report["checked"] if c["method"] == "chat.postMessage"} == {"C0", "C1"}
    assert report["not_checked"] == {"auth.test": 1}


# ------------------------------------------------------------------------------------- sandbox.waiting


class Countdown:
    """A condition that is falsy `falsy_calls` times, then returns `value`; counts its calls."""

    def __init__(self, falsy_calls: int, value: Any) -> None:
        self.left = falsy_calls
        self.value = value
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.left:
            self.left -= 1
            return None
        return self.value


def test_wait_until_returns_the_truthy_value_once_it_comes() -> None:
    condition = Countdown(3, {"id": "r-1"})
    assert wait_until(condition, 5, interval=0.001, what="the run") == {"id": "r-1"}
    assert condition.calls == 4
    assert wait_until(lambda: 7, 0) == 7  # holds at once: no waiting, even with no time at all


def test_wait_until_times_out_naming_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"timed out after 0\.05 s waiting for the approval request") as caught:
        wait_until(lambda: [], 0.05, interval=0.01, what="the approval request")
    assert time.monotonic() - started >= 0.05
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, AssertionError)
    assert (caught.value.what, caught.value.timeout) == ("the approval request", 0.05)


def test_wait_until_names_the_condition_when_not_told_what() -> None:
    def the_listener_is_up() -> bool:
        return False

    with pytest.raises(WaitTimeout, match="the_listener_is_up"):
        wait_until(the_listener_is_up, 0.01, interval=0.005)


def test_an_error_in_the_condition_stops_the_wait_at_once() -> None:
    def exited() -> bool:
        raise RuntimeError("the bot exited with 1")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with 1"):
        wait_until(exited, 30)
    assert time.monotonic() - started < 1


async def test_async_wait_until_returns_the_value_and_lets_the_loop_run() -> None:
    ready: list[str] = []
    asyncio.get_running_loop().call_later(0.02, ready.append, "posted")
    assert await async_wait_until(lambda: ready, 5, interval=0.005, what="the message") == ["posted"]


async def test_async_wait_until_awaits_an_async_condition() -> None:
    condition = Countdown(2, 42)

    async def check() -> Any:
        return condition()

    assert await async_wait_until(check, 5, interval=0.001) == 42
    assert condition.calls == 3


async def test_async_wait_until_times_out_naming_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeout, match=r"timed out after 0\.05 s waiting for GET /healthz to answer 200"):
        await async_wait_until(lambda: 0, 0.05, interval=0.01, what="GET /healthz to answer 200")


# ------------------------------------------------------------------------------------- the command line


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    results = tmp_path / "repo" / "benchmarks" / "results"
    monkeypatch.setattr(benchmarks.common, "RESULTS_DIR", results)
    return results


def demo_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--starts", type=int, default=5, help="how many starts (default %(default)s)")


def test_a_benchmark_measures_in_a_temporary_directory_reports_and_writes_json(
    results_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdirs: list[Path] = []

    def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
        assert workdir.is_dir()
        workdirs.append(workdir)
        return {"starts": args.starts, "median": 0.5}

    def report(result: dict[str, Any]) -> None:
        print(f"REPORT {result}")

    main = benchmark_command(
        "demo",
        "The demo benchmark.",
        demo_flags,
        lambda args, workdir: asyncio.to_thread(measure, args, workdir),  # as memory_50_runs measures
        report,
        announce=lambda args: f"demo: {args.starts} starts",
    )
    assert asyncio.run(main(["--starts", "2"])) == 0

    document = json.loads((results_dir / "demo.json").read_text())
    assert (document["benchmark"], document["command"]) == ("demo", "python -m benchmarks.demo --starts 2")
    assert (document["starts"], document["median"]) == (2, 0.5)
    assert {"measured_at", "machine"} <= document.keys()
    assert not workdirs[0].exists()  # the temporary directory is gone
    out = capsys.readouterr().out
    assert out.index("demo: 2 starts") < out.index("REPORT {'starts': 2, 'median': 0.5}") < out.index("written to")
    assert "written to benchmarks/results/demo.json" in out


def test_a_diverted_run_writes_nothing(results_dir: Path) -> None:
    async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
        raise AssertionError("not measured when diverted")

    async def divert(args: argparse.Namespace) -> int | None:
        return 3 if args.starts == 0 else None

    main = benchmark_command("demo", None, demo_flags, measure, print, divert=divert)
    assert asyncio.run(main(["--starts", "0"])) == 3
    assert not results_dir.exists()


def test_switchover_flags_take_each_benchmarks_defaults() -> None:
    parser = argparse.ArgumentParser()
    switchover_flags(runs=7, baseline_runs=2)(parser)
    assert vars(parser.parse_args([])) == {"runs": 7, "baseline_runs": 2, "baseline_poll": 30.0}
    assert vars(parser.parse_args(["--runs", "1", "--baseline-runs", "0", "--baseline-poll", "0.5"])) == {
        "runs": 1,
        "baseline_runs": 0,
        "baseline_poll": 0.5,
    }


@pytest.mark.parametrize("name", ["startup", "ack_latency", "proxy_detached_window", "app_outage", "memory_50_runs"])
async def test_every_benchmark_has_its_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as exited:
        await module.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m benchmarks.{name}")
    assert " ".join((module.__doc__ or "").split()[:8]) in " ".join(out.split())  # its docstring, rewrapped
