"""The plant's quality report: per line and per day, images, defect rate against its control limit,
unclear share, how often reviewers overruled the model and how long images waited for them,
rejections, and the threshold and model in force.

    python -m scripts.report --records bigquery:my-factory-project.acme_qi_records --from 2026-11-01 --to 2026-11-25
    python -m scripts.report                      # the local stack's records (make demo), today

One self-contained HTML page (charts as inline SVG; nothing from a CDN). It reads the plant's records
(inspection/records.py): BigQuery in the cloud, DuckDB over the local sink's files on a laptop, and
only the days asked for, so its cost is bounded by the period, not by the history.

The control limit is the p-chart's: p̄ + 3·√(p̄(1−p̄)/n), n being the day's images with a known label
and p̄ the line's baseline: given with --baseline (or --line-baseline line=rate), or else measured
over the period. A measured p̄ is printed per line, ready for `pulumi config set --path
'defectBaselines.<line>' <p̄>`.
"""

from __future__ import annotations

import argparse
import html
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from inspection import records

MAX_DAYS = records.MAX_DAYS


@dataclass
class Day:
    """One line's figures for one day (inspection.records.REPORT)."""

    routed_ok: int = 0
    routed_defect: int = 0
    routed_unclear: int = 0
    unusual: int = 0
    anomalous: int = 0  # called ok by the classifier, sent to a person by the anomaly model
    escapes_prevented: int = 0  # of those, the ones a person found defective
    rejected: int = 0
    human_ok: int = 0
    human_defect: int = 0
    human_unusable: int = 0
    agreed: int = 0
    overruled: int = 0
    wait_p50_s: float | None = None
    wait_p90_s: float | None = None
    models: str = ""
    thresholds: str = ""
    guards: str = ""  # the input guards that checked the day's photos
    unguarded: int = 0  # photos a model decided with no input guard (inputGuard: none)

    @classmethod
    def of(cls, row: dict) -> Day:
        known = {k: row[k] for k in cls.__dataclass_fields__ if k in row}
        return cls(
            **{k: (v if v is not None else cls.__dataclass_fields__[k].default) for k, v in known.items()}
        )

    @property
    def routed(self) -> int:
        return self.routed_ok + self.routed_defect + self.routed_unclear

    @property
    def images(self) -> int:
        return self.routed + self.rejected

    @property
    def known(self) -> int:
        """Images with a label: decided by the model, or by a person (not: not a part)."""
        return self.routed_ok + self.routed_defect + self.human_ok + self.human_defect

    @property
    def defects(self) -> int:
        return self.routed_defect + self.human_defect

    @property
    def defect_rate(self) -> float | None:
        return self.defects / self.known if self.known else None

    @property
    def unclear_share(self) -> float | None:
        return self.routed_unclear / self.routed if self.routed else None

    @property
    def overrule_rate(self) -> float | None:
        judged = self.agreed + self.overruled
        return self.overruled / judged if judged else None


def collect(store: records.Store, start: date, end: date) -> dict[str, dict[date, Day]]:
    """line → day → figures, from the days asked for only."""
    lines: dict[str, dict[date, Day]] = defaultdict(dict)
    for row in records.report_rows(store, start, end):
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        lines[row["line"] or "none"][day] = Day.of(row)
    return lines


def baseline(per_day: dict[date, Day]) -> float | None:
    """p̄ measured over the period: the line's defects over its images with a label."""
    known = sum(d.known for d in per_day.values())
    return sum(d.defects for d in per_day.values()) / known if known else None


def control_limit(p: float, n: int) -> float:
    return min(1.0, p + 3 * math.sqrt(p * (1 - p) / n)) if n else 1.0


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def chart(per_day: dict[date, Day], period: list[date], p: float | None) -> str:
    """An inline SVG: the daily defect rate (points), its control limit (dashed) and p̄ (solid)."""
    width, height, pad = 640, 180, 36
    top = max(
        [0.05]
        + [d.defect_rate or 0 for d in per_day.values()]
        + [control_limit(p, d.known) for d in per_day.values() if p is not None and d.known]
    )

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(len(period) - 1, 1))

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * (v / top)

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" width="{width}" height="{height}">']
    parts.append(f'<line x1="{pad}" y1="{y(0)}" x2="{width - pad}" y2="{y(0)}" class="axis"/>')
    parts.append(
        f'<text x="4" y="{y(top) + 4}" class="tick">{top:.0%}</text><text x="4" y="{y(0)}" class="tick">0%</text>'
    )
    if p is not None:
        parts.append(f'<line x1="{pad}" y1="{y(p):.1f}" x2="{width - pad}" y2="{y(p):.1f}" class="mean"/>')
        limits = [
            (i, control_limit(p, per_day[day].known))
            for i, day in enumerate(period)
            if per_day.get(day) and per_day[day].known
        ]
        if len(limits) > 1:
            path = " ".join(
                f"{'M' if n == 0 else 'L'}{x(i):.1f},{y(v):.1f}" for n, (i, v) in enumerate(limits)
            )
            parts.append(f'<path d="{path}" class="limit"/>')
        for i, v in limits:  # each day's own limit, visible even for a single day
            parts.append(
                f'<line x1="{x(i) - 14:.1f}" y1="{y(v):.1f}" x2="{x(i) + 14:.1f}" y2="{y(v):.1f}" class="limit"/>'
            )
    for i, day in enumerate(period):
        figures = per_day.get(day)
        if figures is None or figures.defect_rate is None:
            continue
        above = p is not None and figures.defect_rate > control_limit(p, figures.known)
        label = f"{day}: {figures.defect_rate:.1%} of {figures.known}" + (
            " (above the control limit)" if above else ""
        )
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(figures.defect_rate):.1f}" r="5" class="{"above" if above else "point"}">'
            f"<title>{html.escape(label)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


STYLE = """body{font:15px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24}h1{font-size:1.5rem}
table{border-collapse:collapse;margin:.5rem 0 2rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}.axis{stroke:#888}.mean{stroke:#2b6cb0;stroke-width:1.5}
.limit{fill:none;stroke:#c53030;stroke-dasharray:6 4;stroke-width:1.5}.point{fill:#2b6cb0}.above{fill:#c53030}
.tick{font-size:11px;fill:#555}.warn{color:#c53030;font-weight:600}.legend span{margin-right:1.2rem}"""


def render(
    lines: dict[str, dict[date, Day]], period: list[date], baselines: dict[str, float], default: float | None
) -> str:
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Quality report {period[0]} to {period[-1]}</title><style>{STYLE}</style></head><body>",
        f"<h1>Quality report, {period[0]} to {period[-1]}</h1>",
        "<p class='legend'><span>● daily defect rate</span><span>— baseline p̄</span>"
        "<span>- - control limit p̄ + 3·√(p̄(1−p̄)/n)</span><span class='warn'>● above the limit</span></p>",
    ]
    if not lines:
        out.append("<p>No images in this period.</p>")
    for line in sorted(lines):
        per_day = lines[line]
        p = baselines.get(line, default)
        measured = p is None
        p = baseline(per_day) if p is None else p
        source = "measured over this period" if measured else "from configuration"
        out.append(f"<section data-line='{html.escape(line)}'><h2>Line {html.escape(line)}</h2>")
        out.append(f"<p>Baseline p̄ {_percent(p)} ({source}).</p>")
        out.append(chart(per_day, period, p))
        out.append(
            "<table><thead><tr><th>day</th><th>images</th><th>defect rate</th><th>control limit</th>"
            "<th>unclear</th><th>overruled</th><th>waited (median, 90%)</th><th>not a part</th>"
            "<th>rejected</th><th title='called ok by the classifier, sent to a person by the anomaly model; "
            "in brackets, how many a person found defective (escapes prevented)'>anomalous (defects)</th>"
            "<th>threshold</th><th>model</th><th title='the input guard that sends photos unlike the "
            "model's training photos to a person; in brackets, how many it sent'>input guard</th>"
            "</tr></thead><tbody>"
        )
        for day in period:
            d = per_day.get(day)
            if d is None:
                continue
            limit = control_limit(p, d.known) if p is not None and d.known else None
            above = limit is not None and d.defect_rate is not None and d.defect_rate > limit
            rate = _percent(d.defect_rate) + (" <span class='warn'>above the limit</span>" if above else "")
            out.append(
                f"<tr data-day='{day}'><td>{day}</td><td class='images'>{d.images}</td><td class='defect-rate'>{rate}</td>"
                f"<td>{_percent(limit)}</td><td class='unclear'>{_percent(d.unclear_share)}</td>"
                f"<td class='overruled'>{_percent(d.overrule_rate)}</td>"
                f"<td class='waited'>{_duration(d.wait_p50_s)}, {_duration(d.wait_p90_s)}</td>"
                f"<td class='unusable'>{d.human_unusable}</td><td class='rejected'>{d.rejected}</td>"
                f"<td class='anomalous'>{d.anomalous} ({d.escapes_prevented})</td>"
                f"<td>{html.escape(d.thresholds or '–')}</td><td>{html.escape(d.models or '–')}</td>"
                f"<td class='guard'>{_guard(d)}</td></tr>"
            )
        out.append("</tbody></table></section>")
    out.append("</body></html>")
    return "\n".join(out)


def _guard(d: Day) -> str:
    """Which guard checked the day's photos, and, loudly, how many a model decided unguarded."""
    shown = f"{html.escape(d.guards)} ({d.unusual})" if d.guards else ""
    if d.unguarded:
        warning = f"<span class='warn'>none: {d.unguarded} photos decided unguarded</span>"
        shown = f"{shown}; {warning}" if shown else warning
    return shown or "–"


def _line_baselines(items: list[str]) -> dict[str, float]:
    found = {}
    for item in items:
        line, _, rate = item.partition("=")
        try:
            found[line] = float(rate)
        except ValueError:
            raise SystemExit(f"--line-baseline {item!r}: expected line=rate, e.g. line-1=0.04") from None
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records",
        help="bigquery:<project>.<dataset> (pulumi stack output records), or the local sink's folder "
        "(default: the local stack's, .demo/records)",
    )
    parser.add_argument(
        "--from", dest="start", type=date.fromisoformat, help="first day, YYYY-MM-DD (default today)"
    )
    parser.add_argument(
        "--to", dest="end", type=date.fromisoformat, help="last day, YYYY-MM-DD (default today)"
    )
    parser.add_argument("--baseline", type=float, help="p̄ for every line (default: measured per line)")
    parser.add_argument("--line-baseline", action="append", default=[], help="line=rate, p̄ of one line")
    parser.add_argument("--out", type=Path, default=Path("quality-report.html"))
    args = parser.parse_args(argv)
    today = datetime.now(UTC).date()
    start, end = args.start or today, args.end or today
    if end < start or (end - start).days >= MAX_DAYS:
        raise SystemExit(f"--from {start} --to {end}: the period must be 1 to {MAX_DAYS} days")
    store = records.open_store(args.records or str(_demo_records()))
    lines = collect(store, start, end)
    period = records.days(start, end)
    args.out.write_text(render(lines, period, _line_baselines(args.line_baseline), args.baseline))
    for line, per_day in sorted(lines.items()):
        p = baseline(per_day)
        print(f"line {line}: {sum(d.images for d in per_day.values())} images, measured p̄ {_percent(p)}")
    print(f"report: {args.out.resolve()}")
    return 0


def _demo_records() -> Path:
    from scripts.local.state import DEFAULT_STATE, RECORDS

    folder = DEFAULT_STATE / RECORDS
    if not folder.is_dir():
        raise SystemExit("no records found: pass --records, or run `make demo` first")
    return folder


if __name__ == "__main__":
    raise SystemExit(main())
