"""Environment configuration of the functions, validated once at start.

A bad value stops the instance with a ConfigError that names the variable and the allowed range,
rather than failing image by image.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from inspection.errors import ConfigError
from inspection.labels import LabelMap
from inspection.routing import parse_threshold

TOPIC_PATTERN = re.compile(r"^projects/[^/]+/topics/[^/]+$")
SUBSCRIPTION_PATTERN = re.compile(r"^projects/[^/]+/subscriptions/[^/]+$")
ENDPOINT_PATTERN = re.compile(r"^projects/[^/]+/locations/([^/]+)/endpoints/[^/]+$")
# none: no model yet, so every image goes to reviewers (day zero; README: deploy).
CLASSIFIER_BACKENDS = ("none", "vertex", "onnx")
# Vertex rejects requests over 1.5 MB; base64 grows the image by 4/3, plus a little JSON.
DEFAULT_MAX_REQUEST_BYTES = 1_100_000


def _required(env: Mapping[str, str], key: str, hint: str) -> str:
    value = env.get(key, "").strip()
    if not value:
        raise ConfigError(f"{key} is not set: expected {hint}")
    return value


def _topic(env: Mapping[str, str], key: str) -> str:
    value = _required(env, key, "projects/<project>/topics/<topic>")
    if not TOPIC_PATTERN.match(value):
        raise ConfigError(f"{key}={value!r} is not valid: expected projects/<project>/topics/<topic>")
    return value


def _int(env: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = env.get(key, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not valid: expected an integer in [{low}, {high}]") from None
    if not low <= value <= high:
        raise ConfigError(f"{key}={raw!r} is out of range: expected an integer in [{low}, {high}]")
    return value


@dataclass(frozen=True)
class PredictSettings:
    """What the predict function needs; see README "Configure"."""

    predictions_topic: str
    prediction_bucket: str
    backend: str
    vertex_endpoint: str
    vertex_api_endpoint: str
    onnx_model: str
    label_map: LabelMap
    max_upload_bytes: int
    max_request_bytes: int
    min_image_side: int
    max_image_pixels: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PredictSettings:
        env = os.environ if env is None else env
        backend = env.get("CLASSIFIER_BACKEND", "").strip().lower()
        if backend not in CLASSIFIER_BACKENDS:
            allowed = ", ".join(CLASSIFIER_BACKENDS)
            raise ConfigError(f"CLASSIFIER_BACKEND={backend!r} is not valid: expected one of {allowed}")
        vertex_endpoint = vertex_api = onnx_model = ""
        if backend == "vertex":
            vertex_endpoint = _required(
                env, "VERTEX_ENDPOINT", "projects/<project>/locations/<region>/endpoints/<id>"
            )
            match = ENDPOINT_PATTERN.match(vertex_endpoint)
            if not match:
                raise ConfigError(
                    f"VERTEX_ENDPOINT={vertex_endpoint!r} is not valid: "
                    "expected projects/<project>/locations/<region>/endpoints/<id>"
                )
            vertex_api = env.get("VERTEX_API_ENDPOINT", "").strip() or (
                f"https://{match.group(1)}-aiplatform.googleapis.com"
            )
        elif backend == "onnx":
            onnx_model = _required(env, "ONNX_MODEL", "a local path or gs://bucket/object of a .onnx model")
        return cls(
            predictions_topic=_topic(env, "PREDICTIONS_TOPIC"),
            prediction_bucket=_required(env, "PREDICTION_BUCKET", "the prediction bucket's name"),
            backend=backend,
            vertex_endpoint=vertex_endpoint,
            vertex_api_endpoint=vertex_api,
            onnx_model=onnx_model,
            label_map=LabelMap.parse(env.get("LABEL_MAP", ""), key="LABEL_MAP"),
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 20 * 1024 * 1024, 1024, 512 * 1024 * 1024),
            max_request_bytes=_int(
                env,
                "MAX_REQUEST_BYTES",
                DEFAULT_MAX_REQUEST_BYTES,
                64 * 1024,
                DEFAULT_MAX_REQUEST_BYTES,
            ),
            min_image_side=_int(env, "MIN_IMAGE_SIDE", 32, 1, 4096),
            max_image_pixels=_int(env, "MAX_IMAGE_PIXELS", 50_000_000, 10_000, 500_000_000),
        )


@dataclass(frozen=True)
class MoveSettings:
    """What the move function needs; see README "Configure"."""

    prediction_bucket: str
    threshold: float
    dead_letter_topic: str
    inbound_bucket: str  # the only bucket move takes images from

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MoveSettings:
        env = os.environ if env is None else env
        return cls(
            prediction_bucket=_required(env, "PREDICTION_BUCKET", "the prediction bucket's name"),
            threshold=parse_threshold(
                _required(env, "PREDICTION_THRESHOLD", "a number in (0.5, 1]"),
                "PREDICTION_THRESHOLD",
            ),
            dead_letter_topic=_topic(env, "DEAD_LETTER_TOPIC"),
            inbound_bucket=_required(env, "INBOUND_BUCKET", "the inbound bucket's name"),
        )


@dataclass(frozen=True)
class SweepSettings:
    """What the re-drive sweep needs: predict's own settings (it finishes predict's work), and where
    to look for stranded images and held messages; see README "Nothing is lost"."""

    predict: PredictSettings
    inbound_bucket: str
    held_subscription: str
    redrive_after_s: int
    max_messages: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SweepSettings:
        env = os.environ if env is None else env
        held = _required(env, "HELD_SUBSCRIPTION", "projects/<project>/subscriptions/<subscription>")
        if not SUBSCRIPTION_PATTERN.match(held):
            raise ConfigError(
                f"HELD_SUBSCRIPTION={held!r} is not valid: expected projects/<project>/subscriptions/<name>"
            )
        return cls(
            predict=PredictSettings.from_env(env),
            inbound_bucket=_required(env, "INBOUND_BUCKET", "the inbound bucket's name"),
            held_subscription=held,
            redrive_after_s=_int(env, "REDRIVE_AFTER_SECONDS", 900, 1, 7 * 24 * 3600),
            max_messages=_int(env, "REDRIVE_MAX_MESSAGES", 100, 1, 1000),
        )
