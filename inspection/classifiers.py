"""Classifier backends. Each returns every class's confidence, keyed by the model's class name.

- `vertex`: a Vertex AI endpoint's online prediction, over REST with google-auth, so that the
  functions never import google-cloud-aiplatform (1.3 s per cold start).
- `onnx`: a model file run with onnxruntime; its labels and preprocessing travel in its metadata.
- `none`: no model yet (day zero). Every image goes to reviewers, whose decisions become the
  first training set (scripts/retrain_from_reviews.py).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Protocol

from inspection import layout
from inspection.errors import BackendUnavailable, ConfigError
from inspection.images import LoadedImage

VERTEX_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Classification:
    confidences: dict[str, float]
    model: str
    unclear_reason: str = ""  # set when a person must decide, whatever the scores say


NO_MODEL = "none"


class NoModel:
    """Day zero: nothing to ask, so a person decides every image."""

    def classify(self, image: LoadedImage) -> Classification:
        return Classification({"ok": 0.5, "defect": 0.5}, NO_MODEL, unclear_reason="no_model")


class Classifier(Protocol):
    def classify(self, image: LoadedImage) -> Classification: ...


class VertexClassifier:
    """POST {api}/v1/{endpoint}:predict with one base64 image (docs/gcp-rules.md, "Vertex AI")."""

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
        try:
            response = self._session.post(self.url, json=body, timeout=VERTEX_TIMEOUT_S)
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


class OnnxClassifier:
    """A self-describing ONNX model (see scripts/train_local.py) run on the CPU."""

    def __init__(self, path: str):
        import onnxruntime

        from inspection import features

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # features dominate; more threads only add contention
        self._session = onnxruntime.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        meta = self._session.get_modelmeta().custom_metadata_map
        try:
            self.labels = json.loads(meta["labels"])
            version = meta["preprocessing"]
        except KeyError as exc:
            raise ConfigError(f"ONNX_MODEL {path} lacks metadata {exc}; export it with train_local") from exc
        if version != features.PREPROCESSING_VERSION:
            raise ConfigError(
                f"ONNX_MODEL {path} needs preprocessing {version!r}; "
                f"this code has {features.PREPROCESSING_VERSION!r}"
            )
        self.model = meta.get("model_name", os.path.basename(path))
        self._input = self._session.get_inputs()[0].name
        self._features = features.extract

    def probabilities(self, rows):
        """Class probabilities for a batch of feature rows."""
        outputs = self._session.run(None, {self._input: rows})
        return outputs[1]

    def classify(self, image: LoadedImage) -> Classification:
        row = self._features(image.image)[None, :]
        probabilities = self.probabilities(row)[0]
        return Classification(
            {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)},
            self.model,
        )


def local_model_path(location: str) -> str:
    """A gs:// model is downloaded once per instance; a local path is used as is."""
    if not location.startswith("gs://"):
        return location
    from inspection import storage

    bucket, name = layout.split_gs_uri(location)
    target = os.path.join(tempfile.gettempdir(), "model-" + name.replace("/", "_"))
    if not os.path.exists(target):  # download beside it, then rename: never a half-written model
        partial = f"{target}.{os.getpid()}.part"
        storage.client().bucket(bucket).blob(name).download_to_filename(partial)
        os.replace(partial, target)
    return target


def create(settings) -> Classifier:
    """The backend the settings name."""
    if settings.backend == "none":
        return NoModel()
    if settings.backend == "vertex":
        return VertexClassifier(
            settings.vertex_endpoint, settings.vertex_api_endpoint, settings.max_request_bytes
        )
    return OnnxClassifier(local_model_path(settings.onnx_model))
