"""What every classifier backend shares, and the one way to open one. Each backend returns every
class's confidence, keyed by the model's class name; each lives in its own module beside this one:

- `vertex` (vertex.py): a Vertex AI endpoint's online prediction, over REST with google-auth, so
  that the functions never import google-cloud-aiplatform (1.3 s per cold start).
- `onnx` (onnx_model.py): a model file run with onnxruntime; its labels and preprocessing travel in
  its metadata.
- `tflite` (tflite.py): a Vertex AI AutoML Edge model exported as TF Lite, run with LiteRT.
- `anomaly` (anomaly.py): a model of good parts alone, or an anomalib ONNX export; its normalised
  score s becomes {"defect": s, "ok": 1 - s}, so the threshold decides as for the others.
- `none` (here): no model yet (day zero). Every image goes to reviewers, whose decisions become the
  first training set (scripts/training/retrain_from_reviews.py).

The backend registry (inspection/backends.py) names each backend's opener, so a deployable imports
only the backend it serves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from inspection import backends

if TYPE_CHECKING:
    from inspection.model.images import LoadedImage


@dataclass(frozen=True)
class Classification:
    confidences: dict[str, float]
    model: str
    unclear_reason: str = ""  # set when a person must decide, whatever the scores say
    unclear_detail: str = ""  # why, in words
    anomaly: Any = None  # an anomaly model's score and map (inspection.model.anomaly.Scored), when one ran
    guard: str = ""  # the input guard that checked the photo (its digest); "" when none did


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


class SecondOpinion:
    """A classifier, and beside it an anomaly model of good parts. The classifier's scores decide;
    the anomaly model's score and map travel with them, so that predict can send a part the
    classifier calls ok but that is unlike every good part to a person (predicting.assess), and show
    them where to look."""

    def __init__(self, classifier: Classifier, anomaly: Classifier):  # anomaly.AnomalyClassifier
        self.classifier, self.anomaly = classifier, anomaly
        self.card = getattr(classifier, "card", None)
        self.model = getattr(classifier, "model", "")

    def classify(self, image: LoadedImage) -> Classification:
        decided = self.classifier.classify(image)
        return dataclasses.replace(decided, anomaly=self.anomaly.classify(image).anomaly)


class Guarded:
    """A model behind its input guard (guard.py): a photo unlike the model's reference photos goes
    to a person whatever the scores say, and every classification names the guard that checked it."""

    def __init__(self, classifier: Classifier, guard):  # guard.InputGuard
        self.classifier, self.guard = classifier, guard
        self.card = getattr(classifier, "card", None)
        self.model = getattr(classifier, "model", "")

    def classify(self, image: LoadedImage) -> Classification:
        from inspection.model.guard import UNUSUAL_INPUT

        decided = self.classifier.classify(image)
        unusual = "" if decided.unclear_reason else self.guard.check(image.image)
        return dataclasses.replace(
            decided,
            unclear_reason=UNUSUAL_INPUT if unusual else decided.unclear_reason,
            unclear_detail=unusual or decided.unclear_detail,
            guard=self.guard.digest,
        )


LABELS_FILE = "dict.txt"
CARD_FILE = "card.json"


def create(settings) -> Classifier:
    """The backend the settings name, behind its input guard; says so once when a model serves
    without one (INPUT_GUARD=none, on purpose)."""
    classifier = open_model(
        settings.backend,
        settings.model,
        settings.vertex_api_endpoint,
        settings.max_request_bytes,
        second_opinion=settings.second_opinion,
        input_guard=settings.input_guard,
    )
    if settings.backend != NO_MODEL and not isinstance(classifier, Guarded):
        from inspection import logs

        logs.warning(
            "the model serves without an input guard (INPUT_GUARD=none): photos unlike its training "
            "photos are auto-decided",
            model=getattr(classifier, "model", settings.backend),
        )
    return classifier


def open_model(
    backend: str,
    location: str,
    vertex_api_endpoint: str = "",
    max_request_bytes: int = 0,
    second_opinion: str = "",
    input_guard: str = "",
) -> Classifier:
    """One backend's classifier for one model, with the anomaly model beside it and the input guard
    in front of it when given: predict, the sweep, evaluate, promote and the backfill all open models
    here, so a model is judged by exactly the code that serves it."""
    opening = backends.Opening(vertex_api_endpoint, max_request_bytes)
    classifier = backends.get(backend).open(location, opening)
    if second_opinion:
        classifier = SecondOpinion(
            classifier, backends.get(backends.SECOND_OPINION).open(second_opinion, opening)
        )
    if input_guard and input_guard != backends.NO_GUARD and backend != NO_MODEL:
        from inspection.model import guard

        classifier = Guarded(classifier, guard.load(input_guard))
    return classifier
