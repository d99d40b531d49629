"""The `vertex` backend: a Vertex AI endpoint's online prediction, over REST with google-auth."""

from __future__ import annotations

import base64
import functools

from inspection import backends, calls
from inspection.errors import BackendUnavailable
from inspection.limits import DEFAULT_MAX_REQUEST_BYTES
from inspection.model.classifiers import Classification
from inspection.model.images import LoadedImage

VERTEX_TIMEOUT_S = 30.0


class VertexClassifier:
    """POST {api}/v1/{endpoint}:predict with one base64 image (docs/gcp-rules.md, "Vertex AI")."""

    card = None  # an endpoint carries no card; unusual input is not checked for it

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> VertexClassifier:
        return cls(
            location,
            opening.vertex_api_endpoint or backends.vertex_api_url(location),
            opening.max_request_bytes or DEFAULT_MAX_REQUEST_BYTES,
        )

    def __init__(self, endpoint: str, api_endpoint: str, max_request_bytes: int):
        self.endpoint = endpoint
        self.url = f"{api_endpoint.rstrip('/')}/v1/{endpoint}:predict"
        self.max_request_bytes = max_request_bytes

    @functools.cached_property
    def _session(self):
        import requests

        if self.url.startswith("http://"):  # a local stand-in; never the real service
            return requests.Session()
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        return AuthorizedSession(credentials)

    def classify(self, image: LoadedImage) -> Classification:
        import requests

        content = base64.b64encode(image.request_bytes(self.max_request_bytes)).decode()
        body = {
            "instances": [{"content": content}],
            "parameters": {"confidenceThreshold": 0.0, "maxPredictions": 100},
        }
        calls.record("aiplatform.endpoints.predict", self.endpoint)
        try:
            response = self._session.post(
                self.url, json=body, timeout=VERTEX_TIMEOUT_S, headers={"User-Agent": calls.user_agent()}
            )
        except requests.RequestException as exc:
            raise BackendUnavailable(f"Vertex request failed: {exc}") from exc
        if response.status_code != 200:
            # Never the image's fault (we validated it): quota, an outage, a wrong endpoint or a
            # missing grant. Raise, so the image stays in inbound until it can be classified.
            raise BackendUnavailable(f"Vertex answered {response.status_code}: {response.text[:200]}")
        try:
            answer = response.json()
            prediction = answer["predictions"][0]
            names, confidences = prediction["displayNames"], prediction["confidences"]
            scores = {str(n): float(c) for n, c in zip(names, confidences, strict=True)}
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendUnavailable(f"Vertex answer has an unexpected shape: {exc}") from exc
        deployed = answer.get("deployedModelId")
        return Classification(
            scores, f"{self.endpoint}/deployedModels/{deployed}" if deployed else self.endpoint
        )
