"""What every benchmark shares: the sandbox AWS and the Slack bot as subprocesses, an engine wired to the sandbox,
percentiles, and the command line that measures, prints the figures and writes them to
`benchmarks/results/<name>.json`. Waiting on a condition is `sandbox.waiting`'s, shared with the tests.

The sandbox always runs in its own process, so the bot's event loop never shares a GIL with moto.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import secrets
import select
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.aws.gateway import AwsGateway
from bot.config import Settings, load_settings
from bot.workflow.engine import Engine
from bot.workflow.events import Sink
from bot.workflow.gateway_pool import GatewayPool
from sandbox.waiting import async_wait_until
from storage import Store, open_store

if TYPE_CHECKING:
    from sandbox.aws.client import SandboxClient

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
REGION = "us-east-1"
REQUESTER, APPROVER, OUTSIDER = "U0ALICE", "U0BOB", "U0MALLORY"
OPS_CHANNEL = "C0OPS"
BOT_TOKEN = "xoxb-bench"  # the Slack stand-in's token: not a secret
SANDBOX_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Settings that must not leak from the developer's shell into a benchmark (real AWS, a real config file).
LEAKY_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_RDS", "BLUEGREEN_CONFIG")


def use_sandbox_credentials() -> None:
    """Benchmarks never talk to real AWS: dummy credentials, and every client is pointed at the sandbox."""
    os.environ.update(SANDBOX_CREDENTIALS)
    for name in LEAKY_VARIABLES:
        os.environ.pop(name, None)


def clean_environment(**extra: str) -> dict[str, str]:
    """The environment for a child process: ours minus leaky settings, plus sandbox credentials and `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES and not k.startswith("SLACK_")}
    return {**env, **SANDBOX_CREDENTIALS, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", **extra}


def new_signing_secret() -> str:
    return secrets.token_hex(16)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------------------------------------ the sandbox AWS


class SandboxProcess:
    """`python -m bot sandbox --port 0` in a subprocess; `.endpoint` and `.control` once started."""

    def __init__(self, *, speed: float = 1.0, proxy_mode: str = "legacy", start_timeout: float = 60.0) -> None:
        self._args = ["--port", "0", "--speed", repr(speed), "--proxy-mode", proxy_mode]
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[str] | None = None
        self.endpoint = ""

    @property
    def control(self) -> SandboxClient:
        # Imported here: `sandbox.aws` loads moto, which a measured bot process must not carry.
        from sandbox.aws.client import SandboxClient

        return SandboxClient(self.endpoint, timeout=30)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> SandboxProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "sandbox", *self._args],
            cwd=REPO_ROOT,
            env=clean_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            self.endpoint = self._read_endpoint()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_endpoint(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the sandbox exited with {self._proc.returncode} before listening")
            ready, _, _ = select.select([self._proc.stdout], [], [], 0.2)
            if ready:
                match = re.search(r"listening on (http://\S+)", self._proc.stdout.readline())
                if match:
                    return match.group(1)
        raise TimeoutError(f"the sandbox did not start within {self._start_timeout} s")

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------- the engine, in this process


def bench_settings(db_path: Path, **extra: str) -> Settings:
    return load_settings(
        {
            "BLUEGREEN_DB": str(db_path),
            "BLUEGREEN_OPERATORS": f"{REQUESTER},{APPROVER}",
            "BLUEGREEN_APPROVERS": f"{APPROVER},U0CAROL",
            "BLUEGREEN_APPROVAL_TTL": "600",
            "AWS_REGION": REGION,
            **extra,
        }
    )


def bench_engine(endpoint: str, settings: Settings, store: Store, sinks: Sequence[Sink] = ()) -> Engine:
    gateways = GatewayPool(lambda env: AwsGateway(region=REGION, endpoint_url=endpoint))
    return Engine(store=store, settings=settings, sinks=sinks, gateways=gateways)


@contextlib.asynccontextmanager
async def engine_on_sandbox(endpoint: str, db_path: Path, sinks: Sequence[Sink] = ()):  # type: ignore[no-untyped-def]
    store = open_store(str(db_path))
    engine = bench_engine(endpoint, bench_settings(db_path), store, sinks)
    try:
        yield engine
    finally:
        await engine.aclose()
        await engine.gateways.aclose()
        store.close()


async def approve_when_asked(engine: Engine, run_id: str, approver: str = APPROVER, timeout: float = 120) -> None:
    """Approve the run's pending approval request as a second person, through the engine's two-person rule."""

    def pending() -> str | None:
        request = engine.store.approvals.latest(run_id)
        return request.id if request and request.status == "pending" else None

    request_id = await async_wait_until(pending, timeout, what=f"an approval request on {run_id}")
    await engine.approve(request_id, approver)


# ------------------------------------------------------------------------------------ the Slack bot, as a process


class BotServer:
    """`python -m bot serve` on a free port with the given environment; its output goes to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.events_url = f"{self.url}/slack/events"
        self._env = clean_environment(**env, PORT=str(self.port))
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def spawn(self) -> None:
        with self._log_path.open("ab") as log:
            self.spawned_at = time.perf_counter()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"], cwd=REPO_ROOT, env=self._env, stdout=log, stderr=log
            )

    async def healthy(self, timeout: float = 60.0, interval: float = 0.005) -> float:
        """Poll `GET /healthz` until it answers 200; returns seconds since spawn."""
        proc = self._proc
        assert proc is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:

            async def since_spawn_once_healthy() -> float | None:
                if proc.poll() is not None:
                    raise RuntimeError(f"the bot exited with {proc.returncode}; see {self._log_path}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return time.perf_counter() - self.spawned_at
                return None

            what = f"a healthy bot (GET /healthz answering 200); see {self._log_path}"
            return await async_wait_until(since_spawn_once_healthy, timeout, interval=interval, what=what)

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None


@contextlib.asynccontextmanager
async def serving_bot(env: dict[str, str], log_path: Path):  # type: ignore[no-untyped-def]
    bot = BotServer(env, log_path)
    bot.spawn()
    try:
        await bot.healthy()
        yield bot
    finally:
        bot.stop()


# ------------------------------------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarise(values: Sequence[float], digits: int = 4) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), digits),
        "p50": round(percentile(values, 50), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
        "mean": round(sum(values) / len(values), digits),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # Other work on the machine skews every figure: the load average when the results were written.
        "load_average_1_5_15": [round(value, 2) for value in os.getloadavg()],
    }


def write_results(name: str, figures: dict[str, Any], command: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "benchmark": name,
        "command": command,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **figures,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def print_rows(title: str, rows: Sequence[tuple[str, str]]) -> None:
    width = max((len(label) for label, _ in rows), default=0)
    print(f"\n== {title}")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def seconds(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f} s"


def millis(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


@contextlib.contextmanager
def temporary_directory(prefix: str) -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as path:
        yield Path(path)


# -------------------------------------------------------------------------------------------- the command line

Flags = Callable[[argparse.ArgumentParser], None]
Measure = Callable[[argparse.Namespace, Path], Awaitable[dict[str, Any]]]
Main = Callable[[list[str]], Awaitable[int]]


def switchover_flags(*, runs: int, baseline_runs: int) -> Flags:
    """`--runs`, `--baseline-runs` and `--baseline-poll`: the flags of a benchmark that times the bot's switchovers
    against the runbook's boto3 baseline."""

    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--runs", type=int, default=runs, help="bot switchovers (default %(default)s)")
        parser.add_argument(
            "--baseline-runs", type=int, default=baseline_runs, help="baseline switchovers (default %(default)s)"
        )
        parser.add_argument("--baseline-poll", type=float, default=30.0, help="baseline poll interval, s (default 30)")

    return add


def benchmark_command(
    name: str,
    description: str | None,
    flags: Flags,
    measure: Measure,
    report: Callable[[dict[str, Any]], None],
    *,
    announce: Callable[[argparse.Namespace], str] | None = None,
    divert: Callable[[argparse.Namespace], Awaitable[int | None]] | None = None,
) -> Main:
    """The `main(argv)` of `python -m benchmarks.<name>`: parses the flags `flags` adds (`--help` shows
    `description`), prints `announce(args)` if given, awaits `measure(args, workdir)` in a fresh temporary directory,
    prints the figures with `report`, and writes them with the command line to `benchmarks/results/<name>.json`.

    `divert(args)`, if given, runs first: when it returns an exit code, that is the whole of the run (how
    memory_50_runs' `--drive` process answers with JSON on stdout and writes nothing)."""

    async def main(argv: list[str]) -> int:
        parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=description)
        flags(parser)
        args = parser.parse_args(argv)
        if divert is not None:
            code = await divert(args)
            if code is not None:
                return code
        if announce is not None:
            print(announce(args), flush=True)
        with temporary_directory(name) as workdir:
            result = await measure(args, workdir)
        report(result)
        path = write_results(name, result, f"python -m benchmarks.{name} " + " ".join(argv))
        print(f"  written to {path.relative_to(path.parents[2])}")
        return 0

    return main


def run_main(main: Main) -> None:
    """Entry point of a benchmark module: `asyncio.run(main(argv))`, exit code passed through."""
    use_sandbox_credentials()
    sys.exit(asyncio.run(main(sys.argv[1:])))
