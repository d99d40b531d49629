"""Issue 31: no unfamiliar photo is auto-decided, whatever the backend. Each backend is opened as
predict opens it (classifiers.open_model, behind the input guard it would serve with) and judged by
predict's own assessment and move's routing rule, on the synthetic sample's good parts and on the
photos a plant makes when something changes (scripts/training/unfamiliar.py): lighting gradients,
a spot light, a moved or zoomed camera, other backgrounds, other parts, real-photo-like variants,
blur, a failed lamp."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inspection import predicting, routing
from inspection.backends import guard_beside
from inspection.errors import ConfigError
from inspection.labels import LabelMap
from inspection.model import classifiers, guard, images
from scripts.local.vertex import VertexStandIn
from scripts.training import anomalib_fixture, sample_data, train_anomaly, train_local, unfamiliar
from scripts.training import guard as training_guard

EDGE = Path(__file__).parent / "fixtures" / "edge"
THRESHOLD = 0.9
LABELS = LabelMap.parse("Defect=defect,Ok=ok", "LABEL_MAP")


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    """A sample, a classifier and an anomaly model trained on it (each writes its guard beside it),
    and the guard scripts.training.guard fits from the same training photos for the models trained
    elsewhere (the Edge export, a Vertex endpoint, an anomalib export)."""
    root = tmp_path_factory.mktemp("unfamiliar")
    data = sample_data.generate(root / "data", train=200, test=120, seed=31)
    classifier = root / "classifier" / "model.onnx"
    classifier.parent.mkdir()
    train_local.train(data, classifier, threshold=THRESHOLD)
    anomaly = root / "anomaly" / "model.npz"
    train_anomaly.fit([str(data / "train" / "ok_front")], str(anomaly))
    elsewhere = str(root / "elsewhere.guard.json")
    assert training_guard.main([str(data / "train"), elsewhere]) == 0
    anomalib = root / "anomalib" / "model.onnx"
    anomalib.parent.mkdir()
    anomalib_fixture.write(anomalib, size=256)
    return data, classifier, anomaly, elsewhere, anomalib


@pytest.fixture(scope="module")
def vertex():
    stand_in = VertexStandIn()
    stand_in.answer = {"Ok": 0.97, "Defect": 0.03}  # confident about everything, as a model is
    yield stand_in
    stand_in.stop()


BACKENDS = ("onnx", "anomaly", "onnx + second opinion", "tflite", "vertex", "anomalib")


def served(backend: str, plant, vertex) -> classifiers.Classifier:
    _, classifier, anomaly, elsewhere, anomalib = plant
    beside = guard_beside(str(classifier))
    opened = {
        "onnx": lambda: classifiers.open_model("onnx", str(classifier), input_guard=beside),
        "anomaly": lambda: classifiers.open_model(
            "anomaly", str(anomaly), input_guard=guard_beside(str(anomaly))
        ),
        "onnx + second opinion": lambda: classifiers.open_model(
            "onnx", str(classifier), second_opinion=str(anomaly), input_guard=beside
        ),
        "tflite": lambda: classifiers.open_model(
            "tflite", str(EDGE / "quantized" / "model.tflite"), input_guard=elsewhere
        ),
        "vertex": lambda: classifiers.open_model(
            "vertex", "projects/p/locations/europe-west4/endpoints/9", vertex.url, input_guard=elsewhere
        ),
        "anomalib": lambda: classifiers.open_model("anomaly", str(anomalib), input_guard=elsewhere),
    }
    return opened[backend]()


def jpeg(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=92)
    return out.getvalue()


def routed(classifier, data: bytes) -> tuple[str | None, predicting.Assessment]:
    """At the threshold the model's card was chosen at (train_anomaly's, from good photos), as
    promote serves it; else THRESHOLD."""
    card = getattr(classifier, "card", None)
    threshold = float((card.evaluation or {}).get("threshold") or THRESHOLD) if card else THRESHOLD
    found = predicting.assess(images.load(data), classifier, LABELS)
    return routing.decided_label(found.label, found.score, found.unclear_reason, threshold), found


@pytest.fixture(scope="module")
def strangers():
    return {name: [jpeg(p) for p in pictures] for name, pictures in unfamiliar.photos(count=6).items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_unfamiliar_photo_is_auto_decided_by_any_backend(backend, plant, vertex, strangers):
    classifier = served(backend, plant, vertex)
    auto = {}
    for variant, photos in strangers.items():
        for data in photos:
            decided, found = routed(classifier, data)
            if decided is not None:
                auto.setdefault(variant, []).append(found.scores)
            else:
                assert found.unclear_reason in ("unusual_input", "anomalous"), found
    assert auto == {}, f"{backend} auto-decided unfamiliar photos: {auto}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_familiar_good_parts_still_pass_the_guard(backend, plant, vertex):
    """The guard takes at most 5% of the sample's held-out good parts from the model, whatever the
    backend; the classifier trained here still auto-decides ≥ 95% of them, all right."""
    data = plant[0]
    guarded = served(backend, plant, vertex)
    photos = [p.read_bytes() for p in sorted((data / "test" / "ok_front").glob("*.jpeg"))]
    outcomes = [routed(guarded, p) for p in photos]
    stopped = [found.unclear_detail for _, found in outcomes if found.unclear_reason == "unusual_input"]
    assert len(stopped) <= 0.05 * len(photos), stopped
    assert all(found.guard.startswith("sha256:") for _, found in outcomes), "each names its guard"
    alone = [routed(guarded.classifier, p)[0] for p in photos]
    decided = [label for label, _ in outcomes if label is not None]
    assert len(decided) >= sum(a is not None for a in alone) - 0.05 * len(photos)
    if backend == "onnx":
        assert len(decided) >= 0.95 * len(photos) and set(decided) == {"ok"}


def test_familiar_defects_are_not_mistaken_for_unfamiliar_photos(plant, vertex):
    """The guard measures the whole photo, so the defects the model learned still reach it."""
    data = plant[0]
    behind = served("onnx", plant, vertex)
    photos = sorted((data / "test" / "def_front").glob("*.jpeg"))
    stopped = [routed(behind, p.read_bytes())[1] for p in photos]
    assert sum(f.unclear_reason == "unusual_input" for f in stopped) <= 0.05 * len(photos)


def test_without_its_guard_the_same_model_auto_decides_unfamiliar_photos(plant, strangers):
    """What the guard is for: the classifier alone is confident about photos it never saw."""
    _, classifier, *_ = plant
    alone = classifiers.open_model("onnx", str(classifier))
    decided = [routed(alone, data)[0] for photos in strangers.values() for data in photos]
    assert sum(d is not None for d in decided) >= 0.25 * len(decided)


@pytest.mark.parametrize(
    ("variant", "said"),
    [
        ("gradient_left_right", "lighting gradient"),
        ("spot_light", "light"),
        ("shifted", "offset"),
        ("zoomed_out", "part's size"),
        ("out_of_focus", "sharpness"),
        ("plain_disc", "looks unlike the reference photos"),
    ],
)
def test_the_guard_says_what_differs(plant, variant, said):
    _, classifier, *_ = plant
    fitted = guard.load(guard_beside(str(classifier)))
    assert said in fitted.check(unfamiliar.VARIANTS[variant](5))


def test_a_guard_file_is_read_whole_or_refused_with_what_is_wrong(plant, tmp_path):
    _, classifier, *_ = plant
    body = json.loads(Path(guard_beside(str(classifier))).read_text())
    assert guard.InputGuard.parse(json.dumps(body), "ok").distance_limit > 0
    for broken, complaint in (
        ({**body, "guard": 2}, '"guard": 1'),
        ({**body, "method": "guard-v0"}, "measured by 'guard-v0'"),
        ({**body, "ranges": {"loudness": [0, 1]}}, "ranges.loudness is not one of"),
        ({**body, "ranges": {"brightness": [200, 10]}}, "low <= high"),
        ({**body, "profile": {"mean": [1, 2]}}, "profile"),
    ):
        with pytest.raises(ConfigError, match=r"input guard gs://m/model\.guard\.json") as error:
            guard.InputGuard.parse(json.dumps(broken), "gs://m/model.guard.json")
        assert complaint in str(error.value)


def test_a_guard_needs_photos_that_show_a_part():
    blank = [Image.new("L", (300, 300), 128) for _ in range(12)]
    with pytest.raises(ValueError, match="show a whole part"):
        guard.InputGuard.fit(blank)


def test_the_guard_reads_the_part_where_it_is_not_where_the_view_is(plant):
    """Its measures are of the part found in the photo: the same part photographed at another
    resolution passes, though every pixel count differs (the size range aside, which a camera
    change rightly trips)."""
    data, classifier, *_ = plant
    fitted = guard.load(guard_beside(str(classifier)))
    part = Image.open(sorted((data / "test" / "ok_front").glob("*.jpeg"))[0])
    described = guard.describe(part.resize((600, 600)))
    assert fitted.unusual(described).startswith("the width in pixels 600")
    assert abs(described.measures["radius"] - guard.describe(part).measures["radius"]) < 0.01
    assert np.allclose(described.profile, guard.describe(part).profile, atol=6)


def test_the_few_column_fits_answer_as_an_svd_would_and_never_fail_on_a_degenerate_design():
    """part.least_squares stands in for np.linalg.lstsq in the plane and circle fits (features,
    guard, rim): the same coefficients on the designs those fits build, and the least-norm answer,
    not an error, when the design is degenerate (every point on one line)."""
    from inspection.model import part

    rng = np.random.default_rng(7)
    yy, xx = part.grid(64)
    inside = rng.random((64, 64)) < 0.6
    design = np.stack([xx[inside] - 32, yy[inside] - 32, np.ones(int(inside.sum()), np.float32)], 1)
    values = (0.4 * design[:, 0] - 0.2 * design[:, 1] + 7 + rng.normal(0, 3, len(design))).astype(np.float32)
    expected = np.linalg.lstsq(design.astype(np.float64), values.astype(np.float64), rcond=None)[0]
    assert np.allclose(part.least_squares(design, values), expected, rtol=1e-9, atol=1e-9)

    on_a_line = np.stack([np.arange(10.0), np.arange(10.0), np.ones(10)], 1)
    degenerate = part.least_squares(on_a_line, np.arange(10.0) * 2)
    assert np.allclose(on_a_line @ degenerate, np.arange(10.0) * 2)
