"""Models that run inside predict: an AutoML-Edge-shaped TF Lite model through LiteRT, and model
cards that send images unlike the training images to a person."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cloudevents.conversion import to_binary
from PIL import Image, ImageFilter

from inspection.backends import guard_beside
from inspection.errors import ConfigError
from inspection.model.card import ModelCard
from tests.helpers import image_bytes, make_function, storage_event

EDGE = Path(__file__).parent / "fixtures" / "edge"  # written by scripts/training/make_edge_fixture.py


@pytest.fixture
def buckets(make_bucket, deployed_env, topic):
    inbound, predicted, models = make_bucket("inbound"), make_bucket("prediction"), make_bucket("training")
    deployed_env(prediction_bucket=predicted.name, inbound_bucket=inbound.name, predictions_topic=topic.path)
    return inbound, models, topic


def deliver(predict, bucket, name: str, data: bytes):
    blob = bucket.blob(name)
    blob.upload_from_string(data)
    headers, body = to_binary(storage_event(blob))
    return predict.post("/", headers=headers, data=body)


@pytest.mark.parametrize("kind", ["quantized", "float"])
def test_an_edge_model_runs_inside_predict_from_its_export_folder(buckets, deployed_env, kind):
    """A Vertex Edge export as Vertex writes it: one model.tflite, its labels and normalisation
    inside as TF Lite metadata, no dict.txt (issue 20: every real export was refused). Read from
    gs:// once, run with LiteRT (no TensorFlow); uint8 scores dequantized with the output's scale
    and zero point; a float model's input normalised as its metadata says."""
    inbound, models, topic = buckets
    assert sorted(p.name for p in (EDGE / kind).iterdir()) == ["model.tflite"]
    models.blob(f"models/edge-{kind}/model.tflite").upload_from_filename(str(EDGE / kind / "model.tflite"))
    # the export's format is the subject here, served unguarded on purpose (the guard: test_unfamiliar.py)
    deployed_env(
        backend="tflite", model=f"gs://{models.name}/models/edge-{kind}/model.tflite", input_guard="none"
    )
    predict = make_function("predict_image", "cloudevent")
    assert deliver(predict, inbound, "line-1/part.jpeg", image_bytes()).status_code == 200
    [message] = topic.read()
    published = json.loads(message.data)
    assert published["label"] == "defect" and published["score"] > 0.99
    assert sorted(published["scores"]) == ["defect", "ok"]
    assert abs(sum(published["scores"].values()) - 1) < 1e-6
    assert published["guard"] == "", "no guard checked it, and the message says so"


def test_the_labels_come_from_inside_the_model_and_match_googles_own_reader(tmp_path):
    """The labels and normalisation our reader finds are what tflite-support's MetadataDisplayer
    (Google's reader, run when the fixture was made) printed for the same file."""
    from inspection.model import tflite_metadata
    from inspection.model.tflite import TfliteClassifier

    for kind in ("quantized", "float"):
        content = (EDGE / kind / "model.tflite").read_bytes()
        google = json.loads((EDGE / f"{kind}.metadata.json").read_text())
        [subgraph] = google["subgraph_metadata"]
        [norm] = subgraph["input_tensor_metadata"][0]["process_units"]
        found = tflite_metadata.read(content)
        assert found.labels == ("Defect", "Ok")
        assert (list(found.mean), list(found.std)) == (norm["options"]["mean"], norm["options"]["std"])
        assert subgraph["output_tensor_metadata"][0]["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    # a dict.txt beside a model with labels inside is not what serves
    (tmp_path / "model.tflite").write_bytes((EDGE / "quantized" / "model.tflite").read_bytes())
    (tmp_path / "dict.txt").write_text("Wrong\nLabels\n")
    assert TfliteClassifier(str(tmp_path / "model.tflite")).labels == ["Defect", "Ok"]


def test_a_legacy_export_reads_its_label_file_and_a_bare_model_is_refused(tmp_path):
    from inspection.model.tflite import TfliteClassifier

    assert TfliteClassifier(str(EDGE / "legacy" / "model.tflite")).labels == ["Defect", "Ok"]
    (tmp_path / "model.tflite").write_bytes((EDGE / "legacy" / "model.tflite").read_bytes())
    with pytest.raises(ConfigError, match=r"carries no labels"):
        TfliteClassifier(str(tmp_path / "model.tflite"))


def test_a_float_model_whose_normalisation_is_unknown_is_refused(tmp_path):
    """Guessing [0, 1] or [-1, 1] would cost accuracy silently; the export says, or we refuse."""
    from inspection.model.tflite import TfliteClassifier

    (tmp_path / "model.tflite").write_bytes((EDGE / "float-unnormalised" / "model.tflite").read_bytes())
    (tmp_path / "dict.txt").write_text("Defect\nOk\n")
    with pytest.raises(ConfigError, match=r"normalisation is unknown"):
        TfliteClassifier(str(tmp_path / "model.tflite"))


def test_the_edge_preprocessing_is_tensorflows_resize_to_the_pixel():
    """Google's Edge sample resizes with tf.image.resize (bilinear) and casts to uint8; the fixture
    holds what TensorFlow itself made of two images (one shrunk, one enlarged). Ours is equal to
    the pixel; PIL's default resize, which predict used before, is not."""
    import numpy as np

    from inspection.model.images import resize_bilinear

    reference = np.load(EDGE / "preprocessing.npz")
    for name in ("300x400", "97x131"):
        source, tensorflow = reference[f"in_{name}"], reference[f"tf_{name}"]
        ours = np.clip(resize_bilinear(source, 224, 224), 0, 255).astype(np.uint8)
        assert np.array_equal(ours, tensorflow), name
        before = np.asarray(Image.fromarray(source).resize((224, 224)), dtype=np.uint8)
        assert not np.array_equal(before, tensorflow)


@pytest.mark.parametrize("kind", ["16-bit grey", "grey with alpha", "RGBA"])
def test_wide_and_transparent_images_reach_the_model_as_they_look(kind):
    """Before: a 16-bit grey photo became white (clipped), and transparency was dropped, leaving
    whatever colour the transparent pixels carried."""
    import numpy as np

    from inspection.model import images

    if kind == "16-bit grey":
        source = Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)
        expected = (np.asarray(source).astype(np.uint32) >> 8).astype(np.uint8)
    elif kind == "grey with alpha":
        source = Image.merge("LA", (Image.new("L", (64, 64), 40), Image.new("L", (64, 64), 0)))
        expected = np.full((64, 64), 255, dtype=np.uint8)  # wholly transparent: the white behind it
    else:
        source = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        expected = np.full((64, 64), 255, dtype=np.uint8)
    buffer = io.BytesIO()
    source.save(buffer, format="PNG")
    loaded = images.load(buffer.getvalue())
    pixels = np.asarray(images.rgb(loaded.image))
    assert pixels.shape == (64, 64, 3)
    assert np.array_equal(pixels[..., 0], expected)


GOOD = {"card": 1, "labels": ["defect", "ok"], "input_stats": {"brightness": [10, 200]}}  # an older card


@pytest.mark.parametrize(
    ("card", "complaint"),
    [
        ("{not json", "not JSON"),
        ({**GOOD, "card": 2}, '"card": 1'),
        ({**GOOD, "labels": ["only-one"]}, "at least two"),
        ({**GOOD, "evaluation": [1]}, "evaluation must be an object"),
    ],
)
def test_a_bad_model_card_is_refused_with_what_is_wrong(card, complaint):
    raw = card if isinstance(card, str) else json.dumps(card)
    with pytest.raises(ConfigError, match=r"model card gs://m/card\.json") as error:
        ModelCard.parse(raw, "gs://m/card.json")
    assert complaint in str(error.value)


def test_an_older_cards_ranges_are_read_and_left_to_the_guard():
    assert ModelCard.parse(json.dumps(GOOD), "old card").labels == ("defect", "ok")


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


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("dark", "outside the reference range"),
        ("blurred", "sharpness"),
        ("blank", "no part is in view"),
        ("wrong size", "outside the reference range"),
    ],
)
def test_an_image_unlike_the_training_images_goes_to_a_person(buckets, deployed_env, small_model, kind, said):
    """A lamp that failed, a camera out of focus or moved: the input guard train_local wrote beside
    the model catches it, whatever the model's confidence, and says which measure failed."""
    inbound, _, topic = buckets
    deployed_env(backend="onnx", model=str(small_model), input_guard=guard_beside(str(small_model)))
    predict = make_function("predict_image", "cloudevent")
    assert deliver(predict, inbound, f"line-1/{kind}.jpeg", _variant(kind)).status_code == 200
    [message] = topic.read()
    published = json.loads(message.data)
    assert published["unclear_reason"] == "unusual_input"
    assert said in published["unclear_detail"]
    assert published["guard"].startswith("sha256:")


def test_normal_images_are_still_decided_by_the_model(buckets, deployed_env, small_model):
    inbound, _, topic = buckets
    deployed_env(backend="onnx", model=str(small_model), input_guard=guard_beside(str(small_model)))
    predict = make_function("predict_image", "cloudevent")
    for index, defect in enumerate((None, "crack", "blowhole", None)):
        assert (
            deliver(predict, inbound, f"line-1/normal-{index}.jpeg", image_bytes(defect=defect)).status_code
            == 200
        )
    published = [json.loads(m.data) for m in topic.read(expect=4)]
    assert len(published) == 4 and all(p["unclear_reason"] == "" for p in published)
