"""`python -m bot ...` processes forked from one warm interpreter, for matrices that start many of them.

Starting `python -m bot` costs about 0.75 s of CPU, nearly all of it imports; a matrix of twenty processes pays that
twenty times. A zygote (one per test worker) imports the bot once, decodes botocore's data once (each child would
again: ~0.1 s), and then forks one process per command. Each is a
real process of its own: its own pid, environment, output file, exit code and signals, running `bot.cli.main(args)`
as `python -m bot` does (bot/__main__.py), minus the imports. The zygote is single-threaded and never runs an event
loop, so forking it is safe; it reports each child's pid and, once it has reaped it, its exit code.

- `zygote` (session fixture; import `zygote_fixture`): the warm interpreter.
- `forked_bots(zygote, tmp_path)`: a factory of `ForkedBot`, like `tests.matrix_fixtures.bot_processes`; whatever is
  still running at the end is killed (only processes started here).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.waiting import WaitTimeout, async_wait_until, wait_until

REPO = Path(__file__).resolve().parent.parent
SETTLE_TIMEOUT = 60.0

ZYGOTE = r"""
import json, os, select, sys, threading, traceback
import botocore.session
import bot.cli
import handlers.app, handlers.check  # what `serve` and `check` load (bot/cli.py's DELEGATED)
from bot.aws.sessions import new_session
from bot.workflow import failpoints

# Decode botocore's JSON data (endpoints, the service models) once here rather than in every child: a sync client of
# each service the bot uses, built on the loader that every session of the bot shares (bot/aws/sessions.py).
_warm = botocore.session.get_session()
_warm.register_component("data_loader", new_session().get_component("data_loader"))
for _service in ("rds", "cloudwatch", "sts"):
    _warm.create_client(_service, region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-")
assert threading.active_count() == 1, "the zygote must stay single-threaded to fork safely"

def child(request):
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if request.get("err") else log
    os.dup2(err, 2)
    os.environ.clear()
    os.environ.update(request["env"])
    failpoints.arm(os.environ.get("BLUEGREEN_FAILPOINT", ""))
    code = 1
    try:
        code = bot.cli.main(request["args"])
    except SystemExit as exit:
        code = 0 if exit.code is None else exit.code if isinstance(exit.code, int) else 1
        if isinstance(exit.code, str):
            print(exit.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

children = 0
while True:
    if select.select([sys.stdin], [], [], 0.05 if children else None)[0]:
        line = sys.stdin.readline()
        if not line:
            break
        pid = os.fork()
        if pid == 0:
            child(json.loads(line))
        children += 1
        print(json.dumps({"started": pid}), flush=True)
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        children -= 1
        print(json.dumps({"ended": pid, "code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Zygote:
    """The warm interpreter: `fork(args, env, log)` returns the new process's pid; `code(pid)` its exit code once
    the zygote has reaped it (None before)."""

    def __init__(self, log_path: Path) -> None:
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            cwd=REPO,
            # Unbuffered, as each child's environment asks (PYTHONUNBUFFERED is read at start-up, so here): what a
            # process printed is in its log even when it is killed.
            env={**{k: v for k, v in os.environ.items() if not k.startswith("BLUEGREEN_")}, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        self._pending = b""
        self._codes: dict[int, int] = {}
        self._started: list[int] = []

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self._out, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "started" in message:
                self._started.append(message["started"])
            else:
                self._codes[message["ended"]] = message["code"]

    def fork(self, args: list[str], env: dict[str, str], log: Path, err: Path | None = None) -> int:
        """Fork `python -m bot ARGS` with `env`, its stdout (and stderr, unless `err` is given) to `log`."""
        assert self.proc.stdin is not None and self.proc.poll() is None, "the zygote is gone"
        before = len(self._started)
        request = {"args": args, "env": env, "log": str(log), "err": str(err) if err else None}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

        def forked() -> int | None:
            self._pump()
            return self._started[before] if len(self._started) > before else None

        return wait_until(forked, 10, interval=0.005, what="the zygote to fork")

    def code(self, pid: int) -> int | None:
        self._pump()
        return self._codes.get(pid)

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


class ForkedBot:
    """`python -m bot ARGS`, forked from the zygote on `release()` (the same interface as
    `tests.matrix_fixtures.BotProcess`, where a test needs it)."""

    def __init__(self, zygote: Zygote, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.zygote = zygote
        self.args = args
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.pid: int | None = None
        self.released_at: float | None = None

    def release(self) -> None:
        self.released_at = time.time()  # before the fork: the process can have done nothing before this time
        self.pid = self.zygote.fork(self.args, self.env, self.log_path)

    @property
    def returncode(self) -> int | None:
        return None if self.pid is None else self.zygote.code(self.pid)

    def send_signal(self, signum: int) -> None:
        assert self.pid is not None and self.returncode is None, "not running"
        os.kill(self.pid, signum)

    async def ended(self, timeout: float = SETTLE_TIMEOUT) -> int:
        """Wait for the process to exit (reaped by the zygote) and return its exit code."""
        try:
            await async_wait_until(
                lambda: self.returncode is not None,
                timeout,
                interval=0.02,
                what=f"`python -m bot {' '.join(self.args)}` to exit",
            )
        except WaitTimeout:
            self.stop()
            raise
        code = self.returncode
        assert code is not None
        return code

    async def killed_at_failpoint(self, timeout: float = SETTLE_TIMEOUT) -> float:
        """Wait for the process to die of SIGKILL (its BLUEGREEN_FAILPOINT) and return when that was seen."""
        code = await self.ended(timeout)
        assert code == -signal.SIGKILL, f"expected SIGKILL at the failpoint, got exit {code}:\n{self.output()}"
        return time.time()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.pid is not None and self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(WaitTimeout):
                wait_until(lambda: self.returncode is not None, 5, interval=0.02, what="the killed process reaped")


@dataclass(frozen=True)
class Completed:
    """What `subprocess.run(..., capture_output=True, text=True)` returns, for a forked `python -m bot`."""

    returncode: int
    stdout: str
    stderr: str


def run_forked(zygote: Zygote, args: list[str], env: dict[str, str], directory: Path, timeout: float = 60) -> Completed:
    """`python -m bot ARGS` with exactly `env`, forked from the zygote and waited for (blocking, like
    `subprocess.run`); its stdout and stderr are kept apart in files under `directory`."""
    out = Path(tempfile.mkstemp(prefix="bot-", suffix=".out", dir=directory)[1])
    err = out.with_suffix(".err")
    pid = zygote.fork(args, env, out, err)
    try:
        wait_until(
            lambda: zygote.code(pid) is not None, timeout, interval=0.01, what=f"`python -m bot {' '.join(args)}`"
        )
    except WaitTimeout:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise
    code = zygote.code(pid)
    assert code is not None
    return Completed(code, out.read_text(errors="replace"), err.read_text(errors="replace"))


@pytest.fixture(scope="session", name="zygote")
def zygote_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    warm = Zygote(tmp_path_factory.mktemp("zygote") / "zygote.log")
    yield warm
    warm.close()


@contextlib.contextmanager
def forked_bots(zygote: Zygote, tmp_path: Path) -> Iterator[Any]:
    """A factory of ForkedBot; whatever is still running at the end is killed (only processes started here)."""
    started: list[ForkedBot] = []

    def start(args: list[str], env: dict[str, str]) -> ForkedBot:
        process = ForkedBot(zygote, args, env, tmp_path / f"bot-{len(started)}.log")
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()
