"""The message schema, the routing rule, the label map and configuration validation."""

from __future__ import annotations

import json
import sys

import pytest

from inspection import layout, routing
from inspection.errors import ConfigError, MessageError
from inspection.labels import LabelMap
from inspection.messages import Prediction
from inspection.settings import MoveSettings, PredictSettings
from tests.helpers import prediction

MOVE_ENV = {
    "PREDICTION_BUCKET": "p",
    "PREDICTION_THRESHOLD": "0.8",
    "DEAD_LETTER_TOPIC": "projects/x/topics/dead",
    "INBOUND_BUCKET": "i",
}


def test_prediction_round_trips_through_json():
    original = Prediction.from_json(json_of(prediction("in", "a b/ü#?.jpg", 17, "defect", 0.9)))
    assert Prediction.from_json(original.to_json()) == original
    assert original.generation == 17


def json_of(body: dict) -> bytes:
    import json

    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"label": "Defect"}, "label"),
        ({"score": 1.5}, "score"),
        ({"generation": "abc"}, "generation"),
        ({"generation": 0}, "generation"),
        ({"name": ""}, "name"),
        ({"name": "a\nb"}, "line break"),
        ({"bucket": None}, "bucket"),
        ({"predicted_at": "yesterday"}, "predicted_at"),
        ({"scores": {"ok": 0.95}}, "scores has no entry"),
        ({"score": 0.5}, "score differs"),
    ],
)
def test_malformed_predictions_say_what_is_wrong(change, complaint):
    body = {**prediction("in", "x.jpg", 1, "defect", 0.9), **change}
    with pytest.raises(MessageError, match=complaint):
        Prediction.from_json(json_of(body))


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b"\xff\xfe"])
def test_non_objects_are_malformed(raw):
    with pytest.raises(MessageError):
        Prediction.from_json(raw)


@pytest.mark.parametrize(
    ("score", "folder"), [(0.8, "defect"), (0.7999999, "unclear"), (1.0, "defect"), (0.51, "unclear")]
)
def test_threshold_boundary_is_inclusive(score, folder):
    p = Prediction.from_json(json_of(prediction("in", "x", 1, "defect", score)))
    assert routing.folder_for(p, 0.8) == folder


@pytest.mark.parametrize("raw", ["0.5", "0", "1.01", "-1", "abc", "", "nan"])
def test_bad_threshold_names_the_variable_and_range(raw):
    with pytest.raises(ConfigError, match=r"PREDICTION_THRESHOLD.*\(0\.5, 1\]"):
        MoveSettings.from_env({**MOVE_ENV, "PREDICTION_THRESHOLD": raw})


def test_valid_move_settings():
    assert MoveSettings.from_env(MOVE_ENV).threshold == 0.8


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"CLASSIFIER_BACKEND": "automl"}, "CLASSIFIER_BACKEND"),
        ({"CLASSIFIER_BACKEND": "vertex"}, "VERTEX_ENDPOINT"),
        ({"CLASSIFIER_BACKEND": "vertex", "VERTEX_ENDPOINT": "123"}, "VERTEX_ENDPOINT"),
        ({"CLASSIFIER_BACKEND": "onnx"}, "ONNX_MODEL"),
        ({"CLASSIFIER_BACKEND": "onnx", "ONNX_MODEL": "m", "PREDICTIONS_TOPIC": "t"}, "PREDICTIONS_TOPIC"),
        ({"CLASSIFIER_BACKEND": "onnx", "ONNX_MODEL": "m", "MIN_IMAGE_SIDE": "0"}, "MIN_IMAGE_SIDE"),
        ({"CLASSIFIER_BACKEND": "onnx", "ONNX_MODEL": "m", "LABEL_MAP": "Bad=maybe"}, "LABEL_MAP"),
        # a model serves behind its input guard, or without one only when told so
        ({"CLASSIFIER_BACKEND": "onnx", "ONNX_MODEL": "m.onnx"}, "INPUT_GUARD is not set"),
        ({"CLASSIFIER_BACKEND": "onnx", "ONNX_MODEL": "m.onnx", "INPUT_GUARD": "m.guard.txt"}, "INPUT_GUARD"),
    ],
)
def test_bad_predict_settings_name_the_key(env, key):
    base = {"PREDICTIONS_TOPIC": "projects/p/topics/t", "PREDICTION_BUCKET": "b", "INBOUND_BUCKET": "i"}
    with pytest.raises(ConfigError, match=key):
        PredictSettings.from_env({**base, **env})


def test_vertex_api_endpoint_follows_the_region():
    settings = PredictSettings.from_env(
        {
            "PREDICTIONS_TOPIC": "projects/p/topics/t",
            "PREDICTION_BUCKET": "b",
            "INBOUND_BUCKET": "i",
            "CLASSIFIER_BACKEND": "vertex",
            "VERTEX_ENDPOINT": "projects/p/locations/europe-west4/endpoints/42",
            "INPUT_GUARD": "none",
        }
    )
    assert settings.vertex_api_endpoint == "https://europe-west4-aiplatform.googleapis.com"


def test_label_map_uses_every_score_and_normalises_case():
    labels = LabelMap.parse("Scratch=defect", key="LABEL_MAP")
    assert labels.normalise({"Ok": 0.5, "Defect": 0.3, "scratch": 0.2}) == {"ok": 0.5, "defect": 0.5}


def test_label_map_refuses_unknown_classes():
    with pytest.raises(ConfigError, match="Porosity"):
        LabelMap.parse("", key="LABEL_MAP").normalise({"Porosity": 1.0})


def test_collision_names_are_deterministic_and_keep_the_extension():
    assert layout.alongside("ok/a/b.jpg", 42) == "ok/a/b__g42.jpg"
    assert layout.alongside("ok/.jpg", 42) == "ok/.jpg__g42"
    assert layout.alongside("ok/noext", 7) == "ok/noext__g7"


def test_a_log_line_is_one_json_object_with_severity_message_and_its_traceback():
    """Cloud Logging reads `severity` and `message`; Error Reporting reads `stack_trace`."""
    import logging

    from inspection.logs import JsonFormatter

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("flask.app").makeRecord(
            "flask.app", logging.ERROR, __file__, 1, "Exception on / [POST]", (), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert (line["severity"], line["message"], line["logger"]) == (
        "ERROR",
        "Exception on / [POST]",
        "flask.app",
    )
    assert "RuntimeError: boom" in line["stack_trace"] and "\n" not in JsonFormatter().format(record)
