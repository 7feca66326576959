"""An identity-based IAM policy, parsed strictly and evaluated as AWS does for one principal in one account.

The subset (IAM User Guide: "Policy evaluation for requests within a single account", "IAM JSON policy elements"):

- Statements with `Effect` (Allow or Deny), `Action` or `NotAction`, `Resource` or `NotResource`, `Condition`, `Sid`.
  `Principal` / `NotPrincipal` are refused (identity policies name none); any other element is refused.
- Evaluation: an applicable Deny statement wins (explicit deny); else an applicable Allow allows; else implicit deny.
- Actions: `service:Name` or `*`; wildcards `*` and `?`; prefix and name case-insensitive.
- Resources: `*` or an ARN; `*` and `?` match within one colon-delimited segment, and a `*` that ends a segment may
  match across colons (so `arn:aws:rds:*:*:db:*-old*` works as AWS documents); case-sensitive.
- Conditions: operators `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`,
  `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike`, `ArnNotEquals`, `ArnNotLike`, `Bool`, `Null`; the `IfExists`
  suffix (not on `Null`) and the `ForAnyValue:` / `ForAllValues:` prefixes. Several operators, or several keys under
  one operator: AND; several values for a key: OR (NOR for a negated operator). A key missing from the request:
  false, except for negated operators and `...IfExists` (true); `Null` tests presence. Key names are
  case-insensitive, the tag key in `aws:ResourceTag/<tag-key>` and the like is not (tags are case-sensitive).
- Context keys: only those the sandbox supplies (`CONTEXT_KEYS`); a condition on any other key is refused at load,
  since evaluating it as missing could silently allow. `aws:TagKeys` is multivalued and needs a set prefix.
  `aws:PrincipalTag/<key>` holds the caller's IAM tags (a role session: its role's; session tags are not modelled);
  `iam:PassedToService` is in the context of iam:PassRole only (IAM User Guide, "Grant a user permissions to pass a
  role to an AWS service").
- Policy variables (`${aws:PrincipalTag/team}`) in `Resource` and in string and ARN condition values, as
  `sandbox/aws/iam_variables.py` describes; a statement whose variable the request cannot resolve does not apply.

Not modelled (refused at load): Numeric*, Date*, IpAddress, Binary operators, other condition keys, variables with
default values. Permission boundaries, session policies, SCPs and resource-based policies are not modelled.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sandbox.aws import iam_variables
from sandbox.aws.iam_variables import VARIABLES_VERSION, VariableError

VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
STRING_OPERATORS = {
    "StringEquals": (False, False, False),  # (negated, ignore case, like)
    "StringNotEquals": (True, False, False),
    "StringEqualsIgnoreCase": (False, True, False),
    "StringNotEqualsIgnoreCase": (True, True, False),
    "StringLike": (False, False, True),
    "StringNotLike": (True, False, True),
}
ARN_OPERATORS = {"ArnEquals": False, "ArnLike": False, "ArnNotEquals": True, "ArnNotLike": True}
OPERATORS = (*STRING_OPERATORS, *ARN_OPERATORS, "Bool", "Null")
SET_PREFIXES = ("ForAnyValue", "ForAllValues")
# Condition keys the sandbox puts in a request's context (see sandbox/aws/iam_resources.py); `/` ends with a tag key.
CONTEXT_KEYS = (
    "aws:ResourceTag/",
    "aws:RequestTag/",
    "aws:TagKeys",
    "aws:PrincipalArn",
    "aws:PrincipalTag/",
    "iam:PassedToService",
    "aws:PrincipalAccount",
    "aws:RequestedRegion",
    "rds:req-tag/",
    *(f"rds:{kind}-tag/" for kind in ("db", "cluster", "pg", "cluster-pg", "snapshot", "cluster-snapshot", "og")),
    *(f"rds:{kind}-tag/" for kind in ("subgrp", "es", "secgrp", "ri")),
)
MULTIVALUED_KEYS = {"aws:tagkeys"}

ContextValue = str | list[str]


class PolicyError(ValueError):
    """The policy is not valid IAM, or uses an element, operator or key the sandbox does not evaluate."""


class Decision(enum.StrEnum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitDeny"
    IMPLICIT_DENY = "implicitDeny"


@dataclass(frozen=True)
class Request:
    """One authorization: an action (`rds:DeleteDBInstance`) on one resource ARN (or `*`) with its context keys."""

    action: str
    resource: str
    context: Mapping[str, ContextValue]


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    sid: str | None = None  # the statement that decided (the Deny, or the first Allow)
    allowed_by: tuple[str, ...] = ()  # every Allow statement that applies (its Sid, or Statement[i])


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """`*` any run of characters, `?` any one character (actions, StringLike)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(f"^{body}$", flags)


@lru_cache(maxsize=4096)
def _arn_pattern(pattern: str) -> re.Pattern[str]:
    """An ARN pattern: wildcards stay within a colon-delimited segment, but a `*` that ends a segment may run on."""
    parts = []
    for index, char in enumerate(pattern):
        if char == "*":
            ends_segment = index + 1 == len(pattern) or pattern[index + 1] == ":"
            parts.append(".*" if ends_segment else "[^:]*")
        elif char == "?":
            parts.append("[^:]")
        else:
            parts.append(re.escape(char))
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    return bool(_glob(pattern, True).match(action))


def arn_matches(pattern: str, arn: str) -> bool:
    return pattern == "*" or bool(_arn_pattern(pattern).match(arn))


def supplied(name: str) -> bool:
    """Whether the sandbox puts the key in a request's context."""
    return any(_supplied(name, known) for known in CONTEXT_KEYS)


def _supplied(key: str, known: str) -> bool:
    if known.endswith("/"):
        return key.lower().startswith(known.lower()) and len(key) > len(known)
    return key.lower() == known.lower()


def _strings(value: Any, where: str) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyError(f"{where} must be a non-empty string or a list of them, not {value!r}")
    return tuple(values)


@dataclass(frozen=True)
class Condition:
    operator: str  # as written, e.g. "ForAllValues:StringLikeIfExists"
    base: str  # "StringLike"
    key: str  # as context_key() stores it
    values: tuple[str, ...]
    set_prefix: str | None
    if_exists: bool
    variables: bool = True  # policy variables in the values are replaced at evaluation (Version 2012-10-17)
    name: str = ""  # the key as the policy writes it

    @classmethod
    def parse(cls, operator: str, key: str, raw: Any, where: str, variables: bool = True) -> Condition:
        set_prefix, _, name = operator.rpartition(":")
        if set_prefix and set_prefix not in SET_PREFIXES:
            raise PolicyError(f"{where}: unknown set operator {set_prefix!r} (use ForAnyValue or ForAllValues)")
        if_exists = name.endswith("IfExists") and name != "IfExists"
        base = name.removesuffix("IfExists") if if_exists else name
        if base not in OPERATORS or (if_exists and base == "Null"):
            raise PolicyError(
                f"{where}: condition operator {operator!r} is not evaluated by the sandbox; supported: "
                f"{', '.join(OPERATORS)} (with IfExists, ForAnyValue:, ForAllValues:)"
            )
        if not supplied(key):
            raise PolicyError(
                f"{where}: condition key {key!r} is not supplied by the sandbox, so it cannot be evaluated; "
                f"supported: {', '.join(k + '<tag-key>' if k.endswith('/') else k for k in CONTEXT_KEYS)}"
            )
        if key.lower() in MULTIVALUED_KEYS and not set_prefix:
            raise PolicyError(f"{where}: {key} is multivalued: write ForAnyValue:{name} or ForAllValues:{name}")
        values = raw if isinstance(raw, list) else [raw]
        texts = tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
        if not texts or any(isinstance(v, dict | list) or v is None for v in values):
            raise PolicyError(f"{where}: {key} needs a value or a list of values, not {raw!r}")
        if variables and any("${" in t for t in texts):
            if base not in STRING_OPERATORS and base not in ARN_OPERATORS:
                raise PolicyError(f"{where}: policy variables can only be used with string and ARN operators")
            for text in texts:
                _validate_variables(text, where, resource=False)
        if base in ("Bool", "Null") and any(t.lower() not in ("true", "false") for t in texts):
            raise PolicyError(f"{where}: {base} takes true or false, not {raw!r}")
        return cls(operator, base, context_key(key), texts, set_prefix or None, if_exists, variables, key)

    def resolved(self, context: Mapping[str, ContextValue]) -> Condition | None:
        """This condition with its policy variables replaced from `context`; None if one cannot be resolved."""
        if not self.variables or not any("${" in t for t in self.values):
            return self
        values = tuple(iam_variables.resolve(t, context, context_key) for t in self.values)
        if any(v is None for v in values):
            return None
        return Condition(self.operator, self.base, self.key, values, self.set_prefix, self.if_exists, False, self.name)  # type: ignore[arg-type]

    def holds(self, context: Mapping[str, ContextValue]) -> bool:
        present = self.key in context
        if self.base == "Null":
            return any((t.lower() == "true") == (not present) for t in self.values)
        if not present:
            # ForAllValues over no values is true; ForAnyValue false; a negated single-valued test true.
            if self.if_exists:
                return True
            return self.set_prefix == "ForAllValues" or (self.set_prefix is None and self._negated)
        found = context[self.key]
        if self.set_prefix:
            members = found if isinstance(found, list) else [found]
            tests = [self._one(member) for member in members]
            return all(tests) if self.set_prefix == "ForAllValues" else any(tests)
        if isinstance(found, list):  # only a multivalued key, which needs a set prefix (refused at load)
            return any(self._one(member) for member in found)
        return self._one(found)

    @property
    def _negated(self) -> bool:
        if self.base in STRING_OPERATORS:
            return STRING_OPERATORS[self.base][0]
        return ARN_OPERATORS.get(self.base, False)

    def _one(self, value: str) -> bool:
        """One request value against the policy's values: OR, or NOR for a negated operator."""
        if self.base == "Bool":
            return any(value.lower() == t.lower() for t in self.values)
        if self.base in ARN_OPERATORS:
            matched = any(arn_matches(t, value) for t in self.values)
        else:
            _, ignore_case, like = STRING_OPERATORS[self.base]
            if like:
                matched = any(_glob(t, False).match(value) for t in self.values)
            elif ignore_case:
                matched = any(value.lower() == t.lower() for t in self.values)
            else:
                matched = value in self.values
        return not matched if self._negated else matched


@dataclass(frozen=True)
class Statement:
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...]
    name: str = ""  # the Sid, or Statement[i]
    variables: bool = True

    @classmethod
    def parse(cls, raw: Any, index: int, variables: bool = True) -> Statement:
        where = f"Statement[{index}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"{where} must be an object")
        if isinstance(raw.get("Sid"), str):
            where = f"{where} ({raw['Sid']})"
        if "Principal" in raw or "NotPrincipal" in raw:
            raise PolicyError(f"{where}: an identity-based policy names no Principal; remove it")
        unknown = set(raw) - STATEMENT_ELEMENTS
        if unknown:
            raise PolicyError(f"{where}: unknown element(s) {sorted(unknown)}; allowed: {sorted(STATEMENT_ELEMENTS)}")
        if raw.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f'{where}: Effect must be "Allow" or "Deny", not {raw.get("Effect")!r}')
        if ("Action" in raw) == ("NotAction" in raw):
            raise PolicyError(f"{where}: give exactly one of Action and NotAction")
        if ("Resource" in raw) == ("NotResource" in raw):
            raise PolicyError(f"{where}: give exactly one of Resource and NotResource")
        action_key = "Action" if "Action" in raw else "NotAction"
        actions = _strings(raw[action_key], f"{where}.{action_key}")
        for action in actions:
            if action != "*" and (action.count(":") != 1 or not action.split(":")[0] or not action.split(":")[1]):
                raise PolicyError(f"{where}.{action_key}: {action!r} is not service:Action (or *)")
        resource_key = "Resource" if "Resource" in raw else "NotResource"
        resources = _strings(raw[resource_key], f"{where}.{resource_key}")
        for resource in resources:
            if variables and "${" in resource:
                _validate_variables(resource, f"{where}.{resource_key}", resource=True)
            if resource != "*" and (not resource.startswith("arn:") or resource.count(":") < 2):
                raise PolicyError(f"{where}.{resource_key}: {resource!r} is not an ARN (arn:partition:service:...)")
        return cls(
            raw.get("Sid"),
            raw["Effect"],
            actions,
            action_key == "NotAction",
            resources,
            resource_key == "NotResource",
            _conditions(raw.get("Condition", {}), where, variables),
            raw.get("Sid") if isinstance(raw.get("Sid"), str) and raw.get("Sid") else f"Statement[{index}]",
            variables,
        )

    def applies(self, request: Request) -> bool:
        """Whether the statement matches the request; never when one of its policy variables cannot be resolved
        ("If AWS cannot resolve a variable, this might cause the entire statement to be invalid")."""
        if any(action_matches(p, request.action) for p in self.actions) == self.not_action:
            return False
        resources = [iam_variables.resolve(p, request.context, context_key) if self.variables else p
                     for p in self.resources]  # fmt: skip
        if None in resources or any(arn_matches(p, request.resource) for p in resources if p) == self.not_resource:
            return False
        conditions = [c.resolved(request.context) for c in self.conditions]
        return all(c is not None and c.holds(request.context) for c in conditions)


def _validate_variables(text: str, where: str, *, resource: bool) -> None:
    try:
        iam_variables.validate(text, where, known=supplied, multivalued=MULTIVALUED_KEYS, resource=resource)
    except VariableError as exc:
        raise PolicyError(str(exc)) from exc


def _conditions(raw: Any, where: str, variables: bool = True) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}.Condition must be an object of operator -> {{key: value(s)}}")
    found = []
    for operator, keys in raw.items():
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f"{where}.Condition.{operator} must be an object of key -> value(s)")
        found += [
            Condition.parse(operator, key, value, f"{where}.Condition.{operator}", variables)
            for key, value in keys.items()
        ]
    return tuple(found)


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    document: Mapping[str, Any]

    @classmethod
    def parse(cls, document: Any) -> Policy:
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise PolicyError(f"the policy is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise PolicyError("the policy must be a JSON object with Version and Statement")
        unknown = set(document) - {"Version", "Id", "Statement"}
        if unknown:
            raise PolicyError(f"unknown top-level element(s) {sorted(unknown)}; allowed: Version, Id, Statement")
        if document.get("Version") not in VERSIONS:
            raise PolicyError(f"Version must be one of {VERSIONS}, not {document.get('Version')!r}")
        raw = document.get("Statement")
        raw_statements = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else None
        if not raw_statements:
            raise PolicyError("Statement must be a statement object or a non-empty list of them")
        variables = document["Version"] == VARIABLES_VERSION
        return cls(tuple(Statement.parse(s, i, variables) for i, s in enumerate(raw_statements)), document)

    def evaluate(self, request: Request) -> Evaluation:
        allowing: list[Statement] = []
        for statement in self.statements:
            if statement.applies(request):
                if statement.effect == "Deny":
                    return Evaluation(Decision.EXPLICIT_DENY, statement.sid)
                allowing.append(statement)
        if allowing:
            return Evaluation(Decision.ALLOWED, allowing[0].sid, tuple(s.name for s in allowing))
        return Evaluation(Decision.IMPLICIT_DENY)


def load_policy(source: str | Path | Mapping[str, Any]) -> Policy:
    """A policy from a dict, or from a JSON file's path. PolicyError names the problem."""
    if isinstance(source, Mapping):
        return Policy.parse(dict(source))
    path = Path(source)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read the IAM policy file {path}: {exc.strerror or exc}") from exc
    try:
        return Policy.parse(text)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from exc


def context_key(name: str) -> str:
    """How a context key is stored for lookups: its name is case-insensitive, a tag key after `/` is not (tags are
    case-sensitive; "Custom tag identifiers are case-sensitive", RDS User Guide, "Specifying conditions: Using
    custom tags")."""
    prefix, slash, tag = name.partition("/")
    return prefix.lower() + slash + tag


def request_context(values: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
    """Context keys as a request carries them (see context_key)."""
    return {context_key(k): v for k, v in values.items()}
