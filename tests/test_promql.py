"""Every PromQL query the program declares, checked by Prometheus' own tool.

`promtool check rules` parses each query as Prometheus does; `promtool test rules` evaluates the
p-chart alerts over series written with Cloud Monitoring's metric names (`logging_googleapis_com:
user_<metric>`, https://cloud.google.com/monitoring/promql/promql-mapping). Cloud Monitoring runs
PromQL itself (https://cloud.google.com/monitoring/promql), so a query promtool refuses would be
refused by the alert policy's API too. Debian's `prometheus` package provides promtool; `.ci/run`
installs it.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from infra import monitoring
from scripts.program.mocks import dev_config, run_program

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def promtool():
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("SKIPPED LOUDLY: promtool is missing (.ci/run installs Debian's prometheus)")
    return found


def declared(config: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(alert policy name → its PromQL, dashboard chart title → its PromQL), as the program
    registers them."""
    mocks, _ = run_program(config)
    alerts, charts = {}, {}
    for r in mocks.resources:
        if r["type"] == "gcp:monitoring/alertPolicy:AlertPolicy":
            for condition in r["inputs"]["conditions"]:
                if "conditionPrometheusQueryLanguage" in condition:
                    alerts[r["name"]] = condition["conditionPrometheusQueryLanguage"]["query"]
        if r["type"] == "gcp:monitoring/dashboard:Dashboard":
            import json

            for tile in json.loads(r["inputs"]["dashboardJson"])["mosaicLayout"]["tiles"]:
                for data in tile["widget"]["xyChart"]["dataSets"]:
                    charts[tile["widget"]["title"]] = data["timeSeriesQuery"]["prometheusQuery"]
    return alerts, charts


def rule_file(tmp_path, alerts: dict[str, str], charts: dict[str, str] | None = None):
    rules = [{"alert": name.replace("-", "_"), "expr": query, "for": "0m"} for name, query in alerts.items()]
    rules += [{"record": f"dashboard:chart_{i}", "expr": q} for i, q in enumerate((charts or {}).values())]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "quality-inspection", "rules": rules}]}))
    return path


@pytest.mark.parametrize(
    "config",
    [
        {},  # the example stack: one line with its own baseline, and every other line
        {"defectBaselines": None},  # no per-line baselines
        {"defectBaselines": {"line-1": "0.04", "line-2": "0.02", "press 7": "0.1"}},
    ],
    ids=["example", "no-baselines", "three-baselines"],
)
def test_every_declared_query_parses_as_promql(promtool, tmp_path, config):
    """Issue 21, finding 2: with `defectBaselines` set (the example stack sets it) the selector lost
    its comma, `{folder="defect"line!~"line-1"}`, and only the no-baseline case was tested."""
    alerts, charts = declared(dev_config(**config))
    assert alerts and charts
    checked = subprocess.run(
        [promtool, "check", "rules", str(rule_file(tmp_path, alerts, charts))], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts) + len(charts)} rules found" in checked.stdout


def _series(prefix: str, line: str, folder: str, per_5m: int, steps: int) -> dict:
    metric = monitoring.BY_KEY["routed"].promql(prefix)
    return {
        "series": f'{metric}{{line="{line}",folder="{folder}",label="{folder}"}}',
        "values": f"0+{per_5m}x{steps}",
    }


def test_the_p_chart_alert_fires_above_the_limit_and_stays_quiet_below_it_or_without_images(
    promtool, tmp_path
):
    """The per-line defect-rate alerts of the example stack (line-1 at its own baseline of 4%, every
    other line at 5%), evaluated by Prometheus over eight hours of counts:
    - line-1 runs at 3 defects in 23 (13%): above 4% + 3σ, so its alert fires;
    - line-2 runs at 1 in 21 (4.8%): under 5% + 3σ, so nothing fires;
    - line-3 is on the chart but made no images: nothing fires (no division by zero alarm);
    - line-4 is all defects but made 6 images: under controlMinImages, nothing fires."""
    alerts, _ = declared(dev_config())
    prefix = "acme-qi"
    steps = 8 * 12  # eight hours of five-minute samples
    series = [
        _series(prefix, "line-1", "ok", 20, steps),
        _series(prefix, "line-1", "defect", 3, steps),
        _series(prefix, "line-2", "ok", 20, steps),
        _series(prefix, "line-2", "defect", 1, steps),
        _series(prefix, "line-3", "ok", 0, steps),
        _series(prefix, "line-3", "defect", 0, steps),
        {"series": _series(prefix, "line-4", "defect", 0, 0)["series"], "values": "0x90 1 2 3 4 5 6"},
    ]
    own, others = "alert_defect_rate_1", "alert_defect_rate_0"
    assert "line-1" in alerts["alert-defect-rate-1"] and '!~"line-1"' in alerts["alert-defect-rate-0"]
    test = {
        "rule_files": [str(rule_file(tmp_path, alerts))],
        "evaluation_interval": "5m",
        "tests": [
            {
                "interval": "5m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "8h", "alertname": own, "exp_alerts": [{"exp_labels": {"line": "line-1"}}]},
                    {"eval_time": "8h", "alertname": others, "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(test))
    tested = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_line_with_few_images_over_the_limit_is_not_an_alarm_until_it_has_enough(promtool, tmp_path):
    """The same alert for every other line: line-5 makes 2 images per 5 minutes, half defects. Before
    50 images are in the window it stays quiet; once they are, it fires."""
    alerts, _ = declared(dev_config())
    series = [
        _series("acme-qi", "line-5", "ok", 1, 60),
        _series("acme-qi", "line-5", "defect", 1, 60),
    ]
    test = {
        "rule_files": [str(rule_file(tmp_path, {"alert-defect-rate-0": alerts["alert-defect-rate-0"]}))],
        "evaluation_interval": "5m",
        "tests": [
            {
                "interval": "5m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "1h", "alertname": "alert_defect_rate_0", "exp_alerts": []},
                    {
                        "eval_time": "3h",
                        "alertname": "alert_defect_rate_0",
                        "exp_alerts": [{"exp_labels": {"line": "line-5"}}],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(test))
    tested = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
