"""The quality report's arithmetic, on figures worked out by hand: what a day counts, the p-chart's
control limit, the baseline measured over a period, and which days the page marks above the limit."""

from __future__ import annotations

import math
import re
from datetime import date

import pytest

from scripts.report import Day, baseline, control_limit, render

pytestmark = pytest.mark.unit

MONDAY, TUESDAY, WEDNESDAY = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)


def test_a_day_counts_each_image_once_and_labels_only_what_has_a_label():
    day = Day(
        routed_ok=150, routed_defect=10, routed_unclear=40, unusual=5, rejected=3,
        human_ok=30, human_defect=6, human_unusable=4, agreed=28, overruled=8,
    )  # fmt: skip
    assert day.routed == 200  # ok + defect + unclear; the unusual ones are among the unclear
    assert day.images == 203  # and the rejected files, which never reached a folder
    assert day.known == 196  # 150 + 10 by the model, 30 + 6 by people; "not a part" has no label
    assert day.defects == 16
    assert day.defect_rate == pytest.approx(16 / 196)
    assert day.unclear_share == pytest.approx(40 / 200)
    assert day.overrule_rate == pytest.approx(8 / 36)


def test_a_day_without_images_has_no_rates_rather_than_a_division_by_zero():
    empty = Day(rejected=2)
    assert (empty.images, empty.known) == (2, 0)
    assert empty.defect_rate is None and empty.unclear_share is None and empty.overrule_rate is None


def test_a_record_row_with_nulls_and_unknown_columns_reads_as_zeros():
    day = Day.of({"routed_ok": 3, "routed_defect": None, "wait_p50_s": None, "line": "line-1", "day": MONDAY})
    assert (day.routed_ok, day.routed_defect, day.wait_p50_s) == (3, 0, None)


def test_the_control_limit_is_the_p_charts():
    # p̄ 4 %, 200 labelled images: 0.04 + 3·√(0.04·0.96/200) = 0.04 + 3·0.013856 = 0.081569
    assert control_limit(0.04, 200) == pytest.approx(0.0815692, abs=1e-6)
    assert control_limit(0.04, 200) == pytest.approx(0.04 + 3 * math.sqrt(0.04 * 0.96 / 200))
    assert control_limit(0.5, 1) == 1.0  # never above 100 %
    assert control_limit(0.04, 0) == 1.0  # no labelled image: nothing can be above it


def test_the_measured_baseline_weighs_days_by_their_labelled_images():
    days = {MONDAY: Day(routed_ok=90, routed_defect=10), TUESDAY: Day(routed_ok=9, human_defect=1)}
    # (10 + 1) / (100 + 10), not the mean of 10 % and 10 %
    assert baseline(days) == pytest.approx(11 / 110)
    assert baseline({MONDAY: Day(routed_unclear=5)}) is None


def test_the_page_marks_exactly_the_days_above_their_limit():
    days = {
        MONDAY: Day(routed_ok=192, routed_defect=8),  # 4 %: at the baseline
        TUESDAY: Day(routed_ok=182, routed_defect=18),  # 9 %: above 8.16 %
        WEDNESDAY: Day(routed_ok=184, routed_defect=16),  # 8 %: just below it
    }
    page = render({"line-1": days}, [MONDAY, TUESDAY, WEDNESDAY], {"line-1": 0.04}, None)

    marked = re.findall(r"<tr data-day='([^']+)'>(?:(?!</tr>).)*above the limit", page)
    assert marked == [str(TUESDAY)]
    assert "Baseline p̄ 4.0% (from configuration)" in page
    assert "<td>8.2%</td>" in page  # the limit shown for a day of 200 labelled images


def test_the_documented_log_schema_is_the_outcome_types():
    """Issue 23: the table of record lines (docs/pipeline.md) lists exactly each outcome type's own fields."""
    from dataclasses import fields
    from pathlib import Path

    from inspection import outcomes

    readme = (Path(__file__).resolve().parents[1] / "docs" / "pipeline.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| [^|]+ \| (.+) \|$", readme, re.M))
    common = {f.name for f in fields(outcomes.Outcome)}
    for kind in outcomes.KINDS:
        own = [f.name for f in fields(kind) if f.name not in common and not f.name.startswith("_")]
        assert kind.MESSAGE in rows, f"docs/pipeline.md's log schema has no row for {kind.MESSAGE}"
        listed = re.findall(r"`(\w+)`", re.sub(r"\s*\([^)]*\)", "", rows[kind.MESSAGE]))
        assert listed == own, (kind.MESSAGE, listed, own)
