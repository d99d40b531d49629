"""One HTTP stand-in for the Google APIs the code calls, on loopback: the tests, the bench and the
permission trace point a client at its `url`, and it answers from a table of routes while it
records every request. Each stand-in (the Vertex endpoint, Vertex's model and job services, IAP's
public keys) is a table of routes over this one server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A route answers the request's JSON body (None for a GET without one) with (status, JSON payload).
Route = Callable[[dict | None], tuple[int, object]]


class StandIn:
    """Serves `routes`, keyed by (method, path without the query); 404 for anything else."""

    def __init__(self, routes: dict[tuple[str, str], Route] | None = None):
        self.routes: dict[tuple[str, str], Route] = dict(routes or {})
        self.calls: list[tuple[str, str, dict | None]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = self.path.split("?")[0]
                stand_in.calls.append((self.command, path, body))
                route = stand_in.route(self.command, path)
                status, payload = route(body) if route else (404, {"error": {"code": 404, "path": path}})
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="stand-in").start()

    def route(self, method: str, path: str) -> Route | None:
        """The route for a request; a subclass may match more than exact paths."""
        return self.routes.get((method, path))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
