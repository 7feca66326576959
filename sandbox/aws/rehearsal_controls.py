"""The control surface for rehearsals: restores and proxy creations that AWS accepts and that then fail (mixed into
`SandboxControl`; served over HTTP as /_sandbox/<operation> and by `SandboxClient`).

`name` is the identifier of the database or proxy to be created (None: the next one of any name). The fault waits
until a matching creation is requested; clear_faults() and reset() drop it. Bad arguments raise ValueError (HTTP 400).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.aws.faults import CreationFailure
from sandbox.aws.proxy_lifecycle import DEFAULT_PROXY_FAILURE, PROXY_CREATION_FAILURES
from sandbox.aws.restore_progress import DEFAULT_RESTORE_FAILURE, RESTORE_FAILURES

if TYPE_CHECKING:
    from sandbox.aws.state import SandboxState

REHEARSAL_OPERATIONS = ("fail_next_restore", "fail_next_proxy_creation")


def _reason(reason: Any) -> str:
    text = str(reason).strip()
    if not text:
        raise ValueError("reason must not be empty: say why the creation fails, as AWS would")
    return text


class RehearsalControls:
    _state: SandboxState

    def fail_next_restore(
        self, reason: str = DEFAULT_RESTORE_FAILURE, status: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """The next restore (instance or cluster, from a snapshot or to a point in time) is accepted, then the new
        database ends in `status`: for an instance restore-error (default), incompatible-restore or failed; for a
        cluster failed (default) or cloning-failed (default for copy-on-write). See sandbox/aws/restore_progress.py."""
        if status is not None and status not in RESTORE_FAILURES:
            raise ValueError(f"status must be one of {', '.join(RESTORE_FAILURES)} (or omitted for the default)")
        failure = CreationFailure(_reason(reason), status, None if name is None else str(name).lower())
        self._state.faults.add_creation_failure("restore", failure)
        return {"fault": "restore", **failure.as_dict()}

    def fail_next_proxy_creation(
        self, reason: str = DEFAULT_PROXY_FAILURE, status: str = "incompatible-network", name: str | None = None
    ) -> dict[str, Any]:
        """The next CreateDBProxy is accepted, then the proxy ends in `status` (incompatible-network or
        insufficient-resource-limits) instead of available. See sandbox/aws/proxy_lifecycle.py."""
        if status not in PROXY_CREATION_FAILURES:
            raise ValueError(f"status must be one of {', '.join(PROXY_CREATION_FAILURES)}")
        failure = CreationFailure(_reason(reason), status, name)
        self._state.faults.add_creation_failure("proxy", failure)
        return {"fault": "proxy creation", **failure.as_dict()}
