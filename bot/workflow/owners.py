"""Who holds a run's lease: this process's owner id (host, pid, a random suffix), and whether a holder on this host
has died, so that its lease can be taken over at once instead of after its TTL."""

from __future__ import annotations

import os
import socket
import uuid


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """A lease held by a process of this host that no longer exists can be taken over at once."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
