"""`python -m bot ...`: the same engine and store as the Slack bot, from a terminal.

Operators script the bot with it, and tests drive the engine without Slack through it. A run started here is
driven by this process with live progress; `approve` and `cancel` act on runs driven elsewhere (same database file).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from bot.cli_sweep import CLEANUP_DATABASE, CLEANUP_USAGE, cleanup_usage, sweep_command, with_sweep_options
from bot.config import ConfigError, Settings, load_settings
from bot.errors import ApprovalRefused, BadRequest, BlueGreenError
from bot.gates.model import GatesFailed, gate_rows
from bot.logs import configure_logging, known_secrets
from bot.planning.requests import MODES, RunRequest
from bot.sinks.console import ConsoleSink
from bot.workflow.draining import CLI_HINT, SigtermHandler
from bot.workflow.engine import Engine
from storage import open_store

EXIT_OK, EXIT_FAILED, EXIT_BAD_REQUEST = 0, 1, 2
RUN_COMMANDS = ("create", "upgrade", "switchover", "cleanup", "rollback", "rehearse")

# Commands served by other top-level packages, named rather than imported: the core never imports the Slack front
# end (`handlers`) or the simulator (`sandbox`, installed with the `[sandbox]` extra).
DELEGATED = {
    "serve": ("handlers.app", "main"),
    "check": ("handlers.check", "main"),
    "sandbox": ("sandbox.cli", "run_sandbox"),
    "demo": ("sandbox.demo", "run_demo"),
}
SANDBOX_ONLY_MODULES = {"moto", "boto3", "sandbox"}
SANDBOX_MISSING = (
    "`python -m bot {command}` needs the simulator, which is installed with the sandbox extra:\n"
    "    pip install 'bluegreen-bot[sandbox]'    (or `make setup` in a checkout)"
)


def _default_user() -> str:
    return os.environ.get("BLUEGREEN_USER") or f"cli:{getpass.getuser()}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Blue/Green Deployments behind RDS Proxy.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--env", "--environment", dest="environment", metavar="E",
            help="environment from BLUEGREEN_CONFIG (default: the first)",
        )  # fmt: skip
        p.add_argument("--db", dest="db_path", help="SQLite file (default: $BLUEGREEN_DB or ./bluegreen.db)")
        return p

    def with_identity(p: argparse.ArgumentParser, required: bool = False) -> None:
        p.add_argument(
            "--as", dest="user", required=required, default=None if required else _default_user(),
            help="who is acting (a Slack user id for approvers; default $BLUEGREEN_USER or cli:<login>)",
        )  # fmt: skip

    sub.add_parser("sandbox", help="run the simulated AWS (moto + realistic RDS behaviours)", add_help=False)
    serve = sub.add_parser("serve", help="run the Slack bot (HTTP on $PORT, or --socket for Socket Mode)")
    serve.add_argument("--socket", action="store_true", help="Socket Mode with SLACK_APP_TOKEN")
    sub.add_parser("demo", help="sandbox AWS + Slack stand-in + the real bot, end to end", add_help=False)
    sub.add_parser(
        "check", help="before first use: configuration, Slack (token, scopes, channels) and AWS (identity, role, "
        "proxies, IAM policy); [--environment E]", add_help=False,
    )  # fmt: skip

    status = with_common(sub.add_parser("status", help="proxies, target health, version and deployment of a database"))
    status.add_argument("database")

    helps = {
        "plan": "read-only: strategy, steps with their aws CLI equivalents, where a proxy is detached",
        "create": "create a blue/green deployment (native, or the runbook's workaround around the proxy)",
        "upgrade": "upgrade green's engine version",
        "switchover": "switch over after a second person approves; detach/re-attach proxies where needed",
        "cleanup": "after a switchover: delete the deployment (and, approved, the old blue); or, with --rehearsals and"
        " no database, delete what rehearsals left behind",
        "rollback": "before a switchover: delete the deployment and green, keep every proxy on blue",
        "rehearse": "the whole cycle on a disposable clone behind its own proxy, then delete it (rehearsals = true);"
        " shows the cost estimate and asks first (--yes)",
    }
    for name in ("plan", *RUN_COMMANDS):
        p = with_common(sub.add_parser(name, help=helps[name], **(CLEANUP_USAGE if name == "cleanup" else {})))
        p.add_argument("database", **(CLEANUP_DATABASE if name == "cleanup" else {}))
        if name in {"plan", "create", "upgrade", "switchover", "rehearse"}:
            p.add_argument("--engine-version", required=name == "upgrade")
        if name in {"plan", "create", "rehearse"}:
            p.add_argument("--parameter-group")
        if name in {"plan", "create", "switchover", "rehearse"}:
            p.add_argument("--mode", choices=MODES, default="auto")
        if name in {"plan", "switchover"}:
            p.add_argument("--timeout", type=int, dest="switchover_timeout", help="SwitchoverTimeout, 30-3600 s")
        if name in {"plan", "cleanup"}:
            p.add_argument("--delete-old", action="store_true", help="also delete the old blue (own approval)")
        if name == "cleanup":
            with_sweep_options(p)
        if name in {"plan", "switchover"}:
            p.add_argument(
                "--fix-drift", action="store_true",
                help="after the switchover: old blue's deletion protection and tags on the new primary (approved)",
            )  # fmt: skip
        if name == "rehearse":
            p.add_argument(
                "--yes", action="store_true",
                help="start without asking to confirm the cost estimate (needed where there is no terminal to ask on)",
            )  # fmt: skip
        if name == "plan":
            p.add_argument("--kind", choices=RUN_COMMANDS, default="create", help="which workflow to plan")
        else:
            with_identity(p)

    for name in ("approve", "reject"):
        p = with_common(sub.add_parser(name, help=f"{name} a pending approval request (or a run's latest)"))
        p.add_argument("request", help="approval request id (a-...) or run id (r-...)")
        with_identity(p, required=True)
    cancel = with_common(sub.add_parser("cancel", help="stop a run safely (compensating first)"))
    cancel.add_argument("run_id")
    cancel.add_argument(
        "--abandon-proxy", action="store_true",
        help="a compensating run: stop registering the proxies it detached (you fixed them by hand); audited",
    )  # fmt: skip
    with_identity(cancel)
    runs = with_common(sub.add_parser("runs", help="list runs"))
    runs.add_argument("--all", action="store_true", help="include finished runs")
    show = with_common(sub.add_parser("show", help="a run, its steps, AWS calls and audit log"))
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    with_common(sub.add_parser("resume", help="drive every unfinished run whose process is gone, to its end"))
    return parser


def _delegate(command: str, argv: list[str]) -> int:
    module_name, function = DELEGATED[command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if module_name.startswith("sandbox.") and (exc.name or "").split(".")[0] in SANDBOX_ONLY_MODULES:
            print(SANDBOX_MISSING.format(command=command), file=sys.stderr)
            return EXIT_BAD_REQUEST
        raise
    return getattr(module, function)(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    # Log records on stderr; stdout keeps the command's answers and the run's progress (the console sink).
    configure_logging(settings.log_level, settings.log_format, secrets=known_secrets())
    if getattr(args, "db_path", None):
        settings = replace(settings, db_path=args.db_path)
    try:
        return asyncio.run(_run(args, settings))
    except (BadRequest, ApprovalRefused, ConfigError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        for row in gate_rows(exc.results) if isinstance(exc, GatesFailed) else ():
            print(f"  {row}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    except KeyboardInterrupt:
        print("interrupted: the run stays recorded; `python -m bot resume` carries it on", file=sys.stderr)
        return EXIT_FAILED


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings.db_path)
    engine = Engine(store=store, settings=settings, sinks=[ConsoleSink()])
    # A process driving runs stops cleanly on SIGTERM (a deploy, `kill`): see bot/workflow/draining.py.
    sigterm = SigtermHandler(engine, settings.shutdown_grace, hint=CLI_HINT)
    if args.command in (*RUN_COMMANDS, "resume") and not getattr(args, "rehearsals", False):
        sigterm.install()  # not for the sweep: it drives no run, and stopping it half-way is safe (run it again)
    try:
        return await _dispatch(args, settings, engine)
    finally:
        sigterm.uninstall()
        if sigterm.outcome is not None:  # a run that ended during the shutdown: let the shutdown end too
            await asyncio.wait([sigterm.outcome])
        await engine.aclose()
        store.close()


async def _stopped(engine: Engine, settings: Settings) -> int:
    """This process was told to stop (SIGTERM) before its runs ended: 0 if it left no proxy detached."""
    left = await engine.shutdown(settings.shutdown_grace)
    for run_id, proxies in left.items():
        print(
            f"stopped: run {run_id} left {', '.join(proxies)} without a target; `python -m bot resume` carries it"
            " on and gives the target back",
            file=sys.stderr,
        )
    if not left:
        print("stopped on SIGTERM with no proxy detached; `python -m bot resume` carries the run on", file=sys.stderr)
    return EXIT_FAILED if left else EXIT_OK


def _request(args: argparse.Namespace, kind: str, settings: Settings) -> RunRequest:
    return RunRequest(
        kind=kind,  # type: ignore[arg-type]
        database=args.database,
        requester=getattr(args, "user", None) or _default_user(),
        environment=settings.environment(args.environment).name,
        engine_version=getattr(args, "engine_version", None),
        parameter_group=getattr(args, "parameter_group", None),
        mode=getattr(args, "mode", "auto"),
        switchover_timeout=getattr(args, "switchover_timeout", None),
        delete_old=getattr(args, "delete_old", False),
        fix_drift=getattr(args, "fix_drift", False),
    )


async def _dispatch(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    command = args.command
    if command == "status":
        status = await engine.status(args.database, args.environment)
        db = status.database
        print(f"{db.identifier}: {db.engine} {db.engine_version} ({db.status}, {db.kind})")
        for registration in status.registrations:
            print(f"  proxy {registration.label}")
        for target in status.targets:
            reason = f" ({target.reason})" if target.reason else ""
            print(f"    {target.rds_resource_id} {target.role or ''} {target.state}{reason}")
        if status.deployment:
            d = status.deployment
            print(f"  blue/green {d.identifier} {d.status}: {d.source_arn} -> {d.target_arn}")
        if status.active_run:
            print(f"  active run {status.active_run.id} ({status.active_run.kind}, {status.active_run.status})")
        return EXIT_OK
    if command == "plan":
        plan = await engine.plan(_request(args, args.kind, settings))
        print(f"{plan.kind} {plan.database}: strategy {plan.strategy or 'n/a'}: {plan.reason}")
        for key, value in plan.facts.items():
            print(f"  {key}: {value}")
        for number, step in enumerate(plan.steps, 1):
            print(f"  {number}. {step.title}" + (" [proxy detached]" if step.disruptive else ""))
            for command_line in step.commands:
                print(f"       $ {command_line}")
        if plan.detached_estimate:
            print(f"  detached window: {plan.detached_estimate}")
        if plan.gates:
            print("  prerequisites:")
            for row in gate_rows(plan.gates):
                print(f"    {row}")
        for line in plan.rehearsal:
            print(f"  rehearsal: {line}")
        return EXIT_OK
    if command == "cleanup" and cleanup_usage(args):
        return await sweep_command(args, settings, engine)
    if command in RUN_COMMANDS:
        request = _request(args, command, settings)
        if command == "rehearse":
            declined = await _confirm_rehearsal(engine, request, assume_yes=args.yes)
            if declined is not None:
                return declined
        run = await engine.start(request)
        print(f"run {run.id} started by {run.requester}")
        final = await engine.wait(run.id)
        if final.is_active:
            return await _stopped(engine, settings)
        return EXIT_OK if final.status == "succeeded" else EXIT_FAILED
    if command in {"approve", "reject"}:
        request_id = args.request
        if request_id.startswith("r-"):
            latest = engine.store.approvals.latest(request_id)
            if latest is None:
                raise BadRequest(f"run {request_id} has no approval request.")
            request_id = latest.id
        decide = engine.approve if command == "approve" else engine.reject
        decided = await decide(request_id, args.user)
        print(f"{decided.id}: {decided.status} by {decided.decided_by}")
        return EXIT_OK
    if command == "cancel":
        if args.abandon_proxy:
            run = await engine.cancel(args.run_id, args.user, abandon_proxy=True)
            proxies = run.meta["abandon_requested"]["proxies"]
            print(f"{run.id}: {', '.join(proxies)} abandoned by {args.user}; the bot stops registering them.")
            print("The run ends as it would have. If a proxy still has no target, register it by hand:")
            for command_line in proxies.values():
                print(f"    $ {command_line}")
            return EXIT_OK
        run = await engine.cancel(args.run_id, args.user)
        print(f"cancel requested for {run.id}; the process driving it stops it safely")
        if run.status == "compensating":
            print(
                "it is compensating: it ends once every proxy it detached has its target again; if you have fixed"
                f" them yourself: `python -m bot cancel {run.id} --abandon-proxy`"
            )
        return EXIT_OK
    if command == "runs":
        for run in engine.runs(active_only=not args.all, limit=50):
            print(f"{run.id}  {run.kind:<10} {run.database:<24} {run.status:<16} {run.requester}")
        return EXIT_OK
    if command == "show":
        return _show(engine, args.run_id, as_json=args.json)
    if command == "resume":
        resumed = await engine.resume_unfinished()
        print(f"resuming {len(resumed)} run(s): {', '.join(resumed) or '-'}")
        results = [await engine.wait(run_id) for run_id in resumed]
        if any(r.is_active for r in results):
            return await _stopped(engine, settings)
        return EXIT_OK if all(r.status == "succeeded" for r in results) else EXIT_FAILED
    raise BlueGreenError(f"unknown command {command}")


async def _confirm_rehearsal(engine: Engine, request: RunRequest, *, assume_yes: bool) -> int | None:
    """Prints the rehearsal's cost estimate and asks to start it; None to go on, else the exit code (nothing changed).
    BadRequest (exit 2) where rehearsals are off, as for the run itself."""
    estimate = await engine.rehearsal_estimate(request)
    for line in estimate.lines():
        print(line)
    if assume_yes:
        return None
    if not sys.stdin.isatty():
        print(
            "refused: a rehearsal starts only once its cost estimate (above) is confirmed, and there is no terminal to"
            " ask on; nothing was started. Pass --yes to confirm it: "
            f"`python -m bot rehearse {request.database} ... --yes`",
            file=sys.stderr,
        )
        return EXIT_BAD_REQUEST
    try:
        answer = await asyncio.to_thread(input, "Start? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in {"y", "yes"}:
        return None
    print("not started: nothing was created or changed")
    return EXIT_FAILED


def _show(engine: Engine, run_id: str, *, as_json: bool) -> int:
    snapshot = engine.snapshot(run_id)
    if snapshot is None:
        raise BadRequest(f"no run {run_id}")
    audit = engine.store.audit.list(run_id=run_id)
    if as_json:
        data = {
            "run": _asdict(snapshot.run),
            "steps": [_asdict(s) for s in snapshot.steps],
            "audit": [_asdict(a) for a in audit],
        }
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    run = snapshot.run
    print(f"{run.id} {run.kind} {run.database}: {run.status} (strategy {run.strategy}, requested by {run.requester})")
    if run.error:
        print(f"  error: {run.error}")
    for step in snapshot.steps:
        print(f"  [{step.status}] {step.title} (attempts {step.attempts})")
        for call in step.aws_calls:
            print(f"      $ {call.get('command')}  [{call.get('outcome')}, request {call.get('request_id')}]")
    for label, window in run.summary.get("windows", {}).items():
        if "seconds" in window:
            print(
                f"  {label}: no target for {window['seconds']:.2f} s (overhead <= {window['overhead_seconds']:.2f} s)"
            )
    for entry in audit:
        print(f"  audit {entry.seq}: {entry.actor} {entry.action}")
    return EXIT_OK


def _asdict(record: object) -> dict:
    from dataclasses import asdict, is_dataclass

    return asdict(record) if is_dataclass(record) else dict(vars(record))  # type: ignore[arg-type]
