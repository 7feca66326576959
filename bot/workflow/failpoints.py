"""Deterministic crash injection for the crash tests: `BLUEGREEN_FAILPOINT=after-step:detach` makes the process
SIGKILL itself at that boundary, so a test can kill the bot exactly between two AWS calls.

Points: `before-step:KIND`, `after-step:KIND`, `after-call:ACTION` (right after AWS answered a mutation).
Several can be given, comma-separated; each fires once per process. Unset in production: the check is a set lookup.
"""

from __future__ import annotations

import os
import signal

_armed = {p.strip() for p in os.environ.get("BLUEGREEN_FAILPOINT", "").split(",") if p.strip()}


def hit(point: str) -> None:
    if point in _armed:
        _armed.discard(point)
        os.kill(os.getpid(), signal.SIGKILL)
