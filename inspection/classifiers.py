"""Classifier backends. Each returns every class's confidence, keyed by the model's class name.

- `vertex`: a Vertex AI endpoint's online prediction, over REST with google-auth, so that the
  functions never import google-cloud-aiplatform (1.3 s per cold start).
- `onnx`: a model file run with onnxruntime; its labels and preprocessing travel in its metadata.
- `tflite`: a Vertex AI AutoML Edge model exported as TF Lite, run with LiteRT in the function.
- `anomaly`: a model of good parts alone (inspection/anomaly.py), or an anomalib ONNX export; its
  normalised score s becomes {"defect": s, "ok": 1 - s}, so the threshold decides as for the others.
- `none`: no model yet (day zero). Every image goes to reviewers, whose decisions become the
  first training set (scripts/training/retrain_from_reviews.py).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inspection import backends, calls, layout, model_card
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
    unclear_detail: str = ""  # why, in words
    anomaly: Any = None  # an anomaly model's score and map (inspection.anomaly.Scored), when one ran


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


class OnnxClassifier:
    """A self-describing ONNX model (see scripts/training/train_local.py) run on the CPU."""

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


class AnomalyClassifier:
    """How far an image is from the good parts a model learned: train_anomaly's `.npz`, or an
    anomalib ONNX export run unchanged (inspection/anomaly.py)."""

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> AnomalyClassifier:
        return cls(local_model_path(location), location)

    def __init__(self, path: str, location: str = ""):
        from inspection import anomaly

        self.model = location or path
        if path.endswith(".onnx"):
            self._scorer = anomaly.AnomalibExport(path)
            card = None
        else:
            self._scorer = anomaly.AnomalyModel.load(path)
            card = self._scorer.card
        self.card = ModelCard.parse(json.dumps(card), f"in {path}") if card else None
        self._frame = (card or {}).get("frame") or {}

    def classify(self, image: LoadedImage) -> Classification:
        scored = self._scorer.score(image.image)
        moved = self._moved(scored.frame)
        return Classification(
            {"defect": scored.score, "ok": 1.0 - scored.score},
            self.model,
            unclear_reason=model_card.UNUSUAL_INPUT if moved else "",
            unclear_detail=moved,
            anomaly=scored,
        )

    def _moved(self, frame) -> str:
        """The camera moved, or this is another part: it sits outside where the good parts sat."""
        for name in ("centre_offset", "radius"):
            if name in self._frame:
                low, high = self._frame[name]
                value = getattr(frame, name)
                if not low <= value <= high:
                    return f"the part's {name} {value:.3f} is outside the training range [{low:g}, {high:g}]"
        return ""


class SecondOpinion:
    """A classifier, and beside it an anomaly model of good parts. The classifier's scores decide;
    the anomaly model's score and map travel with them, so that predict can send a part the
    classifier calls ok but that is unlike every good part to a person (predicting.assess), and show
    them where to look. A moved camera, by the anomaly model's frame, is unusual input as well."""

    def __init__(self, classifier: Classifier, anomaly: AnomalyClassifier):
        self.classifier, self.anomaly = classifier, anomaly
        self.card = getattr(classifier, "card", None)
        self.model = getattr(classifier, "model", "")

    def classify(self, image: LoadedImage) -> Classification:
        decided = self.classifier.classify(image)
        second = self.anomaly.classify(image)
        if decided.unclear_reason or not second.unclear_reason:
            return dataclasses.replace(decided, anomaly=second.anomaly)
        return dataclasses.replace(
            decided,
            unclear_reason=second.unclear_reason,
            unclear_detail=second.unclear_detail,
            anomaly=second.anomaly,
        )


class TfliteClassifier:
    """A Vertex AI AutoML Edge image model exported as TF Lite, run with LiteRT (no TensorFlow).

    The export is one `model.tflite` that carries its labels and its input normalisation as TF Lite
    metadata (inspection/tflite_metadata.py); a `dict.txt` beside the model is read only for legacy
    AutoML Vision exports that have no labels inside. A `card.json` beside it is the model card.

    The image is prepared as Google's own Edge pipeline prepares it: 8-bit RGB, resized to the
    model's input with TensorFlow's bilinear resize, cast to uint8 (images.resize_bilinear). A
    quantized (uint8) model takes those pixels as they are and gives scores to dequantize with the
    output's scale and zero point; a float model takes them normalised as its metadata says, and a
    float model that does not say is refused, never guessed.
    """

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> TfliteClassifier:
        return cls(local_model_path(location, (CARD_FILE, LABELS_FILE)))

    def __init__(self, path: str):
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter

        from inspection import tflite_metadata

        with open(path, "rb") as file:
            content = file.read()
        folder = os.path.dirname(path)
        carried = tflite_metadata.read(content)
        self.labels = list(carried.labels) or _legacy_labels(folder, path)
        card = os.path.join(folder, CARD_FILE)
        self.card = ModelCard.parse(Path(card).read_bytes(), card) if os.path.exists(card) else None
        self._interpreter = Interpreter(model_content=content, num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        _, self._height, self._width, channels = self._input["shape"]
        if channels != 3 or int(self._output["shape"][-1]) != len(self.labels):
            raise ConfigError(
                f"TFLITE_MODEL {path}: expected [1,H,W,3] in and one score per label out "
                f"({len(self.labels)} labels); found {list(self._input['shape'])} in and "
                f"{list(self._output['shape'])} out"
            )
        self._normalise = None
        if self._input["dtype"] != np.uint8:
            if carried.mean is None or carried.std is None or not all(carried.std):
                raise ConfigError(
                    f"TFLITE_MODEL {path}: a float model whose input normalisation is unknown "
                    "(its TF Lite metadata has no NormalizationOptions); "
                    "re-export it from Vertex AI, whose exports carry it"
                )
            self._normalise = (
                np.asarray(carried.mean, dtype=np.float32),
                np.asarray(carried.std, dtype=np.float32),
            )
        self.model = self.card.model if self.card and self.card.model else os.path.basename(folder) or path

    def tensor(self, image: LoadedImage):
        """The model's input for `image`."""
        import numpy as np

        from inspection.images import resize_bilinear, rgb

        pixels = np.asarray(rgb(image.image))
        resized = np.clip(resize_bilinear(pixels, int(self._height), int(self._width)), 0, 255)
        tensor = resized.astype(np.uint8)  # as tf.cast truncates
        if self._normalise is not None:
            mean, std = self._normalise
            tensor = ((tensor.astype(np.float32) - mean) / std).astype(self._input["dtype"])
        return tensor[None, ...]

    def classify(self, image: LoadedImage) -> Classification:
        import numpy as np

        self._interpreter.set_tensor(self._input["index"], self.tensor(image))
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


def _legacy_labels(folder: str, path: str) -> list[str]:
    """An AutoML Vision export's dict.txt beside the model; only for models with no labels inside."""
    try:
        with open(os.path.join(folder, LABELS_FILE)) as file:
            return [line.strip() for line in file if line.strip()]
    except FileNotFoundError:
        raise ConfigError(
            f"TFLITE_MODEL {path} carries no labels: its TF Lite metadata has none, and there is no "
            f"{LABELS_FILE} beside it (legacy exports)"
        ) from None


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
    # Keyed by the model object's generation: a model replaced at the same name is a new download,
    # never a stale copy from an earlier one.
    model = storage.client().bucket(bucket).get_blob(name)
    if model is None:
        raise gexc.NotFound(f"{location} does not exist")
    folder = os.path.join(
        tempfile.gettempdir(), f"model-{layout.digest(f'{bucket}/{name}')[:16]}-{model.generation}"
    )
    os.makedirs(folder, exist_ok=True)
    prefix = name.rpartition("/")[0]
    target = os.path.join(folder, os.path.basename(name))
    for wanted, local in [
        (name, target),
        *((f"{prefix}/{c}".lstrip("/"), os.path.join(folder, c)) for c in companions),
    ]:
        if os.path.exists(local):
            continue
        # Download beside it, then rename: never a half-written file. One partial file per process
        # and thread, since a new instance's first requests may all be opening the model.
        partial = f"{local}.{os.getpid()}.{threading.get_ident()}.part"
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
    classifier = open_model(
        settings.backend, settings.model, settings.vertex_api_endpoint, settings.max_request_bytes
    )
    if settings.second_opinion:
        return SecondOpinion(classifier, open_model(backends.SECOND_OPINION, settings.second_opinion))
    return classifier


def open_model(
    backend: str, location: str, vertex_api_endpoint: str = "", max_request_bytes: int = 0
) -> Classifier:
    """One backend's classifier for one model: predict, the sweep, evaluate and promote all open
    models here, so a model is judged by exactly the code that serves it."""
    return backends.get(backend).open(location, backends.Opening(vertex_api_endpoint, max_request_bytes))
