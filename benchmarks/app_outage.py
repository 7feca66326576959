"""The outage an application actually sees during a workaround switchover of `orders-pg`.

A prober thread connects to `orders-proxy`'s sandbox TCP listener every 50 ms; a handshake succeeds when the
listener answers `OK orders-proxy <target>` (it does only while the proxy has an AVAILABLE target). The figure is the
longest time between two successful handshakes while the switchover runs, for the bot and for the baseline that
polls every 30 s like boto3's waiters (same sandbox durations, same run, real seconds).

    python -m benchmarks.app_outage [--runs 3] [--baseline-runs 1] [--baseline-poll 30]
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    SandboxProcess,
    benchmark_command,
    engine_on_sandbox,
    print_rows,
    run_main,
    seconds,
    switchover_flags,
)
from benchmarks.proxy_detached_window import (
    PROXY,
    baseline_switchover,
    bot_switchover,
    detached_windows,
    last_seq,
    prepare_deployment,
)
from sandbox.aws.client import SandboxClient
from sandbox.waiting import async_wait_until

NAME = "app_outage"
PROBE_INTERVAL = 0.05
HANDSHAKE_TIMEOUT = 0.5
HANDSHAKES_BEFORE = 5  # successful handshakes the prober has made before the switchover starts


@dataclass(frozen=True)
class Probe:
    at: float  # time.monotonic() when the handshake finished (or failed)
    ok: bool


class Prober:
    """Connects to `host:port` every `interval` seconds from its own thread and records each handshake."""

    def __init__(self, address: str, interval: float = PROBE_INTERVAL) -> None:
        host, port = address.rsplit(":", 1)
        self._address = (host, int(port))
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="app-outage-prober", daemon=True)
        self.probes: list[Probe] = []

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.probes.append(Probe(*self._handshake()))
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _handshake(self) -> tuple[float, bool]:
        try:
            with socket.create_connection(self._address, timeout=HANDSHAKE_TIMEOUT) as conn:
                line = conn.makefile("rb").readline()
            return time.monotonic(), line.startswith(b"OK ")
        except OSError:
            return time.monotonic(), False


def longest_gap(probes: list[Probe]) -> tuple[float, int]:
    """The longest time between two successful handshakes, and how many handshakes failed."""
    successes = [p.at for p in probes if p.ok]
    if len(successes) < 2:
        raise RuntimeError("the prober saw fewer than two successful handshakes")
    gap = max(later - earlier for earlier, later in itertools.pairwise(successes))
    return gap, sum(not p.ok for p in probes)


async def probe_during(control: SandboxClient, switchover: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Runs `switchover` with the prober on; returns the app's longest gap next to the sandbox's own window."""
    since = last_seq(control)
    with Prober(control.listeners()[PROXY]) as prober:
        await async_wait_until(  # a few successful handshakes before the window opens
            lambda: sum(p.ok for p in prober.probes) >= HANDSHAKES_BEFORE, 10, what="handshakes before the switchover"
        )
        await switchover()
        # The listener follows the routes on the sandbox's next tick: wait for the first handshake after the end.
        ended = time.monotonic()
        await async_wait_until(
            lambda: any(p.ok and p.at > ended for p in prober.probes), 10, what="a handshake after the run"
        )
    gap, failed = longest_gap(prober.probes)
    window = detached_windows(control.timeline(since))[PROXY]
    return {
        "longest_gap": round(gap, 4),
        "failed_handshakes": failed,
        "handshakes": len(prober.probes),
        "sandbox_window": round(window.window, 4),
    }


async def measure(runs: int, baseline_runs: int, baseline_poll: float, workdir: Path) -> dict[str, Any]:
    bot_rows: list[dict[str, Any]] = []
    baseline_rows: list[dict[str, Any]] = []
    with SandboxProcess() as sandbox:
        control = sandbox.control
        async with engine_on_sandbox(sandbox.endpoint, workdir / "bluegreen.db") as engine:
            for index in range(runs):
                await prepare_deployment(engine, control)
                row = await probe_during(control, lambda: bot_switchover(engine))
                bot_rows.append(row)
                print(f"  bot switchover {index + 1}/{runs}: longest gap {row['longest_gap']:.3f} s", flush=True)
            for index in range(baseline_runs):
                await prepare_deployment(engine, control)
                row = await probe_during(
                    control, lambda: asyncio.to_thread(baseline_switchover, sandbox.endpoint, baseline_poll)
                )
                baseline_rows.append(row)
                print(f"  baseline switchover {index + 1}/{baseline_runs}: longest gap {row['longest_gap']:.3f} s")
    return figures(bot_rows, baseline_rows, baseline_poll)


def figures(bot_rows: list[dict[str, Any]], baseline_rows: list[dict[str, Any]], poll: float) -> dict[str, Any]:
    bot_gaps = [row["longest_gap"] for row in bot_rows]
    result: dict[str, Any] = {
        "probe_interval": PROBE_INTERVAL,
        "bot": {
            "switchovers": bot_rows,
            "longest_gap_median": round(statistics.median(bot_gaps), 4),
            "longest_gap_max": round(max(bot_gaps), 4),
        },
    }
    if baseline_rows:
        baseline_gaps = [row["longest_gap"] for row in baseline_rows]
        result["baseline"] = {
            "poll_interval": poll,
            "switchovers": baseline_rows,
            "longest_gap_median": round(statistics.median(baseline_gaps), 4),
        }
        result["ratio_baseline_to_bot_gap"] = round(statistics.median(baseline_gaps) / statistics.median(bot_gaps), 2)
    return result


def report(result: dict[str, Any]) -> None:
    bot = result["bot"]
    rows = [
        ("bot switchovers", str(len(bot["switchovers"]))),
        (
            "longest gap, bot (median / max)",
            f"{seconds(bot['longest_gap_median'])} / {seconds(bot['longest_gap_max'])}",
        ),
    ]
    if "baseline" in result:
        baseline = result["baseline"]
        rows += [
            (f"longest gap, baseline ({baseline['poll_interval']:g} s polls)", seconds(baseline["longest_gap_median"])),
            ("baseline / bot", f"{result['ratio_baseline_to_bot_gap']:.1f}x"),
        ]
    print_rows(f"application outage through orders-proxy (probe every {PROBE_INTERVAL * 1000:.0f} ms)", rows)


main = benchmark_command(
    NAME,
    __doc__,
    switchover_flags(runs=3, baseline_runs=1),
    lambda args, workdir: measure(args.runs, args.baseline_runs, args.baseline_poll, workdir),
    report,
    announce=lambda args: f"app_outage: {args.runs} bot and {args.baseline_runs} baseline switchovers",
)


if __name__ == "__main__":
    run_main(main)
