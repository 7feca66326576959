"""Every benchmark, one after the other, each in its own process; then a summary table from their JSON results.

python -m benchmarks.run_all [--only startup,ack_latency,...]      (what `make bench` runs)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import REPO_ROOT, RESULTS_DIR, clean_environment, millis, seconds

Headline = Callable[[dict[str, Any]], tuple[str, str, bool | None]]


def _ack(r: dict[str, Any]) -> tuple[str, str, bool | None]:
    stats = r["seconds"]["all"]
    figure = f"p50 {millis(stats['p50'])}, p99 {millis(stats['p99'])}, max {millis(stats['max'])}"
    return figure, "p99 < 100 ms", r["target"]["met"]


def _window(r: dict[str, Any]) -> tuple[str, str, bool | None]:
    bot = r["bot"]
    figure = f"overhead median {seconds(bot['overhead_median'])} (max {seconds(bot['overhead_max'])})"
    if "ratio_baseline_to_bot_window" in r:
        figure += f"; window {seconds(bot['window_median'])} vs {seconds(r['baseline']['window_median'])} baseline"
        figure += f" ({r['ratio_baseline_to_bot_window']:.1f}x)"
    return figure, "median overhead < 0.5 s", r["target"]["met"]


def _outage(r: dict[str, Any]) -> tuple[str, str, bool | None]:
    figure = f"longest gap {seconds(r['bot']['longest_gap_median'])}"
    if "baseline" in r:
        figure += f" vs {seconds(r['baseline']['longest_gap_median'])} baseline ({r['ratio_baseline_to_bot_gap']:.1f}x)"
    return figure, "-", None


def _memory(r: dict[str, Any]) -> tuple[str, str, bool | None]:
    bot = r["bot"]
    figure = (
        f"peak RSS {bot['peak_rss_mb']:.0f} MB, CPU {bot['cpu_seconds']:.1f} s, {r['slack_calls_per_run']:g} Slack"
        f" + {r['aws_calls_per_run']:.0f} AWS calls/run, {len(r['rate_limits']['violations'])} rate-limit violations"
    )
    return figure, "< 200 MB, 0 violations", r["target"]["met"]


def _discovery(r: dict[str, Any]) -> tuple[str, str, bool | None]:
    after = r["after"]
    per_run = after["aws_calls_per_run_excluding_scans"]
    figure = (
        f"{per_run['mean_at_aws_paging']:g} AWS calls/run (max {per_run['max']:g}) + {after['scans']} shared scans,"
        f" {after['describe_db_proxy_targets']['total']} DescribeDBProxyTargets, {len(after['missed'])} missed"
        f" (before: {r['before']['aws_calls_per_run_including_scans_at_aws_paging']:g} calls/run)"
    )
    return figure, "<= 40 calls/run, <= 1500 targets reads, 0 missed", r["target"]["met"]


def _startup(r: dict[str, Any]) -> tuple[str, str, bool | None]:
    return f"median {seconds(r['median'])} (max {seconds(r['max'])})", "-", None


BENCHMARKS: dict[str, Headline] = {
    "startup": _startup,
    "ack_latency": _ack,
    "proxy_detached_window": _window,
    "app_outage": _outage,
    "memory_50_runs": _memory,
    "proxy_discovery": _discovery,
}


def run(name: str) -> bool:
    print(f"\n##### {name}", flush=True)
    result_file = RESULTS_DIR / f"{name}.json"
    result_file.unlink(missing_ok=True)  # a stale file must not pass for this run's figures
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=REPO_ROOT, env=clean_environment())
    return done.returncode == 0 and result_file.exists()


def summary(outcomes: dict[str, bool], elapsed: float) -> None:
    print(f"\n===== summary ({elapsed / 60:.1f} min; JSON in benchmarks/results/)")
    rows = []
    for name, succeeded in outcomes.items():
        if not succeeded:
            rows.append((name, "FAILED (see its output above)", "", ""))
            continue
        figure, target, met = BENCHMARKS[name](json.loads((RESULTS_DIR / f"{name}.json").read_text()))
        rows.append((name, figure, target, {True: "met", False: "MISSED", None: ""}[met]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    outcomes = {name: run(name) for name in names}
    summary(outcomes, time.monotonic() - started)
    return 0 if all(outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
