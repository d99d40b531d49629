"""Classifier backends. Each returns every class's confidence, keyed by the model's class name.

- `vertex`: a Vertex AI endpoint's online prediction, over REST with google-auth, so that the
  functions never import google-cloud-aiplatform (1.3 s per cold start).
- `onnx`: a model file run with onnxruntime; its labels and preprocessing travel in its metadata.
- `tflite`: a Vertex AI AutoML Edge model exported as TF Lite, run with LiteRT in the function.
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

from inspection import backends, layout
from inspection.errors import BackendUnavailable, ConfigError
from inspection.images import LoadedImage
from inspection.limits import DEFAULT_MAX_REQUEST_BYTES
from inspection.model_card import ModelCard

VERTEX_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Classification:
    confidences: dict[str, float]
    model: str
    unclear_reason: str = ""  # set when a person must decide, whatever the scores say


NO_MODEL = "none"


class NoModel:
    """Day zero: nothing to ask, so a person decides every image."""

    card = None

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> NoModel:
        return cls()

    def classify(self, image: LoadedImage) -> Classification:
        return Classification({"ok": 0.5, "defect": 0.5}, NO_MODEL, unclear_reason="no_model")


class Classifier(Protocol):
    def classify(self, image: LoadedImage) -> Classification: ...


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

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> OnnxClassifier:
        return cls(local_model_path(location))

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
        self.card = ModelCard.parse(meta["card"], f"in {path}") if "card" in meta else None
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


class TfliteClassifier:
    """A Vertex AI AutoML Edge image model exported as TF Lite, run with LiteRT (no TensorFlow).

    The export is `model.tflite` with the class names in `dict.txt` beside it, one per line, in
    the order of the model's outputs (https://cloud.google.com/vertex-ai/docs/export/export-edge-model);
    a `card.json` beside them is the model card. Quantized (uint8) models take the image's pixels
    as they are and give scores to dequantize with the output's scale and zero point; float models
    take pixels scaled to [0, 1].
    """

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> TfliteClassifier:
        return cls(local_model_path(location, (LABELS_FILE, CARD_FILE)))

    def __init__(self, path: str):
        from ai_edge_litert.interpreter import Interpreter

        folder = os.path.dirname(path)
        try:
            with open(os.path.join(folder, LABELS_FILE)) as file:
                self.labels = [line.strip() for line in file if line.strip()]
        except FileNotFoundError:
            raise ConfigError(
                f"TFLITE_MODEL {path}: no {LABELS_FILE} beside it (the export's label file)"
            ) from None
        card = os.path.join(folder, CARD_FILE)
        self.card = ModelCard.parse(open(card, "rb").read(), card) if os.path.exists(card) else None  # noqa: SIM115
        self._interpreter = Interpreter(model_path=path, num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        _, self._height, self._width, channels = self._input["shape"]
        if channels != 3 or int(self._output["shape"][-1]) != len(self.labels):
            raise ConfigError(
                f"TFLITE_MODEL {path}: expected [1,H,W,3] in and one score per label of {LABELS_FILE} out; "
                f"found {list(self._input['shape'])} in and {list(self._output['shape'])} out"
            )
        self.model = self.card.model if self.card and self.card.model else os.path.basename(folder) or path

    def classify(self, image: LoadedImage) -> Classification:
        import numpy as np

        rgb = np.asarray(
            image.image.convert("RGB").resize((int(self._width), int(self._height))), dtype=np.uint8
        )
        if self._input["dtype"] == np.uint8:
            tensor = rgb[None, ...]
        else:
            tensor = (rgb.astype(np.float32) / 255.0)[None, ...].astype(self._input["dtype"])
        self._interpreter.set_tensor(self._input["index"], tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output["index"])[0]
        scale, zero_point = self._output.get("quantization", (0.0, 0))
        scores = (raw.astype(np.float32) - zero_point) * scale if scale else raw.astype(np.float32)
        total = float(scores.sum())
        if total > 0:
            scores = scores / total
        return Classification(
            {label: float(s) for label, s in zip(self.labels, scores, strict=True)}, self.model
        )


LABELS_FILE = "dict.txt"
CARD_FILE = "card.json"


def local_model_path(location: str, companions: tuple[str, ...] = ()) -> str:
    """A gs:// model (and the files beside it that exist) is downloaded once per instance; a local
    path is used as is."""
    if not location.startswith("gs://"):
        return location
    from google.api_core import exceptions as gexc

    from inspection import storage

    bucket, name = layout.split_gs_uri(location)
    folder = os.path.join(tempfile.gettempdir(), "model-" + name.replace("/", "_"))
    os.makedirs(folder, exist_ok=True)
    prefix = name.rpartition("/")[0]
    target = os.path.join(folder, os.path.basename(name))
    for wanted, local in [
        (name, target),
        *((f"{prefix}/{c}".lstrip("/"), os.path.join(folder, c)) for c in companions),
    ]:
        if os.path.exists(local):
            continue
        partial = f"{local}.{os.getpid()}.part"  # download beside it, then rename: never a half-written file
        try:
            storage.client().bucket(bucket).blob(wanted).download_to_filename(partial)
        except gexc.NotFound:
            if wanted == name:
                raise
            continue
        os.replace(partial, local)
    return target


def create(settings) -> Classifier:
    """The backend the settings name; says so once when a model has no card."""
    classifier = _create(settings)
    if settings.backend != "none" and classifier.card is None:
        from inspection import logs

        logs.warning(
            "the model has no card: images unlike its training images are not sent to a person",
            model=getattr(classifier, "model", settings.backend),
        )
    return classifier


def _create(settings) -> Classifier:
    return open_model(
        settings.backend, settings.model, settings.vertex_api_endpoint, settings.max_request_bytes
    )


def open_model(
    backend: str, location: str, vertex_api_endpoint: str = "", max_request_bytes: int = 0
) -> Classifier:
    """One backend's classifier for one model: predict, the sweep, evaluate and promote all open
    models here, so a model is judged by exactly the code that serves it."""
    return backends.get(backend).open(location, backends.Opening(vertex_api_endpoint, max_request_bytes))
