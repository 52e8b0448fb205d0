"""Shared unit-test fixtures: an in-process fake Ollama for fault injection."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading

import pytest


class FakeOllama:
    """A threaded HTTP server on 127.0.0.1 with scripted routes and a request log.

    routes[(METHOD, path)] is a dict/list (sent as JSON 200), a (status, obj) tuple, or a callable
    handler(req, body) that writes the response itself (for streams, stalls and drops).
    """

    def __init__(self):
        self.routes = {}
        self.log = []  # (method, path, parsed body)
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw and self.headers.get("Content-Type") == "application/json" else raw
                except ValueError:
                    body = raw
                fake.log.append((self.command, self.path, body))
                route = fake.routes.get((self.command, self.path))
                if route is None:
                    return self.send_json(404, {"error": f"no route for {self.command} {self.path}"})
                if callable(route):
                    return route(self, body)
                status, obj = route if isinstance(route, tuple) else (200, route)
                return self.send_json(status, obj)

            def send_json(self, status, obj):
                data = json.dumps(obj).encode() if obj is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def start_stream(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

            def line(self, obj):
                self.wfile.write(json.dumps(obj).encode() + b"\n")
                self.wfile.flush()

            do_GET = do_POST = do_DELETE = do_HEAD = _handle

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def calls(self, method=None, path=None):
        return [c for c in self.log if (method is None or c[0] == method) and (path is None or c[1] == path)]

    def changing_calls(self):
        """Requests that could change the server: anything but the read-only ones."""
        read_only = {("GET", "/api/tags"), ("POST", "/api/show"), ("GET", "/api/ps"), ("GET", "/api/version")}
        return [c for c in self.log if (c[0], c[1]) not in read_only and c[0] != "HEAD"]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_ollama():
    fake = FakeOllama()
    yield fake
    fake.stop()


@pytest.fixture
def closed_port_url():
    """A loopback URL where nothing listens (bind, read the port, close)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return "http://127.0.0.1:%d" % port
