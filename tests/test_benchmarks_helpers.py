"""The benchmarks' arithmetic: percentiles, the detached window read from a sandbox timeline, the app's longest
gap, and the rate-limit windows. The benchmarks themselves run by hand (`make bench`), not here."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.app_outage import Probe, longest_gap
from benchmarks.common import percentile, summarise
from benchmarks.memory_50_runs import busiest_window, rate_limit_report
from benchmarks.proxy_detached_window import detached_windows
from sandbox.slack.state import RecordedCall

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
