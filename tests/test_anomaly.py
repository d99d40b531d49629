"""A new line's first week (issue 25): a model fitted from good photos alone, served by predict's
`anomaly` backend, and an anomalib ONNX export run unchanged through the same backend.

The anomalib fixture has exactly the export's contract (input `input`, N × 3 × H × W RGB in [0, 1];
outputs `pred_score`, `pred_label`, `anomaly_map`, `pred_mask`, normalised so that 0.5 is the
threshold: anomalib's export_mixin.py and InferenceBatch), with a trivial graph inside."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from cloudevents.conversion import to_binary
from PIL import Image, ImageDraw

from inspection import backends, layout, predicting
from inspection.backends import guard_beside
from inspection.errors import ConfigError
from inspection.labels import LabelMap
from inspection.messages import Prediction
from inspection.model import anomaly, classifiers, guard, images
from scripts.local.vertex import VertexStandIn
from scripts.training import (
    anomalib_fixture,
    metrics,
    sample_data,
    train_anomaly,
    train_local,
)
from scripts.training import second_opinion as faint
from tests.helpers import make_function, storage_event


@pytest.fixture(scope="module")
def sample(anomaly_sample):
    return anomaly_sample[0]


@pytest.fixture(scope="module")
def fitted(anomaly_sample):
    _, out, result = anomaly_sample
    return out, result


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def good_part(seed: int = 3) -> Image.Image:
    return sample_data.draw_part(np.random.default_rng([99, seed]), None, False)


def test_a_model_of_good_parts_tells_defects_from_good_parts(sample, fitted):
    out, result = fitted
    assert result["photos"] == 60 and result["held_out"] == 12
    assert out.stat().st_size <= 20 * 1024 * 1024
    auroc = train_anomaly.auroc(str(out), sample / "test")
    assert auroc >= 0.95, auroc
    # calibrated on held-out good photos: those sit below the edge of normal
    assert result["held_out_scores"]["max"] < 0.5


def test_the_sample_keeps_each_defects_mask_and_the_map_points_into_it(sample, fitted):
    """Issue 25: localisation is measured against masks the generator writes with the photos
    (MVTec AD's ground_truth/ layout), with predict's own backend."""
    defects = sorted((sample / "test" / "def_front").iterdir())
    masks = [sample_data.mask_path(p) for p in defects]
    assert all(m.exists() and np.asarray(Image.open(m)).max() == 255 for m in masks)
    assert not any(sample_data.mask_path(p).exists() for p in (sample / "test" / "ok_front").iterdir())
    hits, total = train_anomaly.localisation(str(fitted[0]), sample / "test")
    assert total == len(defects) == 40
    assert hits / total >= 0.8, (hits, total)


def test_evaluate_judges_it_by_predicts_code_auroc_and_the_threshold_sweep(sample, fitted, capsys):
    """Issue 25: `evaluate --anomaly` scores every photo through predict's own assessment and prints
    the image AUROC beside the sweep's defects passed as ok."""
    from scripts.training import evaluate

    evaluate.main(["--anomaly", str(fitted[0]), "--folder", str(sample), "--split", "test"])
    printed = capsys.readouterr().out
    auroc = float(
        re.search(r"image AUROC \(the defect score, whatever the threshold\): ([0-9.]+)", printed)[1]
    )
    assert auroc == pytest.approx(train_anomaly.auroc(str(fitted[0]), sample / "test"), abs=1e-4)
    assert auroc >= 0.95 and "defects passed as ok" in printed


def test_predict_serves_it_through_the_backend_registry_with_its_card(fitted):
    out, _ = fitted
    classifier = backends.get("anomaly").open(str(out))
    good = predicting.assess(
        images.load(jpeg(good_part())), classifier, LabelMap.parse("defect=defect,ok=ok", "LABEL_MAP")
    )
    assert good.label == "ok" and good.score > 0.5 and good.unclear_reason == ""
    assert classifier.card is not None and classifier.card.preprocessing == anomaly.METHOD
    written = guard.load(guard_beside(str(out)))
    assert set(written.ranges) == set(guard.MEASURES), "the good photos make its input guard"


def test_the_heatmap_points_at_the_defect(fitted):
    out, _ = fitted
    classifier = backends.get("anomaly").open(str(out))
    part = good_part(5).convert("L")
    spot = (200, 110)  # on the part, away from its centre: a blowhole
    ImageDraw.Draw(part).ellipse((spot[0] - 6, spot[1] - 6, spot[0] + 6, spot[1] + 6), fill=20)

    result = classifier.classify(images.load(jpeg(part)))

    assert result.confidences["defect"] > 0.5
    heat = result.anomaly.heat
    row, col = np.unravel_index(np.argmax(heat), heat.shape)
    cell = part.size[0] / heat.shape[0]
    assert abs((col + 0.5) * cell - spot[0]) <= 12 and abs((row + 0.5) * cell - spot[1]) <= 12


def test_a_moved_camera_goes_to_a_person_whatever_the_score(fitted):
    out, _ = fitted
    classifier = classifiers.open_model("anomaly", str(out), input_guard=guard_beside(str(out)))
    moved = good_part(7).transform((300, 300), Image.Transform.AFFINE, (1, 0, 45, 0, 1, 30), fillcolor=35)

    assessed = predicting.assess(
        images.load(jpeg(moved)), classifier, LabelMap.parse("defect=defect,ok=ok", "LABEL_MAP")
    )

    assert assessed.unclear_reason == guard.UNUSUAL_INPUT
    assert "offset" in assessed.unclear_detail


def test_an_anomalib_onnx_export_runs_unchanged(tmp_path):
    export = tmp_path / "model.onnx"
    anomalib_fixture.write(export)
    classifier = backends.get("anomaly").open(str(export))
    plain = Image.new("RGB", (300, 300), (150, 150, 150))
    spotted = plain.copy()
    ImageDraw.Draw(spotted).ellipse((140, 140, 160, 160), fill=(10, 10, 10))

    calm = classifier.classify(images.load(jpeg(plain)))
    alarmed = classifier.classify(images.load(jpeg(spotted)))

    assert calm.confidences["defect"] < 0.5 < alarmed.confidences["defect"]
    assert calm.confidences["ok"] == pytest.approx(1 - calm.confidences["defect"])
    assert alarmed.anomaly.heat.shape == (64, 64)


def test_a_centre_cropped_anomalib_exports_map_lies_over_the_centre_of_the_photo(tmp_path):
    """anomalib 2.x may end the pre-processing in a centre crop (PatchCore's and CFA's
    `center_crop_size`): its map covers the centre 224 of the 256 input. Stretched over the whole
    photo it would point beside the defect; placed, it points at it."""
    export = tmp_path / "cropped.onnx"
    anomalib_fixture.write(export, size=256, crop=224)
    classifier = backends.get("anomaly").open(str(export))
    spotted = Image.new("RGB", (256, 256), (150, 150, 150))
    ImageDraw.Draw(spotted).ellipse((50, 50, 62, 62), fill=(10, 10, 10))  # off centre, inside the crop

    heat = classifier.classify(images.load(jpeg(spotted))).anomaly.heat

    assert heat.shape == (256, 256)
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert abs(row - 56) <= 8 and abs(col - 56) <= 8, "on the spot (stretched, it would be 17 px off)"
    assert heat[:16].max() == 0 and heat[:, :16].max() == 0, "the border the model never saw"


def test_an_onnx_file_without_anomalibs_outputs_is_refused_with_what_it_has(tmp_path, small_model):
    with pytest.raises(ConfigError, match=r"not an anomalib export.*pred_score"):
        backends.get("anomaly").open(str(small_model))


def test_the_stack_takes_an_anomaly_model_and_checks_its_name():
    anomaly_backend = backends.get("anomaly")
    config = {"anomalyModel": "gs://acme-qi-training/models/anomaly/model.npz"}
    assert anomaly_backend.location_from_config(config.get, "p", "r") == config["anomalyModel"]
    config["anomalyModel"] = "gs://acme-qi-training/models/anomalib/model.onnx"
    assert anomaly_backend.location_from_config(config.get, "p", "r") == config["anomalyModel"]
    config["anomalyModel"] = "gs://acme-qi-training/models/anomaly/model.tflite"
    with pytest.raises(ConfigError, match="anomalyModel"):
        anomaly_backend.location_from_config(config.get, "p", "r")


@pytest.fixture
def second_opinion(make_bucket, topic, deployed_env, fitted):
    """Predict with a Vertex endpoint that calls every part ok with 0.97 (a classifier blind to a
    kind of defect it never saw) and the fitted anomaly model beside it; then move."""
    stand_in = VertexStandIn()
    stand_in.answer = {"Ok": 0.97, "Defect": 0.03}
    inbound = make_bucket("inbound", versioned=True)
    predicted = make_bucket("prediction", versioned=True)
    deployed_env(
        prediction_bucket=predicted.name,
        predictions_topic=topic.path,
        inbound_bucket=inbound.name,
        dead_letter_topic=topic.path,
        threshold=0.9,
        backend="vertex",
        model="projects/demo/locations/europe-west4/endpoints/1234",
        vertex_api_endpoint=stand_in.url,
        second_opinion=str(fitted[0]),
        input_guard=guard_beside(str(fitted[0])),
    )
    yield inbound, predicted, topic, make_function("predict_image", "cloudevent")
    stand_in.stop()


def test_a_part_the_classifier_calls_ok_but_unlike_every_good_part_goes_to_a_person_with_its_map(
    second_opinion,
):
    """Issue 25, the second opinion: the escape the classifier would let through goes to unclear/
    as `anomalous`, with its anomaly map kept by source generation; a good part is decided ok and
    keeps no map."""
    inbound, predicted, topic, predict = second_opinion
    spotted = good_part(5).convert("L")
    ImageDraw.Draw(spotted).ellipse((194, 104, 206, 116), fill=20)
    for name, image in (("line-1/good.jpeg", good_part(4)), ("line-1/spotted.jpeg", spotted)):
        blob = inbound.blob(name)
        blob.upload_from_string(jpeg(image))
        headers, body = to_binary(storage_event(inbound.get_blob(name)))
        assert predict.post("/", headers=headers, data=body).status_code == 200
    published = {m.name: m for m in (Prediction.from_json(x.data) for x in topic.read())}

    good, escape = published["line-1/good.jpeg"], published["line-1/spotted.jpeg"]
    assert (good.label, good.unclear_reason, good.heatmap) == ("ok", "", "")
    assert (escape.label, escape.unclear_reason) == ("ok", predicting.ANOMALOUS)
    assert "edge of normal" in escape.unclear_detail
    assert escape.heatmap == layout.heatmap(inbound.name, escape.name, escape.generation)
    heat = Image.open(io.BytesIO(predicted.blob(escape.heatmap).download_as_bytes()))
    assert heat.mode == "RGBA" and np.asarray(heat)[..., 3].max() > 200
    assert [b.name for b in predicted.list_blobs(prefix=layout.HEATMAPS)] == [escape.heatmap]

    move = make_function("move_image", "http")
    envelope = {"message": {"data": base64.b64encode(escape.to_json()).decode(), "messageId": "1"}}
    assert move.post("/", json=envelope).status_code == 204
    routed = predicted.get_blob("unclear/line-1/spotted.jpeg")
    assert routed.metadata["unclear_reason"] == predicting.ANOMALOUS
    assert routed.metadata["heatmap"] == escape.heatmap


def test_the_heatmap_is_transparent_wherever_the_part_is_normal():
    quiet = np.full((64, 64), 0.45, np.float32)
    loud = quiet.copy()
    loud[10:20, 10:20] = 0.95
    alpha_quiet = np.asarray(Image.open(io.BytesIO(anomaly.heatmap_png(quiet))))[..., 3]
    alpha_loud = np.asarray(Image.open(io.BytesIO(anomaly.heatmap_png(loud))))[..., 3]
    assert alpha_quiet.max() == 0
    assert alpha_loud.max() > 200


def test_a_model_file_of_another_method_is_refused(tmp_path, fitted):
    out, _ = fitted
    with np.load(out) as found:
        arrays = {k: found[k] for k in found.files}
    meta = json.loads(str(arrays["meta"]))
    meta["method"] = "padim-resnet18"
    arrays["meta"] = np.array(json.dumps(meta))
    other = tmp_path / "other.npz"
    np.savez(other, **arrays)
    with pytest.raises(ConfigError, match="padim-resnet18"):
        anomaly.AnomalyModel.load(other)


def test_auroc_is_the_chance_a_defect_scores_above_a_good_part():
    assert metrics.auroc([False, False, True, True], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.auroc([False, True], [0.5, 0.5]) == 0.5
    assert metrics.auroc([False, False, True, True], [0.1, 0.9, 0.05, 0.2]) == 0.25  # 1 pair of 4 in order


def test_the_second_opinion_catches_most_of_the_classifiers_escapes_at_a_quarter_of_the_depth(
    anomaly_sample, tmp_path
):
    """Issue 31: with one scale, and the light and the blades left in, the anomaly model caught 2
    of the classifier's 32 escapes at a quarter depth. Alignment (light plane, blade pattern) and a
    second, finer scale make it catch most of them, while it sends few good parts to a person."""
    sample, model, _ = anomaly_sample
    classifier = tmp_path / "classifier.onnx"
    train_local.train(sample, classifier)
    found = faint.at_depth(str(classifier), str(model), faint.DEPTHS["quarter"], photos=60)
    assert found.escapes_alone >= 5, "faint enough that the classifier alone passes some"
    assert found.caught >= 0.75 * found.escapes_alone, found
    decided, sent = faint.good_parts_sent(str(classifier), str(model), photos=60)
    assert decided >= 55 and sent <= 0.05 * decided
