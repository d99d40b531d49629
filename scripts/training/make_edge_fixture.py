"""Write the small TF Lite models the tests run: shaped like a Vertex AI AutoML Edge image
classification export (`[1,224,224,3]` image in, one score per class out, `dict.txt` beside).

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfvenv/bin/python scripts/training/make_edge_fixture.py tests/fixtures/edge
    /tmp/tfvenv/bin/python scripts/training/make_edge_fixture.py bench/models --mobilenet

TensorFlow is needed here only: it is neither a runtime nor a test dependency. The models are not
trained; their last layer is set so that a mid-grey image scores "Defect" high, which is all the
tests need. The output folder gets `quantized/` (uint8 in and out, as AutoML Edge's quantized
exports) and `float/` (float32 in [0, 1] and out).

With --mobilenet it writes `edge-mobilenet/` instead: a uint8 MobileNetV2 (224 x 224, untrained),
the size and shape of the networks AutoML Edge exports, so that `make bench` measures what a real
Edge model costs per image. Its scores mean nothing; its speed is the point.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

LABELS = ("Defect", "Ok")  # the order of the model's outputs, as dict.txt lists them


def model(scaled_input: bool) -> tf.keras.Model:
    inputs = tf.keras.Input(shape=(224, 224, 3), batch_size=1)
    x = tf.keras.layers.Rescaling(1 / 255.0)(inputs) if scaled_input else inputs
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    dense = tf.keras.layers.Dense(len(LABELS))
    outputs = tf.keras.layers.Softmax()(dense(x))
    built = tf.keras.Model(inputs, outputs)
    dense.set_weights(
        [np.array([[2.0, -2.0]] * 3, dtype=np.float32), np.array([1.0, -1.0], dtype=np.float32)]
    )
    return built


def representative():
    rng = np.random.default_rng(7)
    for _ in range(20):
        yield [rng.integers(0, 256, size=(1, 224, 224, 3)).astype(np.float32)]


def write(folder: Path, content: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").write_bytes(content)
    (folder / "dict.txt").write_text("\n".join(LABELS) + "\n")


def mobilenet() -> tf.keras.Model:
    base = tf.keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None, pooling="avg"
    )
    inputs = tf.keras.Input(shape=(224, 224, 3), batch_size=1)
    x = tf.keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    outputs = tf.keras.layers.Dense(len(LABELS), activation="softmax")(base(x))
    return tf.keras.Model(inputs, outputs)


def quantized_uint8(built: tf.keras.Model) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(built)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter.convert()


def main(out: str, bench: bool = False) -> None:
    if bench:
        write(Path(out) / "edge-mobilenet", quantized_uint8(mobilenet()))
        return
    write(Path(out) / "quantized", quantized_uint8(model(scaled_input=True)))
    write(Path(out) / "float", tf.lite.TFLiteConverter.from_keras_model(model(scaled_input=False)).convert())


if __name__ == "__main__":
    main(sys.argv[1], bench="--mobilenet" in sys.argv[2:])
