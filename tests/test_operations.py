"""Operations: the declared metrics read the lines the real handlers write, and the alert policies
and the dashboard refer only to metrics that exist."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
from cloudevents.conversion import to_binary

from infra import monitoring
from infra import records as records_infra
from inspection import predicting, publishing
from inspection.messages import Prediction
from review_app import create_app
from scripts.program.mocks import dev_config, run_program
from tests.helpers import image_bytes, logged, make_function, storage_event
from tests.logging_query import matches
from tests.review_helpers import Reviewer

PREFIX = "acme-qi"
HELD = "projects/local/subscriptions/ops-held"


def entry(line: dict, emitted_by: str) -> dict:
    """A log entry as Cloud Logging stores a JSON line from `emitted_by` (a function or the app)."""
    if emitted_by == "review-app":
        resource = {"type": monitoring.APP, "labels": {"module_id": f"{PREFIX}-review"}}
    else:
        resource = {"type": monitoring.FUNCTION, "labels": {"service_name": f"{PREFIX}-{emitted_by}"}}
    return {"resource": resource, "severity": line["severity"], "jsonPayload": line}


@pytest.fixture
def emitted(deployed_env, make_bucket, topic, caplog):
    """Log entries from one pass through every handler: predict, move, the sweep and the review app."""
    inbound, predicted = make_bucket("inbound", versioned=True), make_bucket("prediction", versioned=True)
    deployed_env.pipeline(inbound, predicted, topic, held_subscription=HELD, redrive_after_s=1)
    entries = []

    def collect(emitted_by: str) -> None:
        entries.extend(entry(line, emitted_by) for line in logged(caplog))
        caplog.clear()

    predict = make_function("predict_image", "cloudevent")
    for name, data in (("line-1/part-1.jpeg", image_bytes()), ("line-1/notes.txt", b"not an image")):
        blob = inbound.blob(name)
        blob.upload_from_string(data)
        headers, body = to_binary(storage_event(blob))
        predict.post("/", headers=headers, data=body)
    collect("predict")
    move = make_function("move_image", "http")
    [message] = topic.read()
    move.post("/", json={"message": {"data": base64.b64encode(message.data).decode(), "messageId": "1"}})
    move.post("/", json={"message": {"data": 123}})
    # As predict publishes a part its classifier calls ok and its anomaly model does not.
    second = inbound.blob("line-1/part-2.jpeg")
    second.upload_from_string(image_bytes())
    anomalous = Prediction(
        bucket=inbound.name,
        name=second.name,
        generation=second.generation,
        label="ok",
        score=0.97,
        scores={"ok": 0.97, "defect": 0.03},
        model="model.onnx",
        predicted_at="2026-11-29T10:00:00+00:00",
        unclear_reason=predicting.ANOMALOUS,
        unclear_detail="the anomaly model scores it 0.81; 0.5 is the edge of normal",
    )
    move.post(
        "/", json={"message": {"data": base64.b64encode(anomalous.to_json()).decode(), "messageId": "2"}}
    )
    topic.read()
    collect("move")

    inbound.blob("line-2/stranded.jpeg").upload_from_string(image_bytes())
    forwarded = publishing.Held(
        message.data, {"CloudPubSubDeadLetterSourceDeliveryCount": "5"}, lambda: None, lambda: None
    )
    publishing.register_local_held(HELD, lambda limit: [forwarded])
    time.sleep(1.1)
    make_function("sweep", "http").post("/")
    publishing.unregister_local(HELD)
    collect("sweep")

    app = create_app({"PREDICTION_BUCKET": predicted.name, "REVIEW_AUTH": "local"})
    reviewer = Reviewer(app.test_client())
    item = reviewer.next()
    assert reviewer.decide(item, "defect").status_code == 200
    collect("review-app")
    return entries


def test_every_declared_metric_reads_real_log_lines_and_finds_its_fields(emitted):
    """A metric whose filter selects nothing, or whose label or value field is missing, would chart
    and alert on nothing: renaming a log field breaks this test."""
    for metric in monitoring.METRICS:
        selected = [e for e in emitted if matches(metric.filter(PREFIX), e)]
        assert selected, f"{metric.key}: its filter selects none of the lines the handlers write"
        for e in selected:
            payload = e["jsonPayload"]
            for label, path in metric.labels.items():
                assert payload.get(path) not in (None, ""), f"{metric.key}: label {label} finds no {path}"
            if metric.value:
                assert isinstance(payload.get(metric.value), (int, float)), f"{metric.key}: {metric.value}"


def test_a_filter_selects_only_its_own_deployable(emitted):
    routed = monitoring.BY_KEY["routed"].filter(PREFIX)
    assert [e["jsonPayload"]["message"] for e in emitted if matches(routed, e)] == ["routed", "routed"]
    moved_elsewhere = [
        {**e, "resource": {"type": monitoring.FUNCTION, "labels": {"service_name": "other"}}} for e in emitted
    ]
    assert not [e for e in moved_elsewhere if matches(routed, e)]


def test_the_records_sink_takes_exactly_the_record_lines_of_this_stack(emitted):
    """The Logging sink (infra/records.py) delivers every outcome line, and only those, of this
    stack's functions and review service; another stack's lines stay out (issue 24)."""
    sink = records_infra.record_filter(PREFIX, monitoring.FUNCTIONS, (f"{PREFIX}-review",))
    taken = [e["jsonPayload"] for e in emitted if matches(sink, e)]
    assert sorted({line["event"] for line in taken}) == ["decided", "rejected", "routed"]
    assert all(line.get("record") == 1 for line in taken)
    assert [e for e in emitted if e["jsonPayload"].get("record") and not matches(sink, e)] == []
    other_stack = [
        {
            **e,
            "resource": {
                **e["resource"],
                "labels": {k: v.replace(PREFIX, "acme-qi-prod") for k, v in e["resource"]["labels"].items()},
            },
        }
        for e in emitted
    ]
    assert not [e for e in other_stack if matches(sink, e)]


def test_human_decisions_say_whether_the_reviewer_agreed(emitted):
    [decided] = [e["jsonPayload"] for e in emitted if e["jsonPayload"]["message"] == "decided"]
    assert (decided["line"], decided["agreement"], decided["label"]) == ("line-1", "no_model", "defect")


@pytest.fixture(scope="module")
def program():
    return run_program(dev_config(alertEmails="ops@example.com,lead@example.com"))[0].resources


def test_alert_policies_and_the_dashboard_use_only_declared_metrics(program):
    declared = {m.type(PREFIX) for m in monitoring.METRICS} | {monitoring.ERRORS}
    promql_names = {m.promql(PREFIX) for m in monitoring.METRICS} | {"run_googleapis_com:request_count"}
    texts = []
    for r in program:
        if r["type"] == "gcp:monitoring/alertPolicy:AlertPolicy":
            for condition in r["inputs"]["conditions"]:
                threshold = condition.get("conditionThreshold", {})
                for key in ("filter", "denominatorFilter"):
                    for used in re.findall(r'metric\.type="([^"]+)"', threshold.get(key, "")):
                        assert used in declared, used
                texts.append(condition.get("conditionPrometheusQueryLanguage", {}).get("query", ""))
        if r["type"] == "gcp:monitoring/dashboard:Dashboard":
            texts.append(r["inputs"]["dashboardJson"])
    used = {
        name for text in texts for name in re.findall(r"[a-z_]+:[a-z0-9_]+", text) if "googleapis" in name
    }
    assert used and {re.sub(r"_bucket$", "", u) for u in used} <= promql_names


def test_the_dashboard_has_the_shape_the_monitoring_api_takes(program):
    [board] = [r["inputs"] for r in program if r["type"] == "gcp:monitoring/dashboard:Dashboard"]
    layout = json.loads(board["dashboardJson"])["mosaicLayout"]
    assert layout["columns"] == 48
    cells = set()
    for tile in layout["tiles"]:
        assert tile["xPos"] + tile["width"] <= 48 and {"title", "xyChart"} <= set(tile["widget"])
        for x in range(tile["xPos"], tile["xPos"] + tile["width"]):
            for y in range(tile["yPos"], tile["yPos"] + tile["height"]):
                assert (x, y) not in cells, "tiles overlap"
                cells.add((x, y))
        [dataset] = tile["widget"]["xyChart"]["dataSets"]
        assert dataset["timeSeriesQuery"]["prometheusQuery"]
    titles = [t["widget"]["title"] for t in layout["tiles"]]
    assert {"Defect rate, by line", "Reviewer overrule rate, by line", "Oldest inbound image (s)"} <= set(
        titles
    )


def test_every_alert_emails_the_configured_people_and_names_its_runbook_entry(program):
    channels = [r for r in program if r["type"] == "gcp:monitoring/notificationChannel:NotificationChannel"]
    assert sorted(c["inputs"]["labels"]["email_address"] for c in channels) == [
        "lead@example.com",
        "ops@example.com",
    ]
    policies = [r["inputs"] for r in program if r["type"] == "gcp:monitoring/alertPolicy:AlertPolicy"]
    with open("docs/operations.md") as file:
        runbook = file.read().split("## Runbook", 1)[1]
    assert len(policies) >= 6  # dead letters, stuck inbound, unclear waiting, errors, defect rate x2
    for policy in policies:
        assert len(policy["notificationChannels"]) == 2
        entry_name = re.search(r"entry '([^']+)'", policy["documentation"]["content"]).group(1)
        assert f"**{entry_name}.**" in runbook, f"the runbook has no entry for {entry_name}"
        assert "docs/operations.md" in policy["documentation"]["content"]


def test_the_defect_rate_alert_is_the_p_chart_control_limit():
    """p̄ + 3·√(p̄(1−p̄)/n) per line, only where the window holds enough images to judge."""
    query = monitoring.control_limit_query(PREFIX, "8h", 0.05, 50)
    assert "> 0.05 + 3 * sqrt(0.047500 / (" in query
    assert ">= 50" in query and "sum by (line)" in query
    assert query.count(monitoring.BY_KEY["routed"].promql(PREFIX)) == 4


def test_a_sweep_now_runs_the_scheduler_job_rather_than_calling_the_function(monkeypatch, capsys):
    """The sweep admits only internal traffic (issue 21, finding 11), so `scripts.sweep --job` asks
    Cloud Scheduler to run the job now: POST v1/{job}:run
    (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs/run)."""
    from scripts import sweep

    job = "projects/my-factory-project/locations/europe-west4/jobs/acme-qi-redrive"
    asked = []

    class Scheduler:
        def post(self, url, json, timeout):
            asked.append(url)
            return type("Answer", (), {"status_code": 200, "json": lambda self: {"name": job}, "text": ""})()

    original = sweep.run_job
    monkeypatch.setattr(sweep, "run_job", lambda name: original(name, Scheduler()))
    assert sweep.main(["--job", job]) == 0
    assert asked == [f"https://cloudscheduler.googleapis.com/v1/{job}:run"]
    assert "Cloud Scheduler is running" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="is not projects/"):
        original("acme-qi-redrive", Scheduler())
