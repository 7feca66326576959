"""Deterministic faults for the crash and signal tests: `BLUEGREEN_FAILPOINT=after-step:detach` makes the process
SIGKILL itself at that boundary, so a test can kill the bot exactly between two AWS calls;
`BLUEGREEN_FAILPOINT=after-step:detach:sigterm` makes it send itself SIGTERM there instead, as Kubernetes or Heroku
would before a restart.

Points: `before-step:KIND`, `after-step:KIND`, `after-call:ACTION` (right after AWS answered a mutation), each
optionally followed by `:sigterm`. Several can be given, comma-separated; each fires once per process. Unset in
production: the check is a set lookup.
"""

from __future__ import annotations

import os
import signal

SIGTERM_SUFFIX = ":sigterm"

_armed: set[str] = set()


def arm(spec: str) -> None:
    """Arm the points of a BLUEGREEN_FAILPOINT value, replacing those armed (done at import from the environment;
    again by a test process forked from an interpreter that imported the bot before its environment was set)."""
    _armed.clear()
    _armed.update(point.strip() for point in spec.split(",") if point.strip())


arm(os.environ.get("BLUEGREEN_FAILPOINT", ""))


def hit(point: str) -> None:
    if point in _armed:
        _armed.discard(point)
        os.kill(os.getpid(), signal.SIGKILL)
    if point + SIGTERM_SUFFIX in _armed:
        _armed.discard(point + SIGTERM_SUFFIX)
        # raise_signal delivers it to this (the main) thread and runs the Python-level handler before returning, so
        # the shutdown is requested exactly here, before the next AWS call, as it would be for a signal from outside
        # that arrived at this moment.
        signal.raise_signal(signal.SIGTERM)
