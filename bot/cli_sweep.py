"""`python -m bot cleanup --rehearsals [--dry-run]`: the CLI side of bot/workflow/rehearsal_sweep.py.

`cleanup` has two usages that must not be mixed: `cleanup DATABASE [--delete-old]` is a run (after a switchover,
delete that database's deployment), `cleanup --rehearsals` is a sweep of every rehearsal's leftovers and takes no
database. The sweep prints one line per resource as it goes, then a summary; exit 0 when nothing tagged is left.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.aws.rehearsal_clones import REHEARSAL_TAG
from bot.errors import AwsError, BadRequest
from bot.workflow.rehearsal_sweep import DEFAULT_TIMEOUT, SWEEP_COMMAND, sweep_rehearsals

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.workflow.engine import Engine

EXIT_OK, EXIT_FAILED = 0, 1
RUN_USAGE = "python -m bot cleanup DATABASE [--delete-old]"
# `cleanup`'s database is optional for argparse; `cleanup_usage` requires it unless --rehearsals.
CLEANUP_DATABASE = {"nargs": "?", "help": "the database whose deployment to delete (none with --rehearsals)"}
CLEANUP_USAGE = {
    "usage": "%(prog)s DATABASE [--delete-old] [--as USER] [--env E] [--db FILE]\n"
    "       %(prog)s --rehearsals [--dry-run] [--wait SECONDS] [--as USER] [--env E] [--db FILE]",
    "description": "Two usages, never mixed:\n"
    "  cleanup DATABASE     after a switchover: delete the database's blue/green deployment (and, with\n"
    "                       --delete-old and a second person's approval, the old blue).\n"
    f"  cleanup --rehearsals delete whatever rehearsals left behind, found by the tag {REHEARSAL_TAG}\n"
    "                       (clones, Aurora clone clusters, clone proxies, their blue/green deployments), never\n"
    "                       anything without the tag nor what a rehearsal still running owns; no final snapshots.\n"
    "                       --dry-run lists each with its `aws rds` command and changes nothing.",
    "formatter_class": argparse.RawDescriptionHelpFormatter,
}


def with_sweep_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rehearsals", action="store_true",
        help=f"sweep: delete every resource tagged {REHEARSAL_TAG} (any rehearsal); takes no database",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="with --rehearsals: list what it would delete, only")
    parser.add_argument(
        "--wait", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"with --rehearsals: how long to wait for the deletions to finish (default {DEFAULT_TIMEOUT:.0f})",
    )  # fmt: skip


def cleanup_usage(args: argparse.Namespace) -> bool:
    """True for the sweep, False for the run; BadRequest (nothing changed) for a mix of the two."""
    if args.rehearsals:
        if args.database or args.delete_old:
            given = f"`{args.database}`" if args.database else "--delete-old"
            raise BadRequest(
                f"`cleanup --rehearsals` sweeps every rehearsal's leftovers and takes no database nor --delete-old"
                f" (got {given}).",
                fix=f"Either `{SWEEP_COMMAND} [--dry-run]`, or `{RUN_USAGE}` for one database after its switchover.",
            )
        return True
    if args.dry_run:
        raise BadRequest(
            "--dry-run goes with --rehearsals only (a cleanup run shows what it will do in its approval request).",
            fix=f"`{SWEEP_COMMAND} --dry-run`, or `python -m bot plan {args.database or 'DATABASE'} --kind cleanup`.",
        )
    if not args.database:
        raise BadRequest(
            "`cleanup` needs the database whose deployment to delete, or --rehearsals to sweep rehearsal leftovers.",
            fix=f"`{RUN_USAGE}`, or `{SWEEP_COMMAND} [--dry-run]`.",
        )
    return False


async def sweep_command(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    env = settings.environment(args.environment)
    where = f"environment {env.name}" + (f" ({env.region})" if env.region else "")
    print(f"{'dry run: ' if args.dry_run else ''}rehearsal leftovers tagged {REHEARSAL_TAG} in {where}")
    try:
        result = await sweep_rehearsals(
            engine.gateways.get(env),
            engine.store,
            actor=args.user,
            dry_run=args.dry_run,
            timeout=args.wait,
            on_outcome=lambda outcome: print(outcome.line(), flush=True),
        )
    except AwsError as exc:
        print(f"failed: AWS refused {exc.action} while listing rehearsal leftovers: {exc}")
        print(f"  fix: the bot's role needs the describe and ListTagsForResource permissions; then `{SWEEP_COMMAND}`")
        return EXIT_FAILED
    for outcome in result.still_there():
        print(outcome.line())
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_FAILED
