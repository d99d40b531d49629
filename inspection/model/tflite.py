"""The `tflite` backend: a Vertex AI AutoML Edge model exported as TF Lite, run with LiteRT."""

from __future__ import annotations

import os
from pathlib import Path

from inspection import backends
from inspection.errors import ConfigError
from inspection.model.card import ModelCard
from inspection.model.classifiers import CARD_FILE, LABELS_FILE, Classification
from inspection.model.files import local_model_path
from inspection.model.images import LoadedImage


class TfliteClassifier:
    """A Vertex AI AutoML Edge image model exported as TF Lite, run with LiteRT (no TensorFlow).

    The export is one `model.tflite` that carries its labels and its input normalisation as TF Lite
    metadata (inspection/model/tflite_metadata.py); a `dict.txt` beside the model is read only for legacy
    AutoML Vision exports that have no labels inside. A `card.json` beside it is the model card.

    The image is prepared as Google's own Edge pipeline prepares it: 8-bit RGB, resized to the
    model's input with TensorFlow's bilinear resize, cast to uint8 (images.resize_bilinear). A
    quantized (uint8) model takes those pixels as they are and gives scores to dequantize with the
    output's scale and zero point; a float model takes them normalised as its metadata says, and a
    float model that does not say is refused, never guessed.
    """

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> TfliteClassifier:
        return cls(local_model_path(location, (CARD_FILE, LABELS_FILE)))

    def __init__(self, path: str):
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter

        from inspection.model import tflite_metadata

        with open(path, "rb") as file:
            content = file.read()
        folder = os.path.dirname(path)
        carried = tflite_metadata.read(content)
        self.labels = list(carried.labels) or _legacy_labels(folder, path)
        card = os.path.join(folder, CARD_FILE)
        self.card = ModelCard.parse(Path(card).read_bytes(), card) if os.path.exists(card) else None
        self._interpreter = Interpreter(model_content=content, num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        _, self._height, self._width, channels = self._input["shape"]
        if channels != 3 or int(self._output["shape"][-1]) != len(self.labels):
            raise ConfigError(
                f"TFLITE_MODEL {path}: expected [1,H,W,3] in and one score per label out "
                f"({len(self.labels)} labels); found {list(self._input['shape'])} in and "
                f"{list(self._output['shape'])} out"
            )
        self._normalise = None
        if self._input["dtype"] != np.uint8:
            if carried.mean is None or carried.std is None or not all(carried.std):
                raise ConfigError(
                    f"TFLITE_MODEL {path}: a float model whose input normalisation is unknown "
                    "(its TF Lite metadata has no NormalizationOptions); "
                    "re-export it from Vertex AI, whose exports carry it"
                )
            self._normalise = (
                np.asarray(carried.mean, dtype=np.float32),
                np.asarray(carried.std, dtype=np.float32),
            )
        self.model = self.card.model if self.card and self.card.model else os.path.basename(folder) or path

    def tensor(self, image: LoadedImage):
        """The model's input for `image`."""
        import numpy as np

        from inspection.model.images import resize_bilinear, rgb

        pixels = np.asarray(rgb(image.image))
        resized = resize_bilinear(pixels, int(self._height), int(self._width))
        tensor = np.clip(resized, 0, 255, out=resized).astype(np.uint8)  # as tf.cast truncates
        if self._normalise is not None:
            mean, std = self._normalise
            tensor = ((tensor.astype(np.float32) - mean) / std).astype(self._input["dtype"])
        return tensor[None, ...]

    def classify(self, image: LoadedImage) -> Classification:
        import numpy as np

        self._interpreter.set_tensor(self._input["index"], self.tensor(image))
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output["index"])[0]
        scale, zero_point = self._output.get("quantization", (0.0, 0))
        scores = (raw.astype(np.float32) - zero_point) * scale if scale else raw.astype(np.float32)
        total = float(scores.sum())
        if total > 0:
            scores = scores / total
        return Classification(
            {label: float(s) for label, s in zip(self.labels, scores, strict=True)}, self.model
        )


def _legacy_labels(folder: str, path: str) -> list[str]:
    """An AutoML Vision export's dict.txt beside the model; only for models with no labels inside."""
    try:
        with open(os.path.join(folder, LABELS_FILE)) as file:
            return [line.strip() for line in file if line.strip()]
    except FileNotFoundError:
        raise ConfigError(
            f"TFLITE_MODEL {path} carries no labels: its TF Lite metadata has none, and there is no "
            f"{LABELS_FILE} beside it (legacy exports)"
        ) from None
