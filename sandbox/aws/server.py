"""moto's threaded server, wrapped by a WSGI middleware that serialises backend access, records the
timeline, injects API faults and serves the control surface under /_sandbox/."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from sandbox.aws import wire
from sandbox.aws.faults import DROP
from sandbox.aws.state import SandboxState
from sandbox.aws.sts import expired_token_refusal

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
CONTROL_PREFIX = "/_sandbox/"
logger = logging.getLogger(__name__)


class SandboxMiddleware:
    def __init__(
        self,
        moto_app: WsgiApp,
        state: SandboxState,
        before_request: Callable[[], None],
        control_app: WsgiApp,
        after_request: Callable[[], None] = lambda: None,
    ) -> None:
        """`after_request` is told once a request may have changed the state (the ticker, to apply it soon)."""
        self._moto_app = moto_app
        self._state = state
        self._before_request = before_request
        self._control_app = control_app
        self._after_request = after_request

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            try:
                return self._control_app(environ, start_response)
            finally:
                self._after_request()
        received = time.monotonic()
        body = wire.read_body(environ)
        action, params = wire.action_and_params(environ, body)
        # Authentication (an expired token), then authorization (the IAM policy, if any): a refusal goes no further.
        refusal = expired_token_refusal(environ, self._state.tokens)
        grants = None
        if refusal is None:
            refusal, grants = self._state.iam.authorize(environ, body, action)
        if refusal is not None:
            denied = [refusal.detail] if refusal.detail else None
            self._state.timeline.record_call(action or "", params, refusal.status, refusal.code, received, iam=denied)
            start_response(wire.status_line(refusal.status), refusal.headers)
            return [refusal.body]
        fault = self._state.faults.take_api_fault(action) if action else None
        if fault is not None:
            self._state.timeline.record_call(action or "", params, fault.status, fault.code, received)
            if fault.code == DROP:
                return self._drop_connection(environ, start_response)
            headers, error_body = wire.error_response(environ, fault.code, fault.status or 400)
            start_response(wire.status_line(fault.status or 400), headers)
            return [error_body]

        with self._state.lock:
            self._before_request()
            call = self._state.timeline.open_call(action, params, iam=grants) if action else None
            status, headers, chunks = self._call_moto(environ)
            response_body = b"".join(chunks)
            code = None
            status_code = int(status.split()[0])
            if status_code >= 400:
                code = wire.error_code(response_body, dict(headers).get("Content-Type", ""))
            if call is not None:
                self._state.timeline.close_call(call, status_code, code)
        self._after_request()
        start_response(status, headers)
        return [response_body]

    def _call_moto(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return chunks.append

        result = self._moto_app(environ, capture)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], chunks

    @staticmethod
    def _drop_connection(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Close the TCP connection without a response; werkzeug then fails its write and drops it quietly."""
        sock: socket.socket | None = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return []


class SandboxServer(ThreadedMotoServer):
    """ThreadedMotoServer whose WSGI app is wrapped, and whose start() reports a bind failure."""

    def __init__(self, host: str, port: int, wrap: Callable[[WsgiApp], WsgiApp]) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self._wrap = wrap
        self._error: BaseException | None = None

    def _server_entry(self) -> None:
        try:
            app = self._wrap(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=QuietRequestHandler)
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=0.1)

    def start(self) -> None:
        super().start()
        if self._error is not None:
            raise self._error


class QuietRequestHandler(MotoRequestHandler):
    """No access log line per request; errors still reach the `werkzeug` logger."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        pass
