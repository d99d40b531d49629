"""Benchmarks: `make bench` prints each figure and writes them all to bench/results.json."""

from inspection.settings import MoveSettings, PredictSettings, ReviewSettings, SweepSettings

# The smallest valid environment of each entrypoint (settings are validated at import).
# The packaging test imports the built zips with it too.
ENTRYPOINT_ENV = {
    "predict": PredictSettings.environment(
        predictions_topic="projects/p/topics/t",
        prediction_bucket="b",
        inbound_bucket="i",
        backend="vertex",
        model="projects/p/locations/europe-west4/endpoints/1",
        input_guard="none",  # importing reads no guard; opening the model does (bench/backends.py)
    ),
    "move": MoveSettings.environment(
        prediction_bucket="b", threshold=0.9, dead_letter_topic="projects/p/topics/d", inbound_bucket="i"
    ),
    "sweep": SweepSettings.environment(
        predictions_topic="projects/p/topics/t",
        prediction_bucket="b",
        backend="none",
        inbound_bucket="i",
        held_subscription="projects/p/subscriptions/held",
    ),
    "review_app": ReviewSettings.environment(
        prediction_bucket="b",
        auth_mode="iap",
        iap_audience="/projects/1/apps/p",
        records="bigquery:p.d",
        role="review",
    ),
}
