"""Each Allow statement of `iam-policy.json` as one request to iam:SimulatePrincipalPolicy: its actions, resource ARNs
that fit its `Resource` patterns, and context entries that satisfy its conditions, so that a principal with the
policy attached is allowed every action and a principal missing the statement is not.

The simulator evaluates only the context it is given ("A list of context keys and corresponding values for the
simulation to use"): a statement keyed on tags (`aws:ResourceTag/...`, `aws:RequestTag/...`, `aws:TagKeys`,
`${aws:PrincipalTag/...}`) is simulated with the tags it asks for, all set to one sample value. That proves the
policy is attached and complete, not that the role and the databases carry the tags (the README says how to tag them).
No I/O here: `bot/checks.py` sends the requests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE = "bluegreen-check"  # every tag value, name part and variable of the simulation
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_NEGATED = ("StringNot", "ArnNot")


@dataclass(frozen=True, slots=True)
class Simulation:
    """One statement to simulate: its Sid (or position), actions, resource ARNs ([] for "*") and context entries."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    context: tuple[dict[str, Any], ...]


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _fill(text: str, variables: dict[str, str], *, region: str, account: str) -> str:
    """A concrete value for a pattern: variables get the sample value (and are recorded), wildcards too; in an ARN
    the region and account are the environment's."""
    for name in _VARIABLE.findall(text):
        variables[name] = SAMPLE
    text = _VARIABLE.sub(SAMPLE, text)
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        if len(parts) == 6:
            parts[3] = region if parts[3] == "*" else parts[3]
            parts[4] = account if parts[4] == "*" else parts[4]
            text = ":".join(parts)
    return text.replace("*", SAMPLE).replace("?", "x")


def _condition_entries(
    conditions: dict[str, dict[str, Any]], variables: dict[str, str], *, region: str, account: str
) -> dict[str, list[str] | None]:
    """Key -> the values that satisfy the statement's conditions (None: the key must be absent)."""
    found: dict[str, list[str] | None] = {}
    absent: set[str] = set()
    for operator, keys in conditions.items():
        prefix, _, name = operator.rpartition(":")
        for key, raw in keys.items():
            values = _listed(raw)
            if name == "Null":
                if values[0].lower() == "true":
                    absent.add(key)
                else:
                    found.setdefault(key, [SAMPLE])
            elif name.startswith(_NEGATED):
                found.setdefault(key, [SAMPLE])
            elif name.endswith("IfExists"):
                continue  # satisfied by the key's absence
            elif prefix == "ForAllValues":
                found[key] = [_fill(v, variables, region=region, account=account) for v in values]
            else:
                found[key] = [_fill(values[0], variables, region=region, account=account)]
    for key in absent:
        found[key] = None
    return found


def simulations(path: Path, *, region: str, account: str) -> list[Simulation]:
    """Every Allow statement of the policy file, as a simulation request."""
    document: dict[str, Any] = json.loads(path.read_text())
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    found = []
    for index, statement in enumerate(statements):
        if statement.get("Effect") != "Allow":
            continue
        variables: dict[str, str] = {}
        patterns = _listed(statement.get("Resource", "*"))
        resources = (
            () if patterns == ["*"] else tuple(_fill(p, variables, region=region, account=account) for p in patterns)
        )
        entries = _condition_entries(statement.get("Condition", {}), variables, region=region, account=account)
        context = {**{key: [value] for key, value in variables.items()}, **entries}
        found.append(
            Simulation(
                sid=str(statement.get("Sid") or f"Statement[{index}]"),
                actions=tuple(_listed(statement["Action"])),
                resources=resources,
                context=tuple(
                    {
                        "ContextKeyName": key,
                        "ContextKeyValues": values,
                        "ContextKeyType": "stringList" if key.lower() == "aws:tagkeys" else "string",
                    }
                    for key, values in context.items()
                    if values is not None
                ),
            )
        )
    return found
