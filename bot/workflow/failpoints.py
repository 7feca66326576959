"""Deterministic faults for the crash and signal tests: `BLUEGREEN_FAILPOINT=after-step:detach` makes the process
SIGKILL itself at that boundary, so a test can kill the bot exactly between two AWS calls;
`BLUEGREEN_FAILPOINT=after-step:detach:sigterm` makes it send itself SIGTERM there instead, as Kubernetes or Heroku
would before a restart.

Points: `before-step:KIND`, `after-step:KIND`, `after-call:ACTION` (right after AWS answered a mutation), each
optionally followed by `:sigterm`. Several can be given, comma-separated; each fires once per process.
`next-boundary` (or `next-boundary:N`) SIGKILLs the process at the first (N-th) `after-call` or `after-step` point it
crosses, whatever it is: a chain of processes, each resuming the run and killed that way, is killed once at every
boundary of a workflow without the test naming them (tests/test_rehearsal_crashes.py). A killed process says where
on stderr first. Unset in production: the check is a set lookup.
"""

from __future__ import annotations

import os
import signal

SIGTERM_SUFFIX = ":sigterm"
NEXT_BOUNDARY = "next-boundary"
BOUNDARIES = ("after-call:", "after-step:")

_armed: set[str] = set()
_next_boundary: list[int] = []  # [boundaries still to cross before the kill], when `next-boundary` is armed


def arm(spec: str) -> None:
    """Arm the points of a BLUEGREEN_FAILPOINT value, replacing those armed (done at import from the environment;
    again by a test process forked from an interpreter that imported the bot before its environment was set)."""
    _armed.clear()
    _next_boundary.clear()
    for point in (p.strip() for p in spec.split(",")):
        if point == NEXT_BOUNDARY or point.startswith(NEXT_BOUNDARY + ":"):
            _next_boundary.append(int(point.partition(":")[2] or 1))
        elif point:
            _armed.add(point)


arm(os.environ.get("BLUEGREEN_FAILPOINT", ""))


def hit(point: str) -> None:
    if point in _armed:
        _armed.discard(point)
        _kill(point)
    if _next_boundary and point.startswith(BOUNDARIES):
        _next_boundary[0] -= 1
        if _next_boundary[0] == 0:
            _kill(point)
    if point + SIGTERM_SUFFIX in _armed:
        _armed.discard(point + SIGTERM_SUFFIX)
        # raise_signal delivers it to this (the main) thread and runs the Python-level handler before returning, so
        # the shutdown is requested exactly here, before the next AWS call, as it would be for a signal from outside
        # that arrived at this moment.
        signal.raise_signal(signal.SIGTERM)


def _kill(point: str) -> None:
    os.write(2, f"failpoint {point}: SIGKILL\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)
