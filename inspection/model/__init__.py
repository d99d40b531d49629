"""The model layer: everything that turns a photo into scores.

- images.py: decoding and checking an upload, and the pixels a model sees;
- features.py: the local classifier's features;
- card.py: a model's card (labels, preprocessing, evaluation, the ranges of its training images);
- classifiers.py: what every backend shares, and `open_model`, the one way to open one;
- one module per backend: vertex.py, onnx_model.py, tflite.py (with tflite_metadata.py, an Edge
  export's labels and normalisation), anomaly.py (a model of good parts, or an anomalib export).

The pipeline (inspection/predicting.py) uses it; nothing here knows about buckets or messages,
except that a model may be read from a gs:// location.
"""
