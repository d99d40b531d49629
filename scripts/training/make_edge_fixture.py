"""Write the small TF Lite models (and the preprocessing reference) the tests run, in the layout a
Vertex AI AutoML Edge TF Lite export has: one `model.tflite`, its labels and normalisation packed
inside it as TF Lite metadata, no `dict.txt`
(https://cloud.google.com/vertex-ai/docs/export/export-edge-model, "Output files").

Three steps, each in its own throwaway environment (neither TensorFlow nor tflite-support is a
runtime or test dependency, and they cannot share one: tflite-support pins protobuf < 4):

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfvenv/bin/python scripts/training/make_edge_fixture.py bare /tmp/edge-bare
    /tmp/tfvenv/bin/python scripts/training/make_edge_fixture.py preprocessing tests/fixtures/edge
    /tmp/tfvenv/bin/python scripts/training/make_edge_fixture.py bare /tmp/edge-bench --mobilenet

    python3 -m venv /tmp/tflsvenv && /tmp/tflsvenv/bin/pip install tflite-support==0.4.4
    /tmp/tflsvenv/bin/python scripts/training/make_edge_fixture.py metadata /tmp/edge-bare tests/fixtures/edge
    /tmp/tflsvenv/bin/python scripts/training/make_edge_fixture.py metadata /tmp/edge-bench bench/models

`bare` writes untrained models whose last layer makes a mid-grey image score "Defect" high, which
is all the tests need: `quantized/` (uint8 in and out, as AutoML Edge's quantized exports) and
`float/` (float32 in, expecting pixels in [0, 1]); with --mobilenet, `edge-mobilenet/`, a uint8
MobileNetV2 the size of a real Edge export, for `make bench`. `metadata` packs the labels and the
input normalisation into each model with tflite-support's ImageClassifierWriter, the writer Google's
TF Lite tooling uses, and also keeps the two legacy layouts the tests need: `legacy/` (a bare
quantized model with `dict.txt` beside it, as AutoML Vision exported) and `float-unnormalised/` (a
bare float model: its normalisation is unknown, so predict must refuse it). `preprocessing` writes
`preprocessing.npz`: images, and what TensorFlow's `tf.image.resize` (bilinear, as Google's Edge
sample notebook resizes) and a cast to uint8 make of them at 224 x 224.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

LABELS = ("Defect", "Ok")  # the order of the model's outputs
SIZE = 224
# The float fixture expects pixels in [0, 1]: (pixel - 0) / 255.
FLOAT_MEAN, FLOAT_STD = 0.0, 255.0


def bare(out: Path, bench: bool) -> None:
    import numpy as np
    import tensorflow as tf

    def model(scaled_input: bool):
        inputs = tf.keras.Input(shape=(SIZE, SIZE, 3), batch_size=1)
        x = tf.keras.layers.Rescaling(1 / 255.0)(inputs) if scaled_input else inputs
        x = tf.keras.layers.GlobalAveragePooling2D()(x)
        dense = tf.keras.layers.Dense(len(LABELS))
        outputs = tf.keras.layers.Softmax()(dense(x))
        built = tf.keras.Model(inputs, outputs)
        dense.set_weights(
            [np.array([[2.0, -2.0]] * 3, dtype=np.float32), np.array([1.0, -1.0], dtype=np.float32)]
        )
        return built

    def mobilenet():
        base = tf.keras.applications.MobileNetV2(
            input_shape=(SIZE, SIZE, 3), alpha=1.0, include_top=False, weights=None, pooling="avg"
        )
        inputs = tf.keras.Input(shape=(SIZE, SIZE, 3), batch_size=1)
        x = tf.keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
        return tf.keras.Model(inputs, tf.keras.layers.Dense(len(LABELS), activation="softmax")(base(x)))

    def representative():
        rng = np.random.default_rng(7)
        for _ in range(20):
            yield [rng.integers(0, 256, size=(1, SIZE, SIZE, 3)).astype(np.float32)]

    def quantized_uint8(built) -> bytes:
        converter = tf.lite.TFLiteConverter.from_keras_model(built)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
        return converter.convert()

    def write(folder: Path, content: bytes) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.tflite").write_bytes(content)
        (folder / "dict.txt").write_text("\n".join(LABELS) + "\n")

    if bench:
        write(out / "edge-mobilenet", quantized_uint8(mobilenet()))
        return
    write(out / "quantized", quantized_uint8(model(scaled_input=True)))
    write(out / "float", tf.lite.TFLiteConverter.from_keras_model(model(scaled_input=False)).convert())


def metadata(bare_folder: Path, out: Path) -> None:
    from tflite_support.metadata_writers import image_classifier, writer_utils

    for name in ("quantized", "float", "edge-mobilenet"):
        source = bare_folder / name
        if not source.is_dir():
            continue
        mean, std = (FLOAT_MEAN, FLOAT_STD) if name == "float" else (0.0, 1.0)
        writer = image_classifier.MetadataWriter.create_for_inference(
            writer_utils.load_file(str(source / "model.tflite")), [mean], [std], [str(source / "dict.txt")]
        )
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.iterdir():
            stale.unlink()
        writer_utils.save_file(writer.populate(), str(target / "model.tflite"))
    if (bare_folder / "quantized").is_dir():
        for legacy, source in (("legacy", "quantized"), ("float-unnormalised", "float")):
            target = out / legacy
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(bare_folder / source / "model.tflite", target / "model.tflite")
            if legacy == "legacy":
                shutil.copy(bare_folder / source / "dict.txt", target / "dict.txt")


def preprocessing(out: Path) -> None:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(3)
    images = {}
    for height, width in ((300, 400), (97, 131)):  # one shrunk, one enlarged
        y, x = np.mgrid[0:height, 0:width]
        smooth = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 11.0)
        noisy = smooth[..., None] + rng.normal(0, 6, (height, width, 3))
        images[f"{height}x{width}"] = np.clip(noisy, 0, 255).astype(np.uint8)
    resized = {
        name: tf.cast(tf.image.resize(tf.constant(image), [SIZE, SIZE]), tf.uint8).numpy()
        for name, image in images.items()
    }
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / "preprocessing.npz",
        **{f"in_{k}": v for k, v in images.items()},
        **{f"tf_{k}": v for k, v in resized.items()},
    )


if __name__ == "__main__":
    step, *rest = sys.argv[1:]
    if step == "bare":
        bare(Path(rest[0]), bench="--mobilenet" in rest[1:])
    elif step == "metadata":
        metadata(Path(rest[0]), Path(rest[1]))
    elif step == "preprocessing":
        preprocessing(Path(rest[0]))
    else:
        raise SystemExit(__doc__)
