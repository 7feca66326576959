"""`python -m bot sandbox`: run the sandbox AWS in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from sandbox.aws.fleet import FLEET_PROXIES, describe_fleet
from sandbox.aws.runtime import Sandbox

DEFAULT_PORT = 4566


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot sandbox", description="Run the simulated RDS/RDS Proxy AWS.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port (default %(default)s, 0 = any)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--proxy-mode",
        choices=("legacy", "native"),
        default="legacy",
        help="RDS Proxy personality: legacy refuses blue/green for proxy targets, native follows switchovers",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="time factor: 10 makes every phase 10x shorter")
    parser.add_argument("--no-fleet", action="store_true", help="start empty instead of with the sample fleet")
    parser.add_argument(
        "--iam-policy",
        metavar="FILE",
        help="enforce this IAM policy (JSON) on every AWS call: calls it does not allow fail with AccessDenied",
    )
    parser.add_argument(
        "--iam-principal",
        metavar="ARN",
        help="with --iam-policy: enforce it only on calls signed by this role (its sessions) or user",
    )
    return parser


def banner(sandbox: Sandbox) -> str:
    state = sandbox.control.state()
    listeners = state["listeners"]
    lines = [
        f"Sandbox AWS listening on {sandbox.endpoint} (personality: {state['proxy_mode']}, speed {state['speed']:g})",
        "",
        "Point AWS clients at it:",
        f"  export AWS_ENDPOINT_URL={sandbox.endpoint}",
        "  export AWS_DEFAULT_REGION=us-east-1",
        "  export AWS_ACCESS_KEY_ID=sandbox",
        "  export AWS_SECRET_ACCESS_KEY=sandbox",
        "and say who may start and approve runs (the bot refuses to run without both):",
        "  export BLUEGREEN_OPERATORS=U0ALICE,U0BOB BLUEGREEN_APPROVERS=U0BOB",
        "",
    ]
    if sandbox.fleet:
        lines += ["Databases:", *(f"  {line}" for line in describe_fleet()), "", "Proxies (local TCP listener):"]
        for proxy in FLEET_PROXIES:
            behind = ", ".join([*proxy.instances, *proxy.clusters])
            lines.append(f"  {proxy.name} -> {behind}  listener {listeners.get(proxy.name, '-')}")
        lines.append("")
    iam = sandbox.control.iam_policy()
    if iam["iam_policy"] is not None:
        scope = f"calls signed by {iam['principal']}" if iam["principal"] else "every AWS call"
        lines += [f"IAM policy enforced on {scope}: refused calls fail with AccessDenied (HTTP 403).", ""]
    lines.append(f"Control: {sandbox.endpoint}/_sandbox/state (Ctrl-C to stop)")
    return "\n".join(lines)


def run_sandbox(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.iam_principal and not args.iam_policy:
        print("sandbox: --iam-principal needs --iam-policy FILE", file=sys.stderr)
        return 2
    try:
        sandbox = Sandbox(
            port=args.port,
            proxy_mode=args.proxy_mode,
            speed=args.speed,
            fleet=not args.no_fleet,
            host=args.host,
            iam_policy=args.iam_policy,
            iam_principal=args.iam_principal,
        )
    except ValueError as exc:  # PolicyError: the file is missing, not JSON, or uses what the sandbox cannot evaluate
        print(f"sandbox: --iam-policy: {exc} (fix the policy, or start without --iam-policy)", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sandbox.start()
        print(banner(sandbox), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
