"""Models that run inside predict: an AutoML-Edge-shaped TF Lite model through LiteRT, and model
cards that send images unlike the training images to a person."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cloudevents.conversion import to_binary
from PIL import Image, ImageFilter

from inspection.errors import ConfigError
from inspection.model_card import ModelCard
from tests.helpers import image_bytes, make_function, storage_event

EDGE = Path(__file__).parent / "fixtures" / "edge"  # written by scripts/training/make_edge_fixture.py


@pytest.fixture
def buckets(make_bucket, monkeypatch, topic):
    inbound, predicted, models = make_bucket("inbound"), make_bucket("prediction"), make_bucket("training")
    monkeypatch.setenv("PREDICTION_BUCKET", predicted.name)
    monkeypatch.setenv("PREDICTIONS_TOPIC", topic.path)
    return inbound, models, topic


def deliver(predict, bucket, name: str, data: bytes):
    blob = bucket.blob(name)
    blob.upload_from_string(data)
    headers, body = to_binary(storage_event(blob))
    return predict.post("/", headers=headers, data=body)


@pytest.mark.parametrize("kind", ["quantized", "float"])
def test_an_edge_model_runs_inside_predict_from_its_export_folder(buckets, monkeypatch, kind):
    """The export's model.tflite and dict.txt, read from gs:// once, run with LiteRT (no TensorFlow);
    uint8 scores are dequantized with the output's scale and zero point."""
    inbound, models, topic = buckets
    for file in ("model.tflite", "dict.txt"):
        models.blob(f"models/edge-{kind}/{file}").upload_from_filename(str(EDGE / kind / file))
    monkeypatch.setenv("CLASSIFIER_BACKEND", "tflite")
    monkeypatch.setenv("TFLITE_MODEL", f"gs://{models.name}/models/edge-{kind}/model.tflite")
    predict = make_function("predict_image", "cloudevent")
    assert deliver(predict, inbound, "line-1/part.jpeg", image_bytes()).status_code == 200
    [message] = topic.read()
    published = json.loads(message.data)
    assert published["label"] == "defect" and published["score"] > 0.99
    assert sorted(published["scores"]) == ["defect", "ok"]
    assert abs(sum(published["scores"].values()) - 1) < 1e-6


def test_a_model_without_its_label_file_stops_with_a_clear_error(tmp_path):
    from inspection.classifiers import TfliteClassifier

    (tmp_path / "model.tflite").write_bytes((EDGE / "quantized" / "model.tflite").read_bytes())
    with pytest.raises(ConfigError, match=r"no dict\.txt beside it"):
        TfliteClassifier(str(tmp_path / "model.tflite"))


GOOD = {"card": 1, "labels": ["defect", "ok"], "input_stats": {"brightness": [10, 200]}}


@pytest.mark.parametrize(
    ("card", "complaint"),
    [
        ("{not json", "not JSON"),
        ({**GOOD, "card": 2}, '"card": 1'),
        ({**GOOD, "labels": ["only-one"]}, "at least two"),
        ({**GOOD, "input_stats": {"loudness": [0, 1]}}, "input_stats.loudness is not one of"),
        ({**GOOD, "input_stats": {"brightness": [200, 10]}}, "low <= high"),
        ({**GOOD, "evaluation": [1]}, "evaluation must be an object"),
    ],
)
def test_a_bad_model_card_is_refused_with_what_is_wrong(card, complaint):
    raw = card if isinstance(card, str) else json.dumps(card)
    with pytest.raises(ConfigError, match=r"model card gs://m/card\.json") as error:
        ModelCard.parse(raw, "gs://m/card.json")
    assert complaint in str(error.value)


def _variant(kind: str) -> bytes:
    part = Image.open(io.BytesIO(image_bytes())).convert("L")
    image = {
        "dark": lambda: part.point(lambda v: v // 6),
        "blurred": lambda: part.filter(ImageFilter.GaussianBlur(8)),
        "blank": lambda: Image.new("L", part.size, 128),
        "wrong size": lambda: part.resize((900, 600)),
    }[kind]()
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["dark", "blurred", "blank", "wrong size"])
def test_an_image_unlike_the_training_images_goes_to_a_person(buckets, monkeypatch, small_model, kind):
    """A lamp that failed, a camera out of focus or moved: the card's ranges catch it, whatever
    the model's confidence, and say which measure failed."""
    inbound, _, topic = buckets
    monkeypatch.setenv("CLASSIFIER_BACKEND", "onnx")
    monkeypatch.setenv("ONNX_MODEL", str(small_model))
    predict = make_function("predict_image", "cloudevent")
    assert deliver(predict, inbound, f"line-1/{kind}.jpeg", _variant(kind)).status_code == 200
    [message] = topic.read()
    published = json.loads(message.data)
    assert published["unclear_reason"] == "unusual_input"
    assert "outside the training range" in published["unclear_detail"]


def test_normal_images_are_still_decided_by_the_model(buckets, monkeypatch, small_model):
    inbound, _, topic = buckets
    monkeypatch.setenv("CLASSIFIER_BACKEND", "onnx")
    monkeypatch.setenv("ONNX_MODEL", str(small_model))
    predict = make_function("predict_image", "cloudevent")
    for index, defect in enumerate((None, "crack", "blowhole", None)):
        assert (
            deliver(predict, inbound, f"line-1/normal-{index}.jpeg", image_bytes(defect=defect)).status_code
            == 200
        )
    published = [json.loads(m.data) for m in topic.read(expect=4)]
    assert len(published) == 4 and all(p["unclear_reason"] == "" for p in published)
