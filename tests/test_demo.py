"""The README's first command must keep working: the demo, end to end, as a newcomer runs it (faster clock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_demo_runs_end_to_end():
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--speed", "4"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "a second person must approve it" in output  # alice's own Approve was refused
    assert output.count("succeeded* in") >= 2  # the create and the switchover runs, in the channel
    assert "bot overhead" in output
