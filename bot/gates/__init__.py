"""Safety gates for the database itself: named, read-only checks with a result of pass, fail or unknown.

`model.py` is the vocabulary every gate shares; each family of gates has a module of its own:
prerequisites before `create`, readiness before the approval request and right before detaching, drift after a
switchover. Gates read AWS through `bot.aws.gateway.AwsGateway` and never change anything.
"""

from bot.gates.model import FAIL, PASS, UNKNOWN, GateResult, GatesFailed, failed, gate_rows

__all__ = ["FAIL", "PASS", "UNKNOWN", "GateResult", "GatesFailed", "failed", "gate_rows"]
