"""Which strategy a run takes with a database behind RDS Proxy, and why: native (AWS moves the proxy at switchover),
the runbook's workaround (detach, act, attach again), or direct (no proxy). Pure decisions, each with its reason.
"""

from __future__ import annotations

from bot.aws.models import NATIVE_PROXY_ENGINES, Database, Deployment, Registration


def choose_strategy(mode: str, database: Database, registrations: list[Registration]) -> tuple[str, str]:
    """Native where AWS documents support (engine, not an Aurora Global Database), else the runbook's workaround.
    An explicit --mode native is kept where AWS has no support: the `create` prerequisites refuse it."""
    if not registrations:
        return "direct", "the database is not registered with any RDS Proxy: nothing to detach"
    supported = database.engine in NATIVE_PROXY_ENGINES
    problem = (
        f"AWS does not support RDS Proxy with blue/green for engine {database.engine}"
        if not supported
        else f"{database.identifier} is in Aurora Global Database {database.global_cluster} (no native support)"
        if database.global_cluster
        else None
    )
    if mode == "workaround":
        return "workaround", "requested with --mode workaround (the runbook: detach, create, attach again)"
    if mode == "native":
        if problem:  # refused by the prerequisites (bot/gates/prerequisites.py), with the other gates' results
            return "native", f"requested with --mode native, but {problem}"
        return "native", "requested with --mode native: the proxy stays attached and AWS moves it at switchover"
    if problem:
        return "workaround", f"{problem}; using the runbook's workaround"
    return (
        "native",
        f"AWS supports RDS Proxy with blue/green for {database.engine} since April 2026; if AWS refuses it for this"
        " account or region, the bot falls back to the workaround and says so",
    )


def switchover_strategy(mode: str, registrations: list[Registration], deployment: Deployment) -> tuple[str, str]:
    """Direct without a proxy; with --mode auto the strategy the bot tagged the deployment with, else the mode
    requested; an untagged deployment under auto gets the workaround (the safe choice for one made by hand)."""
    if not registrations:
        return "direct", "the database is not registered with any RDS Proxy"
    tagged = deployment.tags.get("bluegreen-bot:strategy")
    if tagged in {"native", "workaround"} and mode == "auto":
        return tagged, f"the deployment was created with the {tagged} strategy"
    if mode in {"native", "workaround"}:
        return mode, f"requested with --mode {mode}"
    return "workaround", "the deployment was not created by the bot: the runbook's workaround is the safe choice"
