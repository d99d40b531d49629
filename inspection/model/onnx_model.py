"""The `onnx` backend: a self-describing ONNX model run with onnxruntime on the CPU."""

from __future__ import annotations

import json
import os

from inspection import backends
from inspection.errors import ConfigError
from inspection.model.card import ModelCard
from inspection.model.classifiers import Classification
from inspection.model.files import local_model_path
from inspection.model.images import LoadedImage


class OnnxClassifier:
    """A self-describing ONNX model (see scripts/training/train_local.py) run on the CPU."""

    @classmethod
    def open(cls, location: str, opening: backends.Opening) -> OnnxClassifier:
        return cls(local_model_path(location))

    def __init__(self, path: str):
        import onnxruntime

        from inspection.model import features

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # features dominate; more threads only add contention
        self._session = onnxruntime.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        meta = self._session.get_modelmeta().custom_metadata_map
        try:
            self.labels = json.loads(meta["labels"])
            version = meta["preprocessing"]
        except KeyError as exc:
            raise ConfigError(f"ONNX_MODEL {path} lacks metadata {exc}; export it with train_local") from exc
        if version != features.PREPROCESSING_VERSION:
            raise ConfigError(
                f"ONNX_MODEL {path} needs preprocessing {version!r}; "
                f"this code has {features.PREPROCESSING_VERSION!r}"
            )
        self.model = meta.get("model_name", os.path.basename(path))
        self.card = ModelCard.parse(meta["card"], f"in {path}") if "card" in meta else None
        self._input = self._session.get_inputs()[0].name
        self._features = features.extract

    def probabilities(self, rows):
        """Class probabilities for a batch of feature rows."""
        outputs = self._session.run(None, {self._input: rows})
        return outputs[1]

    def classify(self, image: LoadedImage) -> Classification:
        row = self._features(image.image)[None, :]
        probabilities = self.probabilities(row)[0]
        return Classification(
            {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)},
            self.model,
        )
