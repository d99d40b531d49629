"""The classifier backends, each declared once: how the stack names its model, which variable the
function reads, what a valid model looks like, the grant it needs, what the function ships for it,
and how to open it.

Everything that switches on the backend reads this table: the stack's configuration
(infra/config.py), the function's settings (inspection/settings.py), the model grant
(infra/functions.py), the function's requirements (infra/packaging.py), opening a model
(inspection/model/) and the scripts' model references (scripts/training/models.py). Adding a
backend is one entry here and its classifier class.

Nothing heavy is imported here: a backend's runtime is imported when a model is opened.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inspection.errors import ConfigError

ENDPOINT_HINT = "projects/<project>/locations/<region>/endpoints/<id>"
ENDPOINT_PATTERN = re.compile(r"^projects/[^/]+/locations/([^/]+)/endpoints/[^/]+$")
ENDPOINT_ID = re.compile(r"^[0-9]{1,25}$")
MODEL_URL = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}/(.+/)?[^/]+$")

# What a grant on the model is: on one Vertex AI endpoint (prediction only), or read access to the
# folder a model file lives in.
ENDPOINT_GRANT, FOLDER_GRANT = "endpoint", "model folder"


def vertex_api_url(endpoint: str) -> str:
    """The regional API an endpoint answers on (docs/gcp-rules.md, "Vertex AI")."""
    return f"https://{ENDPOINT_PATTERN.match(endpoint).group(1)}-aiplatform.googleapis.com"


@dataclass(frozen=True)
class Opening:
    """What opening a model may use besides its location."""

    vertex_api_endpoint: str = ""
    max_request_bytes: int = 0


@dataclass(frozen=True)
class Backend:
    name: str
    summary: str
    variable: str = ""  # the function's environment variable naming the model ("" : no model)
    hint: str = ""  # what a model location looks like, for error messages
    config_keys: tuple[str, ...] = ()  # the stack's keys that name the model
    grant: str = ""  # ENDPOINT_GRANT, FOLDER_GRANT or "" (nothing to grant)
    distributions: tuple[str, ...] = ()  # what the function ships only for this backend
    suffix: str = ""  # a model file's extension, for the scripts' model references
    accepts: tuple[str, ...] = ()  # other extensions the stack may name (an anomalib export's .onnx)
    maps: bool = False  # its models give an anomaly map, which predict keeps for people (heatmaps/)
    # `module:Class.method` that opens a model: (location, Opening) → classifier. Named, not
    # imported, so that a deployable that never opens a model does not ship the classifiers.
    opener: str = ""

    def check(self, location: str) -> str:
        """The location, or ConfigError naming the variable and what is expected."""
        if not self.variable:
            return ""
        if not location.strip():
            raise ConfigError(f"{self.variable} is not set: expected {self.hint}")
        location = location.strip()
        if self.name == "vertex" and not ENDPOINT_PATTERN.match(location):
            raise ConfigError(f"{self.variable}={location!r} is not valid: expected {self.hint}")
        return location

    def open(self, location: str, opening: Opening = Opening()):
        module, _, attribute = self.opener.partition(":")
        found: Any = importlib.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
        return found(self.check(location), opening)

    def location_from_config(self, get: Callable[[str], str], project: str, region: str) -> str:
        """The model's location from the stack's keys; ConfigError (key, problem, fix) when bad."""
        if self.name == "vertex":
            endpoint_id = get("vertexEndpointId")
            if not ENDPOINT_ID.match(endpoint_id):
                raise ConfigError(
                    f"quality-inspection:vertexEndpointId is {endpoint_id!r}, not a Vertex AI endpoint id "
                    "(digits). Fix: deploy a model with `python -m scripts.training.train_vertex … "
                    "--deploy`, which prints the exact `pulumi config set vertexEndpointId …` line"
                )
            return f"projects/{project}/locations/{get('vertexRegion') or region}/endpoints/{endpoint_id}"
        if not self.config_keys:
            return ""
        [key] = self.config_keys
        value = get(key)
        if not MODEL_URL.match(value) or not value.endswith((self.suffix, *self.accepts)):
            raise ConfigError(
                f"quality-inspection:{key} is {value!r}, not {self.hint}. "
                f"Fix: pulumi config set {key} gs://<prefix>-training/models/<name>{self.suffix}"
            )
        return value

    def config_values(self, location: str) -> list[tuple[str, str]]:
        """The stack keys and values that make the deployed predict serve this model."""
        values = [("classifierBackend", self.name)]
        if self.name == "vertex":
            parts = location.split("/")
            values += [("vertexEndpointId", parts[5]), ("vertexRegion", parts[3])]
        elif self.config_keys:
            values.append((self.config_keys[0], location))
        return values


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend(
            "none",
            "no model yet: a person decides every image",
            opener="inspection.model.classifiers:NoModel.open",
        ),
        Backend(
            "vertex",
            "a Vertex AI endpoint's online prediction",
            variable="VERTEX_ENDPOINT",
            hint=ENDPOINT_HINT,
            config_keys=("vertexEndpointId", "vertexRegion"),
            grant=ENDPOINT_GRANT,
            opener="inspection.model.vertex:VertexClassifier.open",
        ),
        Backend(
            "onnx",
            "a model file run with onnxruntime in the function",
            variable="ONNX_MODEL",
            hint="gs://<bucket>/<folder>/<model>.onnx (or a local path)",
            config_keys=("onnxModel",),
            grant=FOLDER_GRANT,
            distributions=("onnxruntime",),
            suffix=".onnx",
            opener="inspection.model.onnx_model:OnnxClassifier.open",
        ),
        Backend(
            "tflite",
            "a Vertex AI Edge export run with LiteRT in the function",
            variable="TFLITE_MODEL",
            hint="gs://<bucket>/<folder>/model.tflite (or a local path)",
            config_keys=("tfliteModel",),
            grant=FOLDER_GRANT,
            distributions=("ai-edge-litert", "flatbuffers"),
            suffix=".tflite",
            opener="inspection.model.tflite:TfliteClassifier.open",
        ),
        Backend(
            "anomaly",
            "a model of good parts alone (train_anomaly's, or an anomalib ONNX export) run in the function",
            variable="ANOMALY_MODEL",
            hint="gs://<bucket>/<folder>/<model>.npz, or an anomalib export's .onnx (or a local path)",
            config_keys=("anomalyModel",),
            grant=FOLDER_GRANT,
            distributions=("onnxruntime",),  # for anomalib's exports; our own needs numpy alone
            suffix=".npz",
            accepts=(".onnx",),
            maps=True,
            opener="inspection.model.anomaly:AnomalyClassifier.open",
        ),
    )
}
NAMES = tuple(BACKENDS)
# INPUT_GUARD (the stack's inputGuard) that serves a model without an input guard, on purpose: the
# stack output and the report say so (inspection/model/guard.py).
NO_GUARD = "none"


def guard_beside(model: str) -> str:
    """Where a model file's input guard lives: `<name>.guard.json` in its folder (model.onnx →
    model.guard.json), so that two models in one folder never share a guard."""
    folder, _, file = model.rpartition("/")
    name = f"{file.rsplit('.', 1)[0]}.guard.json"
    return f"{folder}/{name}" if folder else name


# The backend whose model may also stand beside another backend's classifier, as a second opinion
# (the stack's anomalyModel next to tfliteModel, onnxModel or a Vertex endpoint).
SECOND_OPINION = "anomaly"


def get(name: str, key: str = "CLASSIFIER_BACKEND") -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"{key}={name!r} is not valid: expected one of {', '.join(NAMES)}") from None


def of_file(location: str) -> Backend | None:
    """The backend that serves a model file with this name, if any."""
    return next((b for b in BACKENDS.values() if b.suffix and location.endswith(b.suffix)), None)
