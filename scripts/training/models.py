"""A model as the scripts name it: a `.onnx` or `.tflite` file (local or gs://), or a Vertex AI
endpoint. Each opens through `inspection.model.classifiers.open_model`, the code predict serves with, and
knows the `pulumi config set` lines that make predict serve it."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from inspection import backends
from inspection.errors import ConfigError
from inspection.model import classifiers
from scripts import locations

FORMS = "a .onnx or .tflite file (a path or gs://…), or projects/P/locations/R/endpoints/ID"


@dataclass(frozen=True)
class ModelRef:
    backend: str  # onnx | tflite | vertex | anomaly | none
    location: str  # the file, or the endpoint's resource name; "" for none
    # its input guard's guard.json (scripts/training/guard.py); backends.NO_GUARD: none, on purpose;
    # "": not looked for yet (`guarded`)
    guard: str = ""

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
        # registries written before the guard name none: such a model was served unguarded
        return cls(body["backend"], body["location"], body.get("guard") or backends.NO_GUARD)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "location": self.location, "guard": self.guard}

    def guarded(self, given: str | None = None, unguarded: bool = False) -> ModelRef:
        """This model with its input guard: `given`, else <model>.guard.json beside a model file. Without
        one the script stops, unless told `unguarded` (scripts/training/guard.py)."""
        if self.backend == "none":
            return self
        from scripts.training import guard

        return dataclasses.replace(self, guard=guard.required(self.location, given, unguarded))

    def open(self) -> classifiers.Classifier:
        """VERTEX_API_ENDPOINT, as predict reads it, points the vertex backend at a stand-in."""
        return classifiers.open_model(
            self.backend, self.location, os.environ.get("VERTEX_API_ENDPOINT", ""), input_guard=self.guard
        )

    def config_lines(self) -> list[str]:
        """What makes the deployed predict function serve this model, behind its guard."""
        values = backends.get(self.backend).config_values(self.location)
        if self.backend != "none":
            values = [*values, ("inputGuard", self.guard or backends.NO_GUARD)]
        return [f"pulumi config set {key} {value}" for key, value in values]

    @property
    def deployable(self) -> bool:
        """Predict in the cloud reads model files from gs:// only."""
        return backends.get(self.backend).grant != backends.FOLDER_GRANT or locations.remote(self.location)

    def __str__(self) -> str:
        if not self.location:
            return f"{self.backend} (every image to a person)"
        if self.guard == backends.NO_GUARD:
            return f"{self.backend}:{self.location} (no input guard)"
        return f"{self.backend}:{self.location}"


NO_MODEL = ModelRef("none", "")
