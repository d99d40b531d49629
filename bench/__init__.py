"""Benchmarks: `make bench` prints each figure and writes them all to bench/results.json."""

# The smallest valid environment of each entrypoint (settings are validated at import).
# The packaging test imports the built zips with it too.
ENTRYPOINT_ENV = {
    "predict": {
        "PREDICTIONS_TOPIC": "projects/p/topics/t",
        "PREDICTION_BUCKET": "b",
        "CLASSIFIER_BACKEND": "vertex",
        "VERTEX_ENDPOINT": "projects/p/locations/europe-west4/endpoints/1",
    },
    "move": {
        "PREDICTION_BUCKET": "b",
        "PREDICTION_THRESHOLD": "0.9",
        "DEAD_LETTER_TOPIC": "projects/p/topics/d",
        "INBOUND_BUCKET": "i",
    },
    "sweep": {
        "PREDICTIONS_TOPIC": "projects/p/topics/t",
        "PREDICTION_BUCKET": "b",
        "CLASSIFIER_BACKEND": "none",
        "INBOUND_BUCKET": "i",
        "HELD_SUBSCRIPTION": "projects/p/subscriptions/held",
    },
    "review_app": {"PREDICTION_BUCKET": "b", "REVIEW_AUTH": "iap", "IAP_AUDIENCE": "/projects/1/apps/p"},
}
