"""A model as the scripts name it: a `.onnx` or `.tflite` file (local or gs://), or a Vertex AI
endpoint. Each opens through `inspection.model.classifiers.open_model`, the code predict serves with, and
knows the `pulumi config set` lines that make predict serve it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from inspection import backends
from inspection.errors import ConfigError
from inspection.model import classifiers
from scripts import locations

FORMS = "a .onnx or .tflite file (a path or gs://…), or projects/P/locations/R/endpoints/ID"


@dataclass(frozen=True)
class ModelRef:
    backend: str  # onnx | tflite | vertex | none
    location: str  # the file, or the endpoint's resource name; "" for none

    @classmethod
    def parse(cls, raw: str, key: str = "model") -> ModelRef:
        raw = raw.strip()
        if backends.ENDPOINT_PATTERN.match(raw):
            return cls("vertex", raw)
        served_by = backends.of_file(raw)
        if served_by:
            return cls(served_by.name, raw)
        raise ConfigError(f"{key}={raw!r} is not a model: expected {FORMS}")

    @classmethod
    def from_dict(cls, body: dict) -> ModelRef:
        return cls(body["backend"], body["location"])

    def to_dict(self) -> dict:
        return {"backend": self.backend, "location": self.location}

    def open(self) -> classifiers.Classifier:
        """VERTEX_API_ENDPOINT, as predict reads it, points the vertex backend at a stand-in."""
        return classifiers.open_model(self.backend, self.location, os.environ.get("VERTEX_API_ENDPOINT", ""))

    def config_lines(self) -> list[str]:
        """What makes the deployed predict function serve this model."""
        values = backends.get(self.backend).config_values(self.location)
        return [f"pulumi config set {key} {value}" for key, value in values]

    @property
    def deployable(self) -> bool:
        """Predict in the cloud reads model files from gs:// only."""
        return backends.get(self.backend).grant != backends.FOLDER_GRANT or locations.remote(self.location)

    def __str__(self) -> str:
        if not self.location:
            return f"{self.backend} (every image to a person)"
        return f"{self.backend}:{self.location}"


NO_MODEL = ModelRef("none", "")
