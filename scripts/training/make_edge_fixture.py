"""Write the small TF Lite models the tests run: shaped like a Vertex AI AutoML Edge image
classification export (`[1,224,224,3]` image in, one score per class out, `dict.txt` beside).

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tfvenv/bin/python scripts/training/make_edge_fixture.py tests/fixtures/edge

TensorFlow is needed here only: it is neither a runtime nor a test dependency. The models are not
trained; their last layer is set so that a mid-grey image scores "Defect" high, which is all the
tests need. The output folder gets `quantized/` (uint8 in and out, as AutoML Edge's quantized
exports) and `float/` (float32 in [0, 1] and out).
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


def main(out: str) -> None:
    quantized = tf.lite.TFLiteConverter.from_keras_model(model(scaled_input=True))
    quantized.optimizations = [tf.lite.Optimize.DEFAULT]
    quantized.representative_dataset = representative
    quantized.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    quantized.inference_input_type = tf.uint8
    quantized.inference_output_type = tf.uint8
    write(Path(out) / "quantized", quantized.convert())
    write(Path(out) / "float", tf.lite.TFLiteConverter.from_keras_model(model(scaled_input=False)).convert())


if __name__ == "__main__":
    main(sys.argv[1])
