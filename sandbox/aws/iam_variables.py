"""IAM policy variables: `${aws:PrincipalTag/bluegreen-bot:environment}` in a policy, replaced at evaluation by the
value of that key in the request's context.

The subset (IAM User Guide, "IAM policy elements: Variables and tags"):

- Only in policies whose `Version` is `2012-10-17`; under `2008-10-17` `${...}` is literal text.
- In `Resource` / `NotResource`, only in the resource part of the ARN (after the fifth colon), and in the values of
  string (`String*`) and ARN (`Arn*`) condition operators; anywhere else (`Null`, `Bool`) is refused at load.
- A key the request's context does not hold ("not present") makes the statement invalid: it neither allows nor
  denies. A multivalued key (`aws:TagKeys`) cannot be a variable.
- Key names are case-insensitive; the tag key after `/` is not (tags are case-sensitive).

Not modelled (refused at load): default values (`${aws:PrincipalTag/team, 'none'}`) and the special characters
`${*}`, `${?}`, `${$}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

VARIABLE = re.compile(r"\$\{([^}]*)\}")
VARIABLES_VERSION = "2012-10-17"


class VariableError(ValueError):
    """A policy variable the sandbox cannot evaluate; the policy module turns it into a PolicyError."""


def names(text: str) -> list[str]:
    return VARIABLE.findall(text)


def validate(text: str, where: str, *, known: Callable[[str], bool], multivalued: set[str], resource: bool) -> None:
    """Refuse a variable that AWS does not allow here or that the sandbox cannot supply."""
    for name in names(text):
        if "," in name:
            raise VariableError(f"{where}: default values in policy variables (${{{name}}}) are not evaluated")
        if name in ("*", "?", "$"):
            raise VariableError(f"{where}: the special character variable ${{{name}}} is not evaluated")
        if not known(name):
            raise VariableError(f"{where}: policy variable ${{{name}}} names a key the sandbox does not supply")
        if name.partition("/")[0].lower() in multivalued or name.lower() in multivalued:
            raise VariableError(f"{where}: {name} is multivalued and cannot be a policy variable")
    if resource and "${" in text and "${" in ":".join(text.split(":", 5)[:5]):
        raise VariableError(f"{where}: a policy variable may only replace the resource part of an ARN: {text!r}")


def resolve(text: str, context: Mapping[str, Any], key: Callable[[str], str]) -> str | None:
    """`text` with each variable replaced by its context value; None when a key is missing (or multivalued)."""
    if "${" not in text:
        return text
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = context.get(key(match.group(1)))
        if not isinstance(found, str):
            missing = True
            return ""
        return found

    resolved = VARIABLE.sub(value, text)
    return None if missing else resolved
