"""The number that matters most: how long each proxy had no available target, and how much of that was ours.

A window opens when the bot deregisters a database from a proxy target group and closes when the bot sees the
target AVAILABLE again. AWS's own share of it is counted from below: from each call the bot made to the last moment
the bot still saw the old state. The rest (detection lag and the bot's own think time) is reported as the bot's
overhead, so the figure is an upper bound on what the bot added.

Open windows live in run.meta["detached"] (the rollback record compensation works from); measured windows in
run.summary["windows"] (per proxy: the run's total, and `each` window alone). Both are persisted at once, so a
crash cannot lose a detached proxy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from bot.aws.models import Registration
from storage import Store


class WindowLedger:
    def __init__(self, store: Store, run_id: str, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._run_id = run_id
        self._clock = clock

    def _run(self):
        run = self._store.runs.get(self._run_id)
        assert run is not None
        return run

    def open_windows(self) -> dict[str, dict]:
        return dict(self._run().meta.get("detached", {}))

    def is_open(self, registration: Registration) -> bool:
        return registration.label in self.open_windows()

    def detached(self, registration: Registration, database: str, kind: str, at: float) -> None:
        with self._store.atomic():
            run = self._run()
            detached = dict(run.meta.get("detached", {}))
            if registration.label in detached:
                return
            detached[registration.label] = {**registration.to_dict(), "database": database, "kind": kind, "at": at}
            self._store.runs.merge_meta(self._run_id, {"detached": detached})
            windows = dict(run.summary.get("windows", {}))
            window = {"detached_at": at, "aws_seconds": 0.0}
            earlier = windows.get(registration.label, {})
            if "seconds" in earlier:
                # Detached again (a shutdown gave the target back in between): report every window, not the last.
                window.update(
                    earlier_seconds=earlier["seconds"],
                    aws_seconds=earlier.get("aws_seconds", 0.0),
                    earlier_aws_seconds=earlier.get("aws_seconds", 0.0),
                    each=earlier.get("each", []),
                )
            windows[registration.label] = window
            self._store.runs.update(self._run_id, summary={**run.summary, "windows": windows})

    def aws_time(self, start: float, lower_end: float, labels: Iterable[str] | None = None) -> None:
        """Credit AWS with [start, lower_end] on the given open windows (default: every open one)."""
        seconds = max(0.0, lower_end - start)
        with self._store.atomic():
            run = self._run()
            open_labels = set(run.meta.get("detached", {}))
            targets = open_labels if labels is None else open_labels & set(labels)
            if not targets:
                return
            windows = dict(run.summary.get("windows", {}))
            for label in targets:
                window = dict(windows.get(label, {}))
                window["aws_seconds"] = window.get("aws_seconds", 0.0) + seconds
                windows[label] = window
            self._store.runs.update(self._run_id, summary={**run.summary, "windows": windows})

    def abandoned(self, registration: Registration, by: str, at: float) -> dict | None:
        """An operator took the proxy over (`cancel --abandon-proxy`): the window closes without the bot having seen
        the target back; its length is how long it was the bot's to restore, a lower bound of the outage."""
        return self._close(
            registration,
            at,
            lambda seconds, window: {"abandoned_at": at, "abandoned_by": by},
            lambda opened, meta: {
                "abandoned": {**meta.get("abandoned", {}), registration.label: {**opened, "by": by, "abandoned_at": at}}
            },
        )

    def reattached(self, registration: Registration, at: float) -> dict | None:
        return self._close(
            registration,
            at,
            lambda seconds, window: {
                "reattached_at": at,
                "overhead_seconds": round(max(0.0, seconds - window.get("aws_seconds", 0.0)), 3),
            },
        )

    def _close(
        self,
        registration: Registration,
        at: float,
        fields: Callable[[float, dict], dict],
        meta: Callable[[dict, dict], dict] | None = None,
    ) -> dict | None:
        """Close the proxy's open window at `at` (None if none is open): its length counts every earlier window of
        this run for the proxy; `fields` adds how it closed and `meta` what the run records of it."""
        with self._store.atomic():
            run = self._run()
            detached = dict(run.meta.get("detached", {}))
            opened = detached.pop(registration.label, None)
            if opened is None:
                return None
            windows = dict(run.summary.get("windows", {}))
            window = dict(windows.get(registration.label, {"detached_at": opened["at"], "aws_seconds": 0.0}))
            seconds = at - opened["at"] + window.get("earlier_seconds", 0.0)
            # This window alone, beside the run's total: a rehearsal reports its create and switchover windows apart.
            own, own_aws = at - opened["at"], window.get("aws_seconds", 0.0) - window.get("earlier_aws_seconds", 0.0)
            alone = {"detached_at": opened["at"], "seconds": round(own, 3), "aws_seconds": round(own_aws, 3),
                     "overhead_seconds": round(max(0.0, own - own_aws), 3)}  # fmt: skip
            window.update(seconds=round(seconds, 3), each=[*window.get("each", []), alone], **fields(seconds, window))
            windows[registration.label] = window
            extra = meta(opened, run.meta) if meta else {}
            self._store.runs.merge_meta(self._run_id, {"detached": detached, **extra})
            self._store.runs.update(self._run_id, summary={**run.summary, "windows": windows})
            return window
