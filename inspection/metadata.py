"""The metadata keys of routed and decided images: one name each, for the pipeline, the review app,
the report and the training scripts (docs/pipeline.md, "The folders of the prediction bucket")."""

# What the model said, and when it was routed (move).
PREDICTED_LABEL = "predicted_label"
PREDICTED_SCORE = "predicted_score"
PREDICTED_SCORES = "predicted_scores"
MODEL = "model"
PREDICTED_AT = "predicted_at"
THRESHOLD = "threshold"
ROUTED_AT = "routed_at"
UNCLEAR_REASON = "unclear_reason"
UNCLEAR_DETAIL = "unclear_detail"  # for unusual_input: the measure that fell outside the training range
HEATMAP = "heatmap"  # the anomaly map's object in the prediction bucket (layout.heatmap)
INPUT_GUARD = "input_guard"  # the input guard that checked the photo (messages.Prediction.guard)
# Why a file was quarantined (predict).
REJECTED_REASON = "rejected_reason"
REJECTED_DETAIL = "rejected_detail"
REJECTED_AT = "rejected_at"
ORIGINAL_NAME = "original_name"
# Where it came from.
SOURCE_BUCKET = "source_bucket"
SOURCE_NAME = "source_name"  # the inbound object name, whatever the image is called later
SOURCE_GENERATION = "source_generation"
COPIED_FROM = "copied_from"  # gs://bucket/name#generation: the exact object a copy was made of
# What a person decided (review app).
REVIEWER = "reviewer"
DECIDED_AT = "decided_at"
HUMAN_LABEL = "human_label"
MODEL_LABEL = "model_label"
MODEL_SCORE = "model_score"
DECISION_KEYS = (REVIEWER, DECIDED_AT, HUMAN_LABEL, MODEL_LABEL, MODEL_SCORE, COPIED_FROM)
