"""Start-up time of `python -m bot serve`: from spawning the process to the first 200 on `GET /healthz`.

Each start gets a fresh database file and a free port; Slack is the local stand-in (SLACK_API_URL). `/healthz` is
polled every 5 ms, so the figure is at most 5 ms late. Median of 5 starts.

    python -m benchmarks.startup [--starts 5]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common import (
    APPROVER,
    BOT_TOKEN,
    REQUESTER,
    BotServer,
    benchmark_command,
    new_signing_secret,
    print_rows,
    run_main,
    seconds,
    summarise,
)
from sandbox.slack import SlackStandIn

NAME = "startup"


async def measure(starts: int, workdir: Path) -> dict[str, Any]:
    secret = new_signing_secret()
    times: list[float] = []
    async with SlackStandIn(signing_secret=secret, bot_token=BOT_TOKEN) as slack:
        for index in range(starts):
            env = {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": secret,
                "SLACK_API_URL": slack.base_url,
                "BLUEGREEN_DB": str(workdir / f"start-{index}.db"),
                "BLUEGREEN_OPERATORS": f"{REQUESTER},{APPROVER}",
                "BLUEGREEN_APPROVERS": APPROVER,
            }
            bot = BotServer(env, workdir / f"start-{index}.log")
            bot.spawn()
            try:
                times.append(await bot.healthy())
            finally:
                bot.stop()
            print(f"  start {index + 1}/{starts}: healthy after {times[-1]:.3f} s", flush=True)
    return {"starts": [round(t, 4) for t in times], "median": round(statistics.median(times), 4), **summarise(times)}


def report(result: dict[str, Any]) -> None:
    print_rows(
        "start-up of `python -m bot serve` to a healthy /healthz",
        [
            ("starts", str(len(result["starts"]))),
            ("median", seconds(result["median"])),
            ("min / max", f"{seconds(result['min'])} / {seconds(result['max'])}"),
        ],
    )


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--starts", type=int, default=5, help="how many starts (default %(default)s)")


main = benchmark_command(NAME, __doc__, flags, lambda args, workdir: measure(args.starts, workdir), report)


if __name__ == "__main__":
    run_main(main)
