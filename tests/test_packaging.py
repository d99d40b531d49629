"""Deployables: named by content hash, and complete enough to import in a clean interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from infra import packaging
from infra.project import DEFAULT_SERVICE_FILES
from inspection.settings import MoveSettings, PredictSettings, ReviewSettings, SweepSettings


def test_the_same_source_gives_the_same_object_name():
    first = packaging.content_name("predict", packaging.build_zip(packaging.function_files("predict")))
    again = packaging.content_name("predict", packaging.build_zip(packaging.function_files("predict")))
    assert first == again and first.startswith("predict-") and first.endswith(".zip")


def test_a_changed_source_gives_a_new_object_name(tmp_path):
    files = packaging.function_files("move")
    before = packaging.content_name("move", packaging.build_zip(files))
    changed = tmp_path / "main.py"
    changed.write_bytes(files[0][0].read_bytes() + b"\n# changed\n")
    after = packaging.content_name("move", packaging.build_zip([(changed, "main.py"), *files[1:]]))
    assert before != after


def test_the_object_names_the_program_uploads_are_the_content_hashes(day_zero):
    resources = day_zero[0].resources
    uploaded = {
        r["inputs"]["name"] for r in resources if r["type"] == "gcp:storage/bucketObject:BucketObject"
    }
    default_service = [(p, p.name) for p in sorted(DEFAULT_SERVICE_FILES.iterdir()) if p.is_file()]
    expected = {
        packaging.content_name("predict", packaging.build_zip(packaging.function_files("predict", ()))),
        packaging.content_name("move", packaging.build_zip(packaging.function_files("move"))),
        packaging.content_name("sweep", packaging.build_zip(packaging.function_files("sweep", ()))),
        packaging.content_name("appengine-review-app", packaging.build_zip(packaging.review_app_files())),
        packaging.content_name("appengine-default", packaging.build_zip(default_service)),
    }
    assert uploaded == expected


@pytest.mark.parametrize(
    ("served", "ships", "leaves_out"),
    [
        ((), set(), {"onnxruntime", "ai-edge-litert"}),
        (("vertex",), set(), {"onnxruntime", "ai-edge-litert"}),
        (("onnx",), {"onnxruntime"}, {"ai-edge-litert"}),
        (("tflite",), {"ai-edge-litert"}, {"onnxruntime"}),
        (("tflite", "anomaly"), {"ai-edge-litert", "onnxruntime"}, set()),  # a second opinion beside it
    ],
)
def test_predict_ships_only_its_backends_runtime(served, ships, leaves_out):
    """The backend registry says what each backend needs (inspection/backends.py); a day-zero predict
    does not carry onnxruntime's 20 MB into every cold start."""
    files = dict((arcname, path) for path, arcname in packaging.function_files("predict", served))
    pins = {
        line.split("==")[0] for line in files["requirements.txt"].read_text().splitlines() if "==" in line
    }
    assert ships <= pins and not (leaves_out & pins)
    # and the code of exactly the backends it serves (each in its own module: inspection/model/)
    modules = {"vertex": "vertex", "onnx": "onnx_model", "tflite": "tflite"}
    for backend, module in modules.items():
        assert (f"inspection/model/{module}.py" in files) == (backend in served), (backend, served)
    # the anomaly model's module always: predict draws the maps with it
    assert {
        "inspection/model/classifiers.py",
        "inspection/model/__init__.py",
        "inspection/model/anomaly.py",
    } <= set(files)


PREDICT = {
    "predictions_topic": "projects/p/topics/t",
    "prediction_bucket": "b",
    "inbound_bucket": "i",
    "backend": "none",
}
ENV = {  # the smallest valid environment of each deployable, as the Pulumi program writes it
    "predict": PredictSettings.environment(**PREDICT),
    "move": MoveSettings.environment(
        prediction_bucket="b", threshold=0.9, dead_letter_topic="projects/p/topics/d", inbound_bucket="i"
    ),
    "sweep": SweepSettings.environment(**PREDICT, held_subscription="projects/p/subscriptions/h"),
    "review-app": ReviewSettings.environment(
        prediction_bucket="b", iap_audience="/projects/1/apps/p", records="bigquery:p.d", role="review"
    ),
}


@pytest.mark.parametrize(
    ("kind", "files", "check"),
    [
        ("predict", packaging.function_files("predict"), "main.predict_image"),
        ("move", packaging.function_files("move"), "main.move_image"),
        ("sweep", packaging.function_files("sweep"), "main.sweep"),
        ("review-app", packaging.review_app_files(), "main.app.url_map"),
    ],
)
def test_each_zip_imports_its_entrypoint_in_a_clean_interpreter(tmp_path, kind, files, check):
    with zipfile.ZipFile(__import__("io").BytesIO(packaging.build_zip(files))) as archive:
        archive.extractall(tmp_path)
        listed = archive.namelist()
    assert "requirements.txt" in listed and "main.py" in listed and "inspection/__init__.py" in listed
    assert not [n for n in listed if "__pycache__" in n or n.endswith((".json", ".pem", ".key"))]
    # The libraries a zip's requirements leave out must not be needed: block them.
    shipped = (tmp_path / "requirements.txt").read_text()
    heavy = {"PIL": "pillow", "numpy": "numpy", "onnxruntime": "onnxruntime"}
    blocked = sorted(module for module, pin in heavy.items() if pin not in shipped)
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); "
        "import main, inspection; "
        f"assert main.__file__.startswith({str(tmp_path)!r}), main.__file__; "
        f"assert inspection.__file__.startswith({str(tmp_path)!r}), inspection.__file__; "
        f"{check}; print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STORAGE_EMULATOR_HOST")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**env, **ENV[kind]}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_move_ships_neither_the_classifiers_nor_their_libraries():
    """Move never imports onnxruntime, numpy or Pillow, so it neither ships nor builds them."""
    files = dict((arcname, path) for path, arcname in packaging.function_files("move"))
    assert "inspection/model/classifiers.py" not in files and "inspection/model/images.py" not in files
    assert "inspection/predicting.py" not in files and "review_app" not in " ".join(files)
    pins = files["requirements.txt"].read_text()
    for heavy in ("onnxruntime", "numpy", "pillow"):
        assert heavy not in pins
    predict = dict((arcname, path) for path, arcname in packaging.function_files("predict"))
    # predict sets files aside through move's own core (moving.set_aside), and nothing of the review app
    assert "onnxruntime" in predict["requirements.txt"].read_text() and "inspection/moving.py" in predict
    assert "review_app" not in " ".join(predict)
