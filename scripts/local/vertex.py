"""A stand-in Vertex AI endpoint on loopback, for the tests and the bench: it speaks the documented
`:predict` request and response (docs/gcp-rules.md, "Vertex AI"), answers every image with the same
scores, and records what it was sent. Point VERTEX_API_ENDPOINT at its `url`."""

from __future__ import annotations

from scripts.local.standin import StandIn


class VertexStandIn(StandIn):
    """Speaks the documented `:predict` request and response; records what it was sent."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.answer = {"Defect": 0.82, "Ok": 0.18}
        super().__init__()

    def route(self, method: str, path: str):
        return self._predict if method == "POST" else None

    def _predict(self, body):
        self.requests.append({"path": self.calls[-1][1], "body": body})
        if self.status != 200:
            return self.status, {"error": {"code": self.status}}
        prediction = {
            "ids": ["1", "2"],
            "displayNames": list(self.answer),
            "confidences": list(self.answer.values()),
        }
        return 200, {"predictions": [prediction], "deployedModelId": "777"}
