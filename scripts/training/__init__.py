"""Training wing: data preparation, training on Vertex AI or locally, evaluation, the learning loop."""
