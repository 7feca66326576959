"""One local TCP listener per proxy, standing in for the proxy endpoint.

While the proxy's default target group has an AVAILABLE target, a connection receives `OK <proxy> <target>\n`
and stays open until the client closes it or the proxy's routing changes (the proxy drops its connections then,
as RDS Proxy does at switchover). Otherwise the connection is accepted and closed at once without an OK line.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class _Client:
    proxy: str
    target: str


class ProxyListeners:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[str, socket.socket] = {}
        self._clients: dict[socket.socket, _Client] = {}
        self._routes: dict[str, str | None] = {}
        self._stop = threading.Event()
        # stop() writes here so that the selector wakes at once: it waits up to a second otherwise (an idle sandbox in
        # every test worker would wake twenty times a second for nothing with a short timeout).
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._serve, name="sandbox-proxy-listeners", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")
        self._thread.join(timeout=5)
        with self._lock:
            for proxy in list(self._listeners):
                self._close_listener(proxy)
            for client in list(self._clients):
                self._close_client(client)
            self._selector.close()
            self._wake_reader.close()
            self._wake_writer.close()

    def addresses(self) -> dict[str, str]:
        with self._lock:
            return {proxy: _address(sock) for proxy, sock in sorted(self._listeners.items())}

    def open_connections(self) -> dict[str, int]:
        with self._lock:
            counts = dict.fromkeys(self._listeners, 0)
            for client in self._clients.values():
                counts[client.proxy] = counts.get(client.proxy, 0) + 1
            return counts

    def sync(self, routes: dict[str, str | None]) -> None:
        """Match listeners to the proxies that exist; `routes` maps each proxy to its AVAILABLE target or None."""
        with self._lock:
            self._routes = dict(routes)
            for proxy in routes.keys() - self._listeners.keys():
                self._open_listener(proxy)
            for proxy in self._listeners.keys() - routes.keys():
                self._close_listener(proxy)
            for sock, client in list(self._clients.items()):
                if self._routes.get(client.proxy) != client.target:
                    self._close_client(sock)

    def _open_listener(self, proxy: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        sock.listen(64)
        sock.setblocking(False)
        self._listeners[proxy] = sock
        self._selector.register(sock, selectors.EVENT_READ, proxy)

    def _close_listener(self, proxy: str) -> None:
        sock = self._listeners.pop(proxy)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        sock.close()

    def _close_client(self, sock: socket.socket) -> None:
        self._clients.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            # Listeners and clients registered meanwhile are watched at once (epoll, kqueue); the timeout only bounds
            # that on platforms whose selector would not.
            events = self._selector.select(timeout=1.0)
            with self._lock:
                for key, _ in events:
                    sock = key.fileobj
                    if isinstance(key.data, str) and self._listeners.get(key.data) is sock:
                        self._accept(key.data, sock)  # type: ignore[arg-type]
                    elif sock in self._clients:
                        self._read_client(sock)  # type: ignore[arg-type]

    def _accept(self, proxy: str, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, OSError):
            return
        target = self._routes.get(proxy)
        if target is None:
            conn.close()
            return
        try:
            conn.sendall(f"OK {proxy} {target}\n".encode())
        except OSError:
            conn.close()
            return
        conn.setblocking(False)
        self._clients[conn] = _Client(proxy, target)
        self._selector.register(conn, selectors.EVENT_READ, None)

    def _read_client(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_client(sock)


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"
