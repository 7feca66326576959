"""`SlackStandInThread`: a `SlackStandIn` on its own event loop in a daemon thread, driven from synchronous code."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar, overload

from sandbox.slack.controls import POLL_INTERVAL, StandInControls, timeout_message
from sandbox.slack.http_server import SlackStandIn
from sandbox.slack.signed_requests import CommandResult
from sandbox.slack.socket_mode import SocketMode
from sandbox.slack.web_page import ChannelPage
from sandbox.slack.workspace import SlackWorkspace

__all__ = ["SlackStandInThread"]

T = TypeVar("T")


class _OfStandIn(Generic[T]):
    """An attribute of `SlackStandInThread` that is the same-named attribute of its `SlackStandIn`, read through
    (and written through when `writable`)."""

    def __init__(self, *, writable: bool = False) -> None:
        self._writable = writable

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, thread: None, owner: type | None = None) -> _OfStandIn[T]: ...
    @overload
    def __get__(self, thread: SlackStandInThread, owner: type | None = None) -> T: ...
    def __get__(self, thread: SlackStandInThread | None, owner: type | None = None) -> T | _OfStandIn[T]:
        if thread is None:
            return self
        return getattr(thread.standin, self._name)

    def __set__(self, thread: SlackStandInThread, value: T) -> None:
        if not self._writable:
            raise AttributeError(f"{self._name!r} of {type(thread).__name__!r} is read-only")
        setattr(thread.standin, self._name, value)


class SlackStandInThread(StandInControls):
    """A `SlackStandIn` on its own event loop in a daemon thread, driven from synchronous code.

    Configuration and reads are `StandInControls`, over the stand-in's workspace (lock-guarded, safe from any
    thread); requests to the app and `wait_for` block instead of being awaited.
    """

    workspace = _OfStandIn[SlackWorkspace]()
    base_url = _OfStandIn[str]()
    app_url = _OfStandIn[str | None](writable=True)
    held_back = _OfStandIn[int]()
    socket_mode = _OfStandIn[SocketMode]()
    _secrets = _OfStandIn[Callable[[], tuple[str, ...]]]()

    def __init__(self, *, start_timeout: float = 10.0, **standin_kwargs: Any) -> None:
        self.standin = SlackStandIn(**standin_kwargs)
        self._start_timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pages: list[ChannelPage] = []

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="slack-standin", daemon=True)
        self._thread.start()
        self._run(self.standin.start(), self._start_timeout)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        for page in self._pages:
            self._run(page.stop(), self._start_timeout)
        self._pages = []
        self._run(self.standin.stop(), self._start_timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._start_timeout)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> SlackStandInThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("SlackStandInThread is not started")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout if timeout is not None else self.standin.app_request_timeout + 5)

    def serve_page(self, **options: Any) -> ChannelPage:
        """The channel as a web page (`ChannelPage`'s options), served on the stand-in's loop until `stop()`."""
        page = ChannelPage(self.standin, **options)
        self._run(page.start(), self._start_timeout)
        self._pages.append(page)
        return page

    # ---- requests to the app

    def send_command(self, **kwargs: Any) -> CommandResult:
        return self._run(self.standin.send_command(**kwargs))

    def click(self, **kwargs: Any) -> CommandResult:
        return self._run(self.standin.click(**kwargs))

    def submit_view(self, **kwargs: Any) -> CommandResult:
        return self._run(self.standin.submit_view(**kwargs))

    def send_event(self, event: dict[str, Any], **kwargs: Any) -> CommandResult:
        return self._run(self.standin.send_event(event, **kwargs))

    def update_usergroup(self, group_id: str, members: list[str]) -> CommandResult:
        return self._run(self.standin.update_usergroup(group_id, members))

    def disconnect_socket(self, reason: str = "refresh_requested") -> int:
        """Slack's `disconnect` to every Socket Mode connection (`SocketMode.disconnect`)."""
        return self._run(self.standin.socket_mode.disconnect(reason))

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, *, description: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise TimeoutError(timeout_message(predicate, timeout, description))
            time.sleep(POLL_INTERVAL)
