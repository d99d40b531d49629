"""Operations as code: log-based metrics from the decision lines, a dashboard per line and for the
pipeline, and alert policies that email the people in `alertEmails` (docs/operations.md, "Runbook").

Every metric is read from the JSON lines the handlers write (docs/pipeline.md, "The log schema"); the tests
run the real handlers, evaluate each filter against the lines they emit, and check each label
extractor finds its field. Sources:
- log-based metrics and their label extractors: https://cloud.google.com/logging/docs/logs-based-metrics
- the Logging query language: https://cloud.google.com/logging/docs/view/logging-query-language
- PromQL in alert policies, and how metric names map to it:
  https://cloud.google.com/monitoring/promql/promql-in-alerting,
  https://cloud.google.com/monitoring/promql/promql-mapping (each metric here has one resource type,
  so no query needs to name it)
- dashboards as JSON: https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.context import Context
from infra.waits import metrics_wait
from inspection import events

FUNCTION = "cloud_run_revision"
APP = "gae_app"
FUNCTIONS = ("predict", "move", "sweep")  # this stack's functions, named <prefix>-<function>


@dataclass(frozen=True)
class LogMetric:
    """One log-based metric: which lines it counts (or measures), and the labels it keeps."""

    key: str
    description: str
    resource: str  # FUNCTION or APP
    services: tuple[str, ...]  # functions' or App Engine services' names without the prefix
    messages: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)  # label → field of the line
    value: str = ""  # a field to measure (a distribution); empty: count the lines
    where: dict[str, str] = field(default_factory=dict)  # field → the value a counted line has in it

    def name(self, prefix: str) -> str:
        return f"{prefix.replace('-', '_')}_{self.key}"

    def type(self, prefix: str) -> str:
        return f"logging.googleapis.com/user/{self.name(prefix)}"

    def promql(self, prefix: str) -> str:
        """How PromQL names it: the type's dots and slashes become underscores after `domain:`."""
        return f"logging_googleapis_com:user_{self.name(prefix)}"

    def filter(self, prefix: str) -> str:
        label = "module_id" if self.resource == APP else "service_name"
        where = " OR ".join(f'resource.labels.{label}="{prefix}-{s}"' for s in self.services)
        said = " OR ".join(f'jsonPayload.message="{m}"' for m in self.messages)
        having = "".join(f' AND jsonPayload.{k}="{v}"' for k, v in self.where.items())
        return f'resource.type="{self.resource}" AND ({where}) AND ({said}){having}'


def _of(kind: events.Record) -> dict[str, str]:
    """A record's metric labels, each read from the log field of the same name."""
    return {label: label for label in kind.metric_labels}


# Message names and labels come from where the lines are written: the outcome types for the
# records, and the modules that write the operational lines.
METRICS = (
    LogMetric(
        "routed",
        "Images routed by move, by line, folder and the model's label",
        FUNCTION,
        ("move",),
        (events.ROUTED.message,),
        _of(events.ROUTED),
    ),
    LogMetric(
        "anomalous",
        "Images the classifier called ok and the anomaly model sent to a person, by line",
        FUNCTION,
        ("move",),
        (events.ROUTED.message,),
        {"line": "line"},
        where={"unclear_reason": events.ANOMALOUS},
    ),
    LogMetric(
        "rejected",
        "Files quarantined in rejected/, by line and reason",
        FUNCTION,
        ("predict", "sweep"),
        (events.REJECTED.message,),
        _of(events.REJECTED),
    ),
    LogMetric(
        "prediction_latency",
        "Milliseconds from a finalized upload to a published prediction",
        FUNCTION,
        ("predict", "sweep"),
        (events.PREDICTED,),
        {"line": "line"},
        value="latency_ms",
    ),
    LogMetric(
        "human_decisions",
        "Reviewers' decisions, by line and whether they agreed with the model",
        APP,
        ("review",),
        (events.DECIDED.message,),
        _of(events.DECIDED),
    ),
    LogMetric(
        "dead_letters",
        "Messages move dead-lettered for a person: unreadable ones, and moves held (their claim)",
        FUNCTION,
        ("move",),
        (events.DEAD_LETTERED_MALFORMED, events.DEAD_LETTERED_HELD),
    ),
    LogMetric(
        "replayed_dead_letters",
        "Dead-lettered predictions the sweep published again",
        FUNCTION,
        ("sweep",),
        (events.REPLAYED,),
    ),
    LogMetric(
        "stranded",
        "Inbound images the sweep found older than redriveAfterMinutes",
        FUNCTION,
        ("sweep",),
        (events.STRANDED,),
    ),
    LogMetric(
        "oldest_inbound_seconds",
        "Age of the oldest image waiting in inbound, each sweep",
        FUNCTION,
        ("sweep",),
        (events.SWEPT,),
        value="oldest_inbound_s",
    ),
    LogMetric(
        "unclear_waiting",
        "Images waiting in unclear/ for a person, each sweep",
        FUNCTION,
        ("sweep",),
        (events.SWEPT,),
        value="unclear_waiting",
    ),
    LogMetric(
        "oldest_unclear_seconds",
        "How long the oldest unclear image has waited, each sweep",
        FUNCTION,
        ("sweep",),
        (events.SWEPT,),
        value="oldest_unclear_s",
    ),
)
BY_KEY = {m.key: m for m in METRICS}
ERRORS = "run.googleapis.com/request_count"  # Cloud Run's own metric: 5xx answers of our functions


RE2_SPECIAL = set("\\.+*?()|[]{}^$")  # RE2's metacharacters (https://github.com/google/re2/wiki/Syntax)


def promql_regex(literal: str) -> str:
    """`literal` as a regular expression matching only itself, inside a PromQL string (whose
    backslashes are escapes of their own)."""
    escaped = "".join("\\" + ch if ch in RE2_SPECIAL else ch for ch in literal)
    return escaped.replace("\\", "\\\\")


def control_limit_query(prefix: str, window: str, baseline: float, min_images: int, lines: str = "") -> str:
    """PromQL that is non-empty for each line whose defect rate over `window` is above its p-chart
    control limit p̄ + 3·√(p̄(1−p̄)/n), n being that line's images in the window (at least `min_images`)."""
    routed = BY_KEY["routed"].promql(prefix)
    selector = f",line{lines}" if lines else ""
    total = f'sum by (line) (increase({routed}{{folder=~"ok|defect|unclear"{selector}}}[{window}]))'
    defects = f'sum by (line) (increase({routed}{{folder="defect"{selector}}}[{window}]))'
    p = baseline
    return (
        f"(({defects}) / ({total}) > {p} + 3 * sqrt({p * (1 - p):.6f} / ({total}))) "
        f"and on (line) (({total}) >= {min_images})"
    )


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("quality-inspection:monitoring:Monitoring", name, None, opts)
        s, apis = ctx.settings, ctx.apis
        after = pulumi.ResourceOptions(
            parent=self, depends_on=[apis.service("logging"), apis.service("monitoring")]
        )
        self.metrics = {m.key: self._metric(m, s, after) for m in METRICS}
        self.channels = [
            gcp.monitoring.NotificationChannel(
                f"alert-email-{index}",
                project=s.project,
                display_name=f"quality-inspection {email}",
                type="email",
                labels={"email_address": email},
                opts=after,
            )
            for index, email in enumerate(s.alert_emails)
        ]
        names = [c.name for c in self.channels]
        # Monitoring answers 404 on a policy naming a log-based metric made minutes ago.
        self.wait = metrics_wait("wait-metrics", s, self, self.metrics)
        metric_opts = pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[self.wait]))
        self.policies = [
            gcp.monitoring.AlertPolicy(
                key, project=s.project, notification_channels=names, opts=metric_opts, **policy
            )
            for key, policy in alert_policies(s).items()
        ]
        self.dashboard = gcp.monitoring.Dashboard(
            "dashboard", project=s.project, dashboard_json=json.dumps(dashboard(s)), opts=metric_opts
        )
        self.register_outputs({})

    def _metric(self, m: LogMetric, s, opts) -> gcp.logging.Metric:
        distribution = bool(m.value)
        return gcp.logging.Metric(
            f"metric-{m.key}",
            project=s.project,
            name=m.name(s.prefix),
            description=m.description,
            filter=m.filter(s.prefix),
            metric_descriptor={
                "metric_kind": "DELTA",
                "value_type": "DISTRIBUTION" if distribution else "INT64",
                "unit": "1",
                "labels": [{"key": label, "value_type": "STRING"} for label in m.labels],
            },
            label_extractors={label: f"EXTRACT(jsonPayload.{path})" for label, path in m.labels.items()},
            value_extractor=f"EXTRACT(jsonPayload.{m.value})" if distribution else None,
            bucket_options={
                "exponential_buckets": {"num_finite_buckets": 64, "growth_factor": 1.4, "scale": 1}
            }
            if distribution
            else None,
            opts=opts,
        )


def _threshold(
    name: str, metric: str, s, value: float, aligner: str, reducer: str = "REDUCE_MAX", **extra
) -> dict:
    return {
        "display_name": name,
        "condition_threshold": {
            "filter": f'metric.type="{metric}" AND resource.type="{FUNCTION}"',
            "comparison": "COMPARISON_GT",
            "threshold_value": value,
            "duration": "0s",
            "aggregations": [
                {"alignment_period": "300s", "per_series_aligner": aligner, "cross_series_reducer": reducer}
            ],
            **extra,
        },
    }


def alert_policies(s) -> dict[str, dict]:
    """Alert policy arguments by resource name (docs/operations.md, "Runbook": one entry per policy)."""
    p = s.prefix
    doc = "See docs/operations.md in the quality-inspection repository, section 'Runbook', entry '{}'."
    policies = {
        "alert-dead-letters": (
            "A message was dead-lettered",
            BY_KEY["dead_letters"].type(p),
            0,
            "ALIGN_DELTA",
            "Dead letters",
        ),
        "alert-stuck-inbound": (
            f"An image waits in inbound longer than {s.stuck_inbound_minutes} minutes",
            BY_KEY["oldest_inbound_seconds"].type(p),
            s.stuck_inbound_minutes * 60,
            "ALIGN_PERCENTILE_99",
            "Stuck in inbound",
        ),
        "alert-unclear-waiting": (
            f"An unclear image waits longer than {s.unclear_wait_hours} hours for a person",
            BY_KEY["oldest_unclear_seconds"].type(p),
            s.unclear_wait_hours * 3600,
            "ALIGN_PERCENTILE_99",
            "Unclear images waiting",
        ),
    }
    found = {}
    for key, (title, metric, value, aligner, runbook) in policies.items():
        found[key] = {
            "display_name": f"{p}: {title}",
            "combiner": "OR",
            "conditions": [
                _threshold(title, metric, s, value, aligner, "REDUCE_MAX" if value else "REDUCE_SUM")
            ],
            "documentation": {"content": doc.format(runbook), "mime_type": "text/markdown"},
        }
    errors = f"{s.error_rate_percent}% of function requests fail"
    # Exactly this stack's functions: a prefix match would also take another stack's whose prefix
    # starts with this one (acme-qi and acme-qi-dev).
    ours = ", ".join(f'"{p}-{f}"' for f in FUNCTIONS)
    found["alert-function-errors"] = {
        "display_name": f"{p}: {errors}",
        "combiner": "OR",
        "conditions": [
            _threshold(
                errors,
                ERRORS,
                s,
                s.error_rate_percent / 100,
                "ALIGN_RATE",
                "REDUCE_SUM",
                filter=(
                    f'metric.type="{ERRORS}" AND resource.type="{FUNCTION}" AND '
                    f"resource.labels.service_name=one_of({ours}) AND "
                    'metric.labels.response_code_class="5xx"'
                ),
                denominator_filter=(
                    f'metric.type="{ERRORS}" AND resource.type="{FUNCTION}" AND '
                    f"resource.labels.service_name=one_of({ours})"
                ),
                denominator_aggregations=[
                    {
                        "alignment_period": "300s",
                        "per_series_aligner": "ALIGN_RATE",
                        "cross_series_reducer": "REDUCE_SUM",
                    }
                ],
            )
        ],
        "documentation": {"content": doc.format("Function errors"), "mime_type": "text/markdown"},
    }
    own = sorted(s.defect_baselines)
    others = "|".join(promql_regex(line) for line in own)
    groups = [(s.defect_baseline, f'!~"{others}"' if own else "", "every other line" if own else "a line")]
    groups += [(s.defect_baselines[line], f'="{line}"', line) for line in own]
    for index, (baseline, lines, who) in enumerate(groups):
        title = f"Defect rate of {who} above its control limit (baseline {baseline:.1%})"
        query = control_limit_query(p, f"{s.control_window_hours}h", baseline, s.control_min_images, lines)
        found[f"alert-defect-rate-{index}"] = {
            "display_name": f"{p}: {title}",
            "combiner": "OR",
            "conditions": [
                {
                    "display_name": title,
                    "condition_prometheus_query_language": {
                        "query": query,
                        "duration": "0s",
                        "evaluation_interval": "300s",
                    },
                }
            ],
            "documentation": {
                "content": doc.format("Defect rate above its control limit"),
                "mime_type": "text/markdown",
            },
        }
    return found


def _chart(title: str, query: str) -> dict:
    return {
        "title": title,
        "xyChart": {"dataSets": [{"timeSeriesQuery": {"prometheusQuery": query}, "plotType": "LINE"}]},
    }


def dashboard(s) -> dict:
    """The Monitoring dashboard, as the Dashboards API takes it: per line, then the pipeline."""
    p = s.prefix
    m = {key: metric.promql(p) for key, metric in BY_KEY.items()}
    window = "1h"
    per_line = [
        ("Images per hour, by line", f"sum by (line) (increase({m['routed']}[{window}]))"),
        (
            "Defect rate, by line",
            f'sum by (line) (increase({m["routed"]}{{folder="defect"}}[{window}])) / '
            f"sum by (line) (increase({m['routed']}[{window}]))",
        ),
        (
            "Unclear share, by line",
            f'sum by (line) (increase({m["routed"]}{{folder="unclear"}}[{window}])) / '
            f"sum by (line) (increase({m['routed']}[{window}]))",
        ),
        (
            "Sent to a person by the anomaly model (called ok by the classifier), by line",
            f"sum by (line) (increase({m['anomalous']}[{window}]))",
        ),
        (
            "Reviewer overrule rate, by line",
            f'sum by (line) (increase({m["human_decisions"]}{{agreement="overrule"}}[{window}])) / '
            f'sum by (line) (increase({m["human_decisions"]}{{agreement=~"agree|overrule"}}[{window}]))',
        ),
    ]
    pipeline = [
        (
            "Prediction latency p95 (ms)",
            f"histogram_quantile(0.95, sum by (le) (rate({m['prediction_latency']}_bucket[5m])))",
        ),
        (
            "Function 5xx per second",
            "sum by (service_name) (rate(run_googleapis_com:request_count"
            f'{{response_code_class="5xx",service_name=~"{p}-({"|".join(FUNCTIONS)})"}}[5m]))',
        ),
        ("Dead letters", f"sum(increase({m['dead_letters']}[{window}]))"),
        (
            "Oldest inbound image (s)",
            f"max(histogram_quantile(1, sum by (le) (rate({m['oldest_inbound_seconds']}_bucket[15m]))))",
        ),
        (
            "Unclear queue (images)",
            f"max(histogram_quantile(1, sum by (le) (rate({m['unclear_waiting']}_bucket[15m]))))",
        ),
        (
            "Oldest unclear image (s)",
            f"max(histogram_quantile(1, sum by (le) (rate({m['oldest_unclear_seconds']}_bucket[15m]))))",
        ),
    ]
    charts = [_chart(title, query) for title, query in per_line + pipeline]
    tiles = [
        {"xPos": (i % 2) * 24, "yPos": (i // 2) * 16, "width": 24, "height": 16, "widget": c}
        for i, c in enumerate(charts)
    ]
    return {"displayName": f"quality-inspection {p}", "mosaicLayout": {"columns": 48, "tiles": tiles}}
