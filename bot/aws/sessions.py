"""New aiobotocore sessions that share one botocore data loader per process.

Each botocore session builds its own loader, and a loader decodes botocore's JSON data again: the endpoints file
(1.2 MB) for the session's endpoint resolver and each service model (RDS's is 0.2 MB gzipped), about 50 ms of CPU per
session. The data is read-only once loaded, so every session of the process shares one loader per data path
(`AWS_DATA_PATH`) and decodes each file once. Sessions stay separate: credentials, config and event handlers are
still per session (an environment's assumed role is registered on its own session).
"""

from __future__ import annotations

import functools

from aiobotocore.session import AioSession, get_session
from botocore.loaders import Loader, create_loader


def new_session() -> AioSession:
    """A fresh session whose data loader is the process's shared one for its data path."""
    session = get_session()
    session.register_component("data_loader", _shared_loader(session.get_config_variable("data_path")))
    return session


@functools.cache
def _shared_loader(data_path: str | None) -> Loader:
    return create_loader(data_path)
