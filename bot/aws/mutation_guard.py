"""The one check every AWS mutation passes before it is sent: while a rehearsal's step mutates, the call may name
only resources that rehearsal created (its clone, its proxy, its deployment).

`StepContext.mutate` sets the allowed names for the duration of one call (a context variable, so concurrent runs in
one process do not see each other's); `AwsGateway._mutate` calls `check` before sending. Outside a rehearsal nothing
is set and nothing is checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from bot import errors

_ALLOWED: ContextVar[frozenset[str] | None] = ContextVar("rehearsal_allowed_resources", default=None)
# Parameters that name what a call changes. Not those naming what it reads or uses unchanged: the source of a restore,
# the parameter, subnet and option groups a new database is put in, a proxy's target group ("default").
_NAMING = ("Identifier", "Identifiers", "Name")
_READ_ONLY = frozenset({
    "SourceDBInstanceIdentifier", "SourceDBClusterIdentifier", "TargetGroupName", "DBParameterGroupName",
    "DBClusterParameterGroupName", "TargetDBParameterGroupName", "TargetDBClusterParameterGroupName",
    "DBSubnetGroupName", "OptionGroupName",
})  # fmt: skip


class RehearsalOverreach(errors.BlueGreenError):
    """A rehearsal was about to change something it did not create; nothing was sent."""


@contextmanager
def only(allowed: frozenset[str] | None) -> Iterator[None]:
    token = _ALLOWED.set(allowed)
    try:
        yield
    finally:
        _ALLOWED.reset(token)


def named(params: Mapping[str, Any]) -> set[str]:
    """The resource names a call's parameters give for what it changes."""
    names: set[str] = set()
    for key, value in params.items():
        if key in _READ_ONLY:
            continue
        values = value if isinstance(value, list) else [value]
        if key in ("Source", "ResourceName"):  # ARNs: a deployment's source, a resource being tagged
            names |= {str(v).rsplit(":", 1)[-1] for v in values}
        elif key.endswith(_NAMING):
            names |= {str(v) for v in values if isinstance(v, str)}
    return names


def check(action: str, params: Mapping[str, Any], names: set[str] | None = None) -> None:
    """Refuse the call if it names something the rehearsal did not create: `names` when given (a call whose
    parameters name it by an id the rehearsal cannot know, like a target group's), else its parameters'."""
    allowed = _ALLOWED.get()
    if allowed is None:
        return
    # The clone's name carries the run id: what AWS derives from it (`<clone>-old1` after a switchover, green's
    # `<clone>-green-...`) and the rehearsal's extra proxies (`<clone>-2`) are the rehearsal's too.
    outside = {
        n
        for n in (named(params) if names is None else names)
        if not any(n == a or n.startswith(f"{a}-") for a in allowed)
    }
    if outside:
        raise RehearsalOverreach(
            f"refused {action} on {', '.join(sorted(outside))}: a rehearsal changes only what it created"
            f" ({', '.join(sorted(allowed))}); nothing was sent",
            fix="This is a bug in the rehearsal's steps; the teardown still deletes what the rehearsal created.",
        )
