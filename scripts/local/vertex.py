"""A stand-in Vertex AI endpoint on loopback, for the tests and the bench: it speaks the documented
`:predict` request and response (docs/gcp-rules.md, "Vertex AI"), answers every image with the same
scores, and records what it was sent. Point VERTEX_API_ENDPOINT at its `url`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class VertexStandIn:
    """Speaks the documented `:predict` request and response; records what it was sent."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.answer = {"Defect": 0.82, "Ok": 0.18}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "body": body})
                if stub.status != 200:
                    payload = json.dumps({"error": {"code": stub.status}}).encode()
                else:
                    payload = json.dumps(
                        {
                            "predictions": [
                                {
                                    "ids": ["1", "2"],
                                    "displayNames": list(stub.answer),
                                    "confidences": list(stub.answer.values()),
                                }
                            ],
                            "deployedModelId": "777",
                        }
                    ).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
