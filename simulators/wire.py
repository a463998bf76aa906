"""HTTP/1.1 over TLS under a `SimulatorServer`: a threaded server that accepts and wraps
connections, parses each request into a `Request`, hands it to the simulator, and writes
the `Response` back, or cuts the connection without an answer (`Fault.RESET`, `Fault.HANG`).
`close_connections()` lets `stop()` return promptly with idle keep-alive clients.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from simulators.messages import Request, Response

if TYPE_CHECKING:
    from simulators.base import SimulatorServer


class _Aborted(Exception):
    """The connection was closed on purpose (Fault.RESET)."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sim: SimulatorServer) -> None:
        self.simulator = sim
        self.ssl_context = sim._ca.server_context()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def close_connections(self) -> None:
        """Cut every open connection: their threads stop waiting for the next request."""
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Without TCP_NODELAY, Nagle's algorithm holds the tail of each answer until the
        # client's delayed ACK, adding milliseconds to every page.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The handshake runs later on the connection's own thread, so a slow client never
        # blocks the accept loop.
        wrapped = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._open_lock:
            self._open.add(wrapped)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients dropping connections (timeouts, resets) are expected here


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        sim = self.server.simulator
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_query=split.query,
        )
        try:
            response, _ = sim._serve(request, self._abort)
        except _Aborted:
            return
        if response is None:
            return
        self._send(sim, response)

    def _abort(self) -> None:
        # SO_LINGER 0 makes close() send a TCP RST instead of an orderly shutdown.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
        raise _Aborted

    def _send(self, sim: SimulatorServer, response: Response) -> None:
        reason = http.client.responses.get(response.status, "")
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Date: {sim.http_date()}", "Server: dirsync-simulator"]
        names = {k.lower() for k, _ in response.headers}
        if "content-type" not in names:
            lines.append("Content-Type: application/json")
        lines.extend(f"{k}: {v}" for k, v in response.headers if k.lower() != "content-length")
        lines.append(f"Content-Length: {len(response.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + response.body)
        except OSError:
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch
